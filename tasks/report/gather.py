"""What the run report shows, read from the lake and the model artifacts as plain data (no plotting here).

Every reader returns None (or an empty result) when its input does not exist, so the report can say so.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

import features
from features import Lake
from training.artifacts import ARTIFACTS_DIR, locate, read_manifest
from training.modalities import modality_names

TOP_GENRES = 9
OTHER = "other"
NO_GENRE = "no genre"
MAX_MAP_POINTS = 20_000

# Keys of ``pipeline_runs.counts`` that mean "rows read" and "rows written", first hit wins (stages differ).
IN_KEYS = ("rows_in", "read", "input_rows", "nodes", "items")
OUT_KEYS = ("rows_out", "written", "inserted", "output_rows", "edges", "embedded", "generated", "summarized")


def _exists(table: str, lake: Lake) -> bool:
    return features.table_version(table, lake=lake) is not None


# --- pipeline_runs -----------------------------------------------------------------------------------------


def stage_runs(
    lake: Lake, *, run_ids: Sequence[str] | None = None, flow_run_id: str | None = None
) -> pl.DataFrame | None:
    """The ``pipeline_runs`` rows to report, sorted by start time; None when the table does not exist.

    Args:
        lake: the lake.
        run_ids: only these run ids.
        flow_run_id: only the runs of this Prefect flow run.

    With neither filter: the latest run of each stage.
    """
    if not _exists("pipeline_runs", lake):
        return None
    runs = features.read("pipeline_runs", lake=lake).collect()
    if run_ids is not None:
        runs = runs.filter(pl.col("run_id").is_in(list(run_ids)))
    if flow_run_id is not None:
        runs = runs.filter(pl.col("flow_run_id") == flow_run_id)
    if run_ids is None and flow_run_id is None:
        runs = runs.sort("started_at", "run_id", nulls_last=False).group_by("stage", maintain_order=True).last()
    return runs.sort("started_at", "stage", nulls_last=True)


def _first_int(counts: dict[str, object], keys: Sequence[str]) -> int | None:
    for key in keys:
        value = counts.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
    return None


def _versions(raw: str | None) -> str:
    versions = json.loads(raw or "{}")
    return ", ".join(f"{table}@v{version}" for table, version in sorted(versions.items())) or "-"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def stage_table(runs: pl.DataFrame) -> list[tuple[str, ...]]:
    """One row per stage run: stage, status, started, inputs, outputs, rows in, rows out, quarantined, seconds."""
    rows: list[tuple[str, ...]] = []
    for run in runs.iter_rows(named=True):
        counts = json.loads(run["counts"] or "{}")
        counts = counts if isinstance(counts, dict) else {}
        started = run["started_at"].strftime("%Y-%m-%d %H:%M:%S") if run["started_at"] else "-"
        duration = "-" if run["duration_s"] is None else f"{run['duration_s']:.1f}"
        status = run["status"] + (" (reused)" if counts.get("reused_run") else "")
        rows.append(
            (
                str(run["stage"]),
                str(status),
                started,
                _versions(run["input_versions"]),
                _versions(run["output_versions"]),
                _count(_first_int(counts, IN_KEYS)),
                _count(_first_int(counts, OUT_KEYS)),
                _count(_first_int(counts, ("quarantined",))),
                duration,
            )
        )
    return rows


# --- quarantine --------------------------------------------------------------------------------------------


def quarantine_counts(lake: Lake) -> pl.DataFrame | None:
    """Rows in ``quarantine`` by stage and reason (``stage, reason, rows``), most first; None without the table."""
    if not _exists("quarantine", lake):
        return None
    return (
        features.read("quarantine", columns=["stage", "reason"], lake=lake)
        .group_by("stage", "reason")
        .agg(pl.len().alias("rows"))
        .sort(["rows", "stage", "reason"], descending=[True, False, False])
        .collect()
    )


# --- item embeddings ---------------------------------------------------------------------------------------


def _genre_list(attributes: str | None) -> list[str]:
    """Genres from an item's ``attributes`` JSON: a ``genres`` list, or a ``genre``/``genres`` string."""
    try:
        parsed = json.loads(attributes) if attributes else {}
    except json.JSONDecodeError:
        return []
    if not isinstance(parsed, dict):
        return []
    value = parsed.get("genres", parsed.get("genre"))
    if isinstance(value, str):
        value = value.replace("|", ",").split(",")
    if not isinstance(value, list):
        return []
    return [str(g).strip() for g in value if str(g).strip()]


def item_genres(lake: Lake) -> dict[str, str] | None:
    """Each item's label for colouring: its first genre when that is one of the ``TOP_GENRES`` most common
    first genres, else ``"other"`` (``"no genre"`` when it lists none); None without an ``items`` table."""
    if not _exists("items", lake):
        return None
    items = features.read("items", columns=["item_id", "attributes"], lake=lake).collect()
    first = {item: (genres[0] if (genres := _genre_list(attrs)) else NO_GENRE) for item, attrs in items.iter_rows()}
    ranked = Counter(g for g in first.values() if g != NO_GENRE).most_common()
    top = {g for g, _ in sorted(ranked, key=lambda gc: (-gc[1], gc[0]))[:TOP_GENRES]}
    return {item: g if g in top or g == NO_GENRE else OTHER for item, g in first.items()}


@dataclass(frozen=True)
class EmbeddingMap:
    """The 2-D PCA projection of one modality's item vectors.

    Attributes:
        modality: the modality.
        model_id: the embedding model whose vectors these are.
        item_ids: the items, sorted.
        xy: (N, 2) coordinates on the first two principal components.
        explained: share of variance on each of the two components.
        total: items with a vector (before any subsampling to ``MAX_MAP_POINTS``).
    """

    modality: str
    model_id: str
    item_ids: list[str]
    xy: np.ndarray
    explained: tuple[float, float]
    total: int


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Project rows onto their first two principal components (SVD of the centred data), deterministically.

    Each component's sign is fixed so that its largest-magnitude loading is positive (SVD's sign is
    arbitrary). Returns the (N, 2) coordinates and the share of variance each component explains.
    """
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    if x.shape[0] < 2 or not np.any(x):
        return np.zeros((x.shape[0], 2)), (0.0, 0.0)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    comps = vt[:2]
    signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
    comps = comps * signs[:, None]
    xy = x @ comps.T
    if xy.shape[1] < 2:
        xy = np.hstack([xy, np.zeros((xy.shape[0], 2 - xy.shape[1]))])
    variance = s**2
    share = variance / variance.sum()
    return xy, (float(share[0]), float(share[1]) if len(share) > 1 else 0.0)


def _latest_model(lake: Lake, modality: str) -> str | None:
    models = (
        features.read("item_embeddings", columns=["modality", "model_id", "computed_at"], lake=lake)
        .filter(pl.col("modality") == modality)
        .group_by("model_id")
        .agg(pl.col("computed_at").max())
        .sort(["computed_at", "model_id"])
        .collect()
    )
    return None if models.is_empty() else str(models["model_id"][-1])


def embedding_maps(lake: Lake, *, max_points: int = MAX_MAP_POINTS) -> list[EmbeddingMap] | None:
    """One PCA map per modality present (known modalities first), of its most recently computed model;
    None without an ``item_embeddings`` table. Larger tables are subsampled (seeded) to ``max_points``."""
    if not _exists("item_embeddings", lake):
        return None
    present = (
        features.read("item_embeddings", columns=["modality"], lake=lake)
        .select("modality")
        .unique()
        .collect()["modality"]
        .to_list()
    )
    known = modality_names()
    ordered = [m for m in known if m in present] + sorted(m for m in present if m not in known)
    maps = []
    for modality in ordered:
        model_id = _latest_model(lake, modality)
        if model_id is None:
            continue
        rows = (
            features.read("item_embeddings", columns=["item_id", "modality", "model_id", "dim", "vector"], lake=lake)
            .filter((pl.col("modality") == modality) & (pl.col("model_id") == model_id))
            .select("item_id", "dim", "vector")
            .collect()
        )
        dim = int(rows["dim"].mode().sort()[0])  # one width per model; guard against stray rows
        rows = rows.filter(pl.col("dim") == dim).sort("item_id")
        total = rows.height
        if total > max_points:
            keep = np.sort(np.random.default_rng(0).choice(total, size=max_points, replace=False))
            rows = rows[keep.tolist()]
        vectors = rows.select(pl.col("vector").list.to_array(dim)).to_series().to_numpy()
        finite = np.isfinite(vectors).all(axis=1)
        if not finite.all():  # a NaN vector would poison the SVD: leave it off the map
            rows, vectors = rows.filter(pl.Series(finite)), vectors[finite]
        xy, explained = pca_2d(vectors)
        maps.append(EmbeddingMap(modality, model_id, rows["item_id"].to_list(), xy, explained, total))
    return maps


# --- item graphs -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphDegrees:
    """Degrees of one graph's nodes (items with at least one edge).

    Attributes:
        graph: the graph's name.
        edges: edge count.
        out_degree: out-degree of every node (0 for nodes that only receive edges).
        in_degree: in-degree of every node (0 for nodes that only send edges).
    """

    graph: str
    edges: int
    out_degree: np.ndarray
    in_degree: np.ndarray

    @property
    def nodes(self) -> int:
        """Items with at least one edge."""
        return len(self.out_degree)


def graph_degrees(lake: Lake) -> list[GraphDegrees] | None:
    """Per graph of ``item_graph_edges`` (sorted by name), its nodes' in- and out-degrees; None without the table."""
    if not _exists("item_graph_edges", lake):
        return None
    edges = features.read("item_graph_edges", columns=["graph", "src", "dst"], lake=lake).collect()
    out = []
    for graph in sorted(edges["graph"].unique().to_list()):
        part = edges.filter(pl.col("graph") == graph)
        nodes = pl.concat([part["src"], part["dst"]]).unique().sort().to_frame("item")
        degree = (
            nodes.join(part.group_by("src").len("out"), left_on="item", right_on="src", how="left")
            .join(part.group_by("dst").len("in"), left_on="item", right_on="dst", how="left")
            .fill_null(0)
        )
        out.append(GraphDegrees(graph, part.height, degree["out"].to_numpy(), degree["in"].to_numpy()))
    return out


# --- models ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    """One registered model version and what its artifacts say.

    Attributes:
        model_name: registry name.
        version: registry version.
        alias: ``candidate``, ``production`` or None.
        metrics: the registry metrics (``{split: {protocol: {metric: value}}}``).
        baselines: the manifest's test metrics of the baselines (``{name: {protocol: {metric: value}}}``).
        folder: the artifact folder when it is a local folder that exists, else None.
        artifact_uri: where the artifact is: the location it was found at, else the registry's URI resolved
            against the lake.
        files: the artifact's file names, from its manifest (empty when none was readable).
        test_split: what identifies the test split its metrics were measured on (``test_split_of``), None
            when its manifest does not say.
    """

    model_name: str
    version: int
    alias: str | None
    metrics: dict
    baselines: dict
    folder: Path | None
    artifact_uri: str | None
    files: tuple[str, ...] = ()
    test_split: dict | None = None


def test_split_of(manifest: object) -> dict | None:
    """The test split a manifest's metrics come from: split seed and fractions, the ``turns`` version and the
    test sample count; None when the manifest lacks any of them."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("split"), dict):
        return None
    split, tables = manifest["split"], (manifest.get("inputs") or {}).get("tables") or {}
    found = {
        "seed": split.get("seed"),
        "fractions": split.get("fractions"),
        "turns": tables.get("turns"),
        "test_samples": (split.get("samples") or {}).get("test"),
    }
    return None if any(v is None for v in found.values()) else found


def _candidates(row: dict, lake: Lake, artifacts_root: str | os.PathLike[str] | None) -> list[str]:
    """Where a version's artifact may be: its registry URI, then under the override root, then the lake's."""
    name, version = row["model_name"], str(row["version"])
    out = [locate(row["artifact_uri"], lake=lake)] if row.get("artifact_uri") else []
    if artifacts_root is not None:
        out.append(str(Path(artifacts_root) / name / version))
    out.append(lake.path(ARTIFACTS_DIR, name, version))
    return out


def _info(row: dict, lake: Lake, artifacts_root: str | os.PathLike[str] | None) -> ModelInfo:
    candidates = _candidates(row, lake, artifacts_root)
    found, manifest = None, {}
    for location in candidates:
        try:
            manifest = read_manifest(location, lake=lake)
        except (OSError, ValueError):
            continue  # missing or unreadable here: try the next place
        found = location
        break
    if found is None:  # no manifest anywhere: a local folder may still hold files
        found = next((c for c in candidates if "://" not in c and Path(c).is_dir()), None)
    baselines = manifest.get("metrics", {}).get("baselines", {}) if isinstance(manifest, dict) else {}
    folder = Path(found) if found is not None and "://" not in found and Path(found).is_dir() else None
    return ModelInfo(
        row["model_name"],
        int(row["version"]),
        row["alias"],
        json.loads(row["metrics"] or "{}"),
        baselines if isinstance(baselines, dict) else {},
        folder,
        found or (candidates[0] if row.get("artifact_uri") else None),
        tuple(sorted(manifest.get("files", {}))) if isinstance(manifest, dict) else (),
        test_split_of(manifest),
    )


def models(lake: Lake, artifacts_root: str | os.PathLike[str] | None) -> tuple[ModelInfo, ModelInfo | None] | None:
    """The most recently registered model version and its model's production version (None when the latest
    is itself production or none exists); None when nothing is registered.

    A version's artifact is looked for at its registry ``artifact_uri`` (``_artifacts/<model>/<version>``
    under the lake, or an absolute location), then at ``<artifacts_root>/<model_name>/<version>`` when an
    override root is given (e.g. a copied lake's models), then under the lake's ``_artifacts``; any lake URI
    (local or an object store) works."""
    rows = features.read("model_registry", missing="empty", lake=lake).collect()
    if rows.is_empty():
        return None
    latest = rows.sort(["registered_at", "version"]).row(-1, named=True)
    production = rows.filter((pl.col("model_name") == latest["model_name"]) & (pl.col("alias") == "production"))
    prod = None
    if not production.is_empty() and int(production["version"][0]) != int(latest["version"]):
        prod = _info(production.row(0, named=True), lake, artifacts_root)
    return _info(latest, lake, artifacts_root), prod
