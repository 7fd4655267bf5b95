"""Graph stage: kNN graphs per embedding set, co-mention and transition graphs -> ``item_graph_edges``.

Each graph is one partition of ``item_graph_edges`` (graph, src, dst, weight, rank), written in one commit
whose metadata carries the graph's parameters, input table versions and (approximate kNN) sampled recall.
A graph is rebuilt only when its input table (``item_embeddings`` for kNN, ``turns`` otherwise) or its
parameters changed since its last successful build (``pipeline_runs``); kNN graphs whose embeddings are
absent are skipped with the reason. When the last build had the same parameters and its input changed
a little (new, changed or removed items; new dialogues only), the graph is updated where it changed
(``tasks.graphs.incremental``, ``training.turn_graphs.add_counts``) instead of rebuilt. A graph built with
HNSW saves its index as a blob (ids in the run's counts and the commit metadata); a delta over it adds the
new vectors to that index and searches them with it (``tasks.graphs.hnsw_delta``), or searches exactly when
the index cannot be read.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, is_dataclass

import numpy as np
import polars as pl
import torch

import features
from features import CommitInfo, Lake
from features.blobs import BlobIntegrityError
from features.runs import StageRun, latest_run, now_utc, record_run, reusable_run
from features.write import merge_changes
from tasks.graphs.hnsw_delta import INDEX_KEYS, HnswIndex, graph_index_store, load_index, save_index, update_hnsw
from tasks.graphs.incremental import ItemDelta, KnnUpdate, item_delta, old_lists, update_knn
from tasks.graphs.knn_faiss import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M
from tasks.graphs.knn_graph import (
    BACKENDS,
    EXACT_MAX_ITEMS,
    Backend,
    KnnConfig,
    knn_lists_index,
    lists_to_edges,
    normalised,
    sampled_recall,
    symmetrized,
)
from tasks.graphs.stats import graph_stats, knn_list_stats
from tasks.summary import StageSummary
from training import modalities as registry
from training.modalities import graph_names, knn_graphs
from training.turn_graphs import CoMentionConfig, add_counts, additive, mentions, new_dialogues

STAGE = "graphs"
EDGES = "item_graph_edges"
log = logging.getLogger("mmcrs.graphs")


@dataclass(frozen=True)
class GraphsConfig:
    """Which graphs to build and how. A dialogue-derived graph's builder takes the attributes its
    ``GraphSpec.options`` name (``co_mention``; ``transition_horizon`` and ``transition_min_count``).

    Attributes:
        graphs: names of registered graphs (``training.modalities``; default: every one): kNN graphs over a
            modality's vectors and graphs counted from dialogue turns.
        k: neighbours per item in kNN graphs.
        backend: ``auto`` (exact up to ``exact_max_items`` items, HNSW above), ``torch`` (exact, chunked),
            ``faiss`` (exact flat) or ``faiss-approx`` (HNSW; its recall against exact is measured on a
            sample and stored).
        exact_max_items: the ``auto`` threshold (the measured crossover of exact and HNSW build time).
        hnsw_m: HNSW links per node.
        hnsw_ef_construction: HNSW build beam width.
        hnsw_ef_search: HNSW search beam width.
        recall_sample: items whose exact neighbours measure an approximate graph's recall@k.
        symmetrize: add the reverse of every kNN edge (keeping the larger weight).
        block: rows per block of the torch backend (memory ~ block**2 floats).
        model_ids: ``modality -> model_id`` of the embeddings to use; default: the most recent per modality.
        co_mention: window, min count and weighting of the co-mention graph.
        transition_horizon: next mention-bearing turns an item points to (transition graph).
        transition_min_count: drop rarer transitions.
        device: torch device of the exact backend (default: CUDA when present).
        incremental: update a graph where its input changed instead of rebuilding it, when possible.
        max_delta_fraction: rebuild a kNN graph whole when more than this fraction of its items changed, or of
            its saved HNSW index's rows are dead (rows of removed or changed items, which HNSW cannot drop).
    """

    graphs: tuple[str, ...] = field(default_factory=graph_names)
    k: int = 10
    backend: Backend = "auto"
    exact_max_items: int = EXACT_MAX_ITEMS
    hnsw_m: int = HNSW_M
    hnsw_ef_construction: int = HNSW_EF_CONSTRUCTION
    hnsw_ef_search: int = HNSW_EF_SEARCH
    recall_sample: int = 1000
    symmetrize: bool = False
    block: int = 4096
    model_ids: tuple[tuple[str, str], ...] = ()
    co_mention: CoMentionConfig = field(default_factory=CoMentionConfig)
    transition_horizon: int = 1
    transition_min_count: int = 1
    device: str | None = None
    incremental: bool = True
    max_delta_fraction: float = 0.2

    def __post_init__(self) -> None:
        unknown = set(self.graphs) - set(graph_names())
        if unknown:
            raise ValueError(f"unknown graphs {sorted(unknown)}; known: {list(graph_names())}")
        if self.k < 1:
            raise ValueError("k must be at least 1")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown kNN backend {self.backend!r}; known: {list(BACKENDS)}")

    def knn(self) -> KnnConfig:
        """The kNN options of this config."""
        names = [f for f in KnnConfig.__dataclass_fields__ if hasattr(self, f)]
        return KnnConfig(**{name: getattr(self, name) for name in names})


@dataclass
class GraphsSummary(StageSummary):
    """What a graph run did, per graph: built / skipped (with the reason) and the statistics."""

    title = "graphs"

    built: dict[str, dict[str, object]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def rows(self) -> list[dict[str, object]]:
        """One row per graph built, with its statistics."""
        return [{"graph": g, **{c: stats.get(c, "") for c in STAT_COLUMNS}} for g, stats in self.built.items()]

    def notes(self) -> list[str]:
        """The graphs skipped, with the reason."""
        return [f"{graph}: skipped — {why}" for graph, why in self.skipped.items()]


STAT_COLUMNS = (
    "nodes",
    "edges",
    "isolated",
    "degree_mean",
    "degree_p50",
    "degree_p90",
    "degree_max",
    "mean_neighbour_similarity",
    "mode",
    "backend",
    "recall_at_k_vs_exact",
    "seconds",
)


def _jsonable(value: object) -> object:
    """A builder option as fingerprinted: dataclass configs as dicts."""
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def _ranked(edges: pl.DataFrame, graph: str) -> pl.DataFrame:
    """Add ``graph`` and ``rank`` (1 = heaviest out-edge of its source; ties by dst)."""
    ordered = edges.sort(["src", "weight", "dst"], descending=[False, True, False])
    return ordered.select(
        pl.lit(graph).alias("graph"),
        "src",
        "dst",
        pl.col("weight").cast(pl.Float32),
        pl.int_range(1, pl.len() + 1).over("src").cast(pl.Int32).alias("rank"),
    )


_STAMP = pl.struct("source_hash", "computed_at").hash().alias("stamp")  # what changes when a vector does


def _embedding_rows(modality: str, model_id: str | None, lake: Lake, version: int) -> tuple[str | None, pl.LazyFrame]:
    """(model_id, rows) of one embedding set at a table version; the most recent model by default."""
    rows = features.read("item_embeddings", version=version, lake=lake).filter(pl.col("modality") == modality)
    if model_id is None:
        latest = rows.group_by("model_id").agg(pl.col("computed_at").max()).sort("computed_at").collect()
        if latest.height == 0:
            return None, rows
        model_id = str(latest["model_id"][-1])
    return model_id, rows.filter(pl.col("model_id") == model_id)


def _embeddings(
    modality: str, model_id: str | None, lake: Lake, version: int
) -> tuple[str | None, pl.DataFrame, np.ndarray]:
    """(model_id, ``item_id, stamp`` sorted by id, (N, D) float32) of one embedding set. The vectors go from
    the Arrow list column to one numpy array (no Python lists)."""
    model_id, rows = _embedding_rows(modality, model_id, lake, version)
    chosen = rows.select("item_id", _STAMP, "vector").sort("item_id").collect()
    if chosen.height == 0:
        return model_id, chosen.drop("vector"), np.zeros((0, 0), np.float32)
    dims = chosen["vector"].list.len().unique()
    if dims.len() != 1:
        raise ValueError(f"{modality} embeddings of {model_id} have vectors of several sizes: {dims.to_list()}")
    flat = chosen["vector"].explode().cast(pl.Float32).to_numpy(writable=True)
    return model_id, chosen.drop("vector"), flat.reshape(chosen.height, int(dims[0]))


class _Builder:
    def __init__(self, lake: Lake, config: GraphsConfig, run_id: str | None, summary: GraphsSummary) -> None:
        self.lake, self.config, self.run_id, self.summary = lake, config, run_id, summary
        self.model_ids = dict(config.model_ids)

    def _options(self, graph: str) -> dict[str, object]:
        """A dialogue-derived graph's builder options, read from the config (``GraphSpec.options``)."""
        return {keyword: getattr(self.config, attribute) for keyword, attribute in registry.graph(graph).options}

    def _knn_params(self, items: int) -> dict[str, object]:
        """The parameters that define a kNN graph of ``items`` items (the backend resolved by size)."""
        knn = self.config.knn()
        exact = knn.resolved(items) != "faiss-approx"
        params: dict[str, object] = {"k": knn.k, "symmetrize": knn.symmetrize, "exact": exact}
        return params if exact else params | {"hnsw": knn.hnsw()}

    def build(self, graph: str, *, force: bool) -> None:
        spec = registry.graph(graph)
        table = spec.input_table
        version = features.table_version(table, lake=self.lake)
        if version is None:
            self.summary.skipped[graph] = f"no {table} table in the lake"
            return
        params: dict[str, object] = {k: _jsonable(v) for k, v in self._options(graph).items()}
        vectors: tuple[pl.DataFrame, np.ndarray] | None = None
        if spec.is_knn:
            modality = knn_graphs()[graph]
            model_id, stamps, matrix = _embeddings(modality, self.model_ids.get(modality), self.lake, version)
            if stamps.height < 2:
                self.summary.skipped[graph] = f"no {modality} embeddings (run `mmcrs embed` first)"
                return
            params = self._knn_params(stamps.height) | {"model_id": model_id}
            vectors = (stamps, matrix)
        params_hash = features.config_hash({"graph": graph, **params})
        fingerprint = features.config_hash({"params": params_hash, "code": features.code_version()})
        if not force and reusable_run(f"{STAGE}:{graph}", fingerprint, watched=[table], lake=self.lake) is not None:
            self.summary.skipped[graph] = f"unchanged since the last build ({table} v{version}, same parameters)"
            return
        build = _Build(graph, table, version, params, params_hash, fingerprint)
        previous = self._index_refs(graph)
        base = None if force or not self.config.incremental else self._base_version(build)
        done = None
        if base is not None:
            done = self._knn_update(build, base, vectors) if vectors else self._turns_update(build, base)
        if done is None:
            done = self._full(build, vectors)
        self._record(build, *done)
        self._prune_index(previous, done[0])

    def _base_version(self, build: _Build) -> int | None:
        """The input version of the graph's last build with the same parameters, when its partition has not
        been written since (else None: no base to update)."""
        row = latest_run(f"{STAGE}:{build.graph}", lake=self.lake)
        if row is None or json.loads(str(row["counts"] or "{}")).get("params_hash") != build.params_hash:
            return None
        inputs, outputs = json.loads(str(row["input_versions"])), json.loads(str(row["output_versions"]))
        if build.table not in inputs or EDGES not in outputs:
            return None
        later = features.history(EDGES, lake=self.lake).filter(pl.col("version") > outputs[EDGES])
        if any(json.loads(meta).get("graph") == build.graph for meta in later["metadata"]):
            return None
        return int(inputs[build.table])

    def _full(
        self, build: _Build, vectors: tuple[pl.DataFrame, np.ndarray] | None
    ) -> tuple[dict[str, object], int | None]:
        """Build the whole graph and replace its partition: (stats, edges version)."""
        if vectors is not None:
            stamps, matrix = vectors
            indices, scores, notes, index = knn_lists_index(normalised(matrix), self.config.knn())
            edges = lists_to_edges(stamps["item_id"], np.arange(stamps.height), indices, scores)
            edges = symmetrized(edges) if self.config.symmetrize else edges
            stats = graph_stats(edges, stamps.height, similarity=True) | notes
            if index is not None and not self.config.symmetrize:
                stats |= save_index(graph_index_store(self.lake), HnswIndex(index, stamps["item_id"]))
        else:
            turns = features.read("turns", version=build.version, lake=self.lake)
            nodes = mentions(turns).select("item").unique().select(pl.len()).collect().item()
            builder = registry.graph(build.graph).builder
            assert builder is not None  # not a kNN graph
            edges = builder(turns, **self._options(build.graph))
            stats = dict(graph_stats(edges, nodes))
        stats["mode"] = "full"
        result = features.replace_partition(
            EDGES,
            _ranked(edges, build.graph),
            partition={"graph": build.graph},
            commit=self._commit(build, stats),
            lake=self.lake,
        )
        return stats, result.version

    def _stored(self, graph: str) -> pl.DataFrame:
        """The graph's stored edges ``src, dst, weight, rank``."""
        edges = features.read(EDGES, columns=["graph", "src", "dst", "weight", "rank"], lake=self.lake)
        return edges.filter(pl.col("graph") == graph).drop("graph").collect()

    def _knn_update(
        self, build: _Build, base: int, vectors: tuple[pl.DataFrame, np.ndarray] | None
    ) -> tuple[dict[str, object], int | None] | None:
        """Update the kNN graph for the items changed since the base build (None: rebuild it whole)."""
        assert vectors is not None
        stamps, matrix = vectors
        modality, k = knn_graphs()[build.graph], self.config.k
        try:
            _, rows = _embedding_rows(modality, str(build.params["model_id"]), self.lake, base)
            previous = rows.select("item_id", _STAMP).collect()
        except features.LakeError:  # the base version is no longer readable (vacuumed)
            return None
        delta = item_delta(stamps, previous)
        if self.config.symmetrize or previous.height <= k or delta.fraction > self.config.max_delta_fraction:
            return None
        ids, stored, x = stamps["item_id"], self._stored(build.graph), normalised(matrix)
        old = old_lists(ids, stored, k)
        hnsw = None if build.params["exact"] else self._base_index(build.graph)
        if hnsw is not None and hnsw.rows.null_count() > self.config.max_delta_fraction * len(hnsw.rows):
            log.info("graph %s: too many dead rows in its HNSW index; rebuilt whole", build.graph)
            return None
        if hnsw is None:
            update, refs = _knn_apply(x, *old, delta, k=k, block=self.config.block), {}
        else:
            update, updated = update_hnsw(x, ids, old, delta, hnsw, k=k, ef_search=self.config.hnsw_ef_search)
            refs = save_index(graph_index_store(self.lake), updated)
        changed = _ranked(
            lists_to_edges(ids, update.rows, update.indices[update.rows], update.scores[update.rows]), build.graph
        )
        sources = pl.concat([changed["src"].unique(), delta.removed])
        stale = stored.filter(pl.col("src").is_in(sources.implode())).join(changed, on=["src", "dst"], how="anti")
        stats = knn_list_stats(update.indices, update.scores) | _update_notes(delta, update) | refs
        if not build.params["exact"]:
            recall = sampled_recall(x, update.indices, k=k, sample=self.config.recall_sample, block=self.config.block)
            stats |= {
                "delta_search": "exact" if hnsw is None else "hnsw",
                "recall_at_k_vs_exact": round(recall, 4),
                "recall_sample": min(self.config.recall_sample, len(ids)),
            }
        if changed.height == 0 and stale.height == 0:
            return stats, features.table_version(EDGES, lake=self.lake)
        stale = stale.select(pl.lit(build.graph).alias("graph"), "src", "dst")
        result = merge_changes(EDGES, changed, stale, commit=self._commit(build, stats), lake=self.lake)
        return stats, result.version

    def _index_refs(self, graph: str) -> dict[str, str]:
        """The blob ids of the HNSW index saved with the graph's last build (empty when none)."""
        row = latest_run(f"{STAGE}:{graph}", lake=self.lake)
        counts = json.loads(str(row["counts"] or "{}")) if row is not None else {}
        return {key: str(counts[key]) for key in INDEX_KEYS if key in counts}

    def _prune_index(self, previous: dict[str, str], stats: dict[str, object]) -> None:
        """Delete the index blobs of the build this one replaced (recorded first, so a crash keeps them)."""
        kept = {str(stats[key]) for key in INDEX_KEYS if key in stats}
        store = graph_index_store(self.lake)
        for sha in set(previous.values()) - kept:
            store.delete(sha)

    def _base_index(self, graph: str) -> HnswIndex | None:
        """The HNSW index saved with the graph's last build (None, with the reason logged, when there is none
        or it cannot be read: the delta is then searched exactly)."""
        refs = self._index_refs(graph)
        if any(key not in refs for key in INDEX_KEYS):
            log.warning("graph %s: no HNSW index saved with its last build; the delta is searched exactly", graph)
            return None
        try:
            return load_index(graph_index_store(self.lake), {key: str(refs[key]) for key in INDEX_KEYS})
        except (OSError, BlobIntegrityError, ValueError, RuntimeError) as error:
            log.warning("graph %s: HNSW index unreadable (%s); the delta is searched exactly", graph, error)
            return None

    def _turns_update(self, build: _Build, base: int) -> tuple[dict[str, object], int | None] | None:
        """Add the pair counts of the dialogues new since the base build to the stored counts (None: recount)."""
        spec, options = registry.graph(build.graph), self._options(build.graph)
        if spec.builder is None or not additive(spec.builder, options):
            return None
        turns = features.read("turns", version=build.version, lake=self.lake)
        try:
            new = new_dialogues(turns, features.read("turns", version=base, lake=self.lake))
        except features.LakeError:
            return None
        if new is None:
            return None
        stored = self._stored(build.graph).drop("rank")
        delta = spec.builder(turns.filter(pl.col("dialogue_id").is_in(new.implode())), **options)
        updated = add_counts(stored, delta)
        touched = stored.filter(pl.col("src").is_in(updated["src"].unique().implode()))
        rows = _ranked(pl.concat([touched.join(updated, on=["src", "dst"], how="anti"), updated]), build.graph)
        edges = pl.concat([stored.join(updated, on=["src", "dst"], how="anti"), updated])
        nodes = mentions(turns).select("item").unique().select(pl.len()).collect().item()
        stats = graph_stats(edges, nodes) | {
            "mode": "incremental",
            "new_dialogues": new.len(),
            "rows_rewritten": rows.height,
        }
        if rows.height == 0:
            return stats, features.table_version(EDGES, lake=self.lake)
        result = features.upsert(EDGES, rows, commit=self._commit(build, stats), lake=self.lake)
        return stats, result.version

    def _commit(self, build: _Build, stats: dict[str, object]) -> CommitInfo:
        """The commit of one graph write: parameters, input version, mode and (approximate) sampled recall."""
        extra = {"graph": build.graph, "params": json.dumps(build.params, sort_keys=True, default=str)}
        noted = ("mode", "backend", "recall_at_k_vs_exact", *INDEX_KEYS)
        extra |= {key: str(stats[key]) for key in noted if key in stats}
        return CommitInfo(
            stage=STAGE,
            flow_run_id=self.run_id,
            config_hash=build.fingerprint,
            input_versions={build.table: build.version},
            extra=extra,
        )

    def _record(self, build: _Build, stats: dict[str, object], edges_version: int | None) -> None:
        seconds = round(time.perf_counter() - build.started, 3)
        out = {build.table: build.version}
        if edges_version is not None:
            out[EDGES] = edges_version
            self.summary.versions[EDGES] = edges_version
        record_run(
            StageRun(
                stage=f"{STAGE}:{build.graph}",
                fingerprint=build.fingerprint,
                status="ok",
                flow_run_id=self.run_id,
                config_hash=build.fingerprint,
                input_versions={build.table: build.version},
                output_versions=out,
                counts=stats | {"params_hash": build.params_hash},
                started_at=now_utc(),
                duration_s=seconds,
            ),
            lake=self.lake,
        )
        self.summary.built[build.graph] = {**stats, "seconds": seconds, "params": build.params}
        log.info("graph %s: %s", build.graph, stats)


@dataclass(frozen=True)
class _Build:
    """One graph build in progress: what it reads and the parameters that define it."""

    graph: str
    table: str
    version: int
    params: dict[str, object]
    params_hash: str
    fingerprint: str
    started: float = field(default_factory=time.perf_counter)


def _knn_apply(
    x: torch.Tensor, old_idx: np.ndarray, old_sc: np.ndarray, delta: ItemDelta, *, k: int, block: int
) -> KnnUpdate:
    """The base lists updated for ``delta`` (unchanged when nothing changed)."""
    if len(delta.fresh) == 0 and len(delta.removed) == 0:
        return KnnUpdate(old_idx, old_sc, np.zeros(0, dtype=np.int64), 0, 0)
    return update_knn(x, old_idx, old_sc, delta.fresh, k=k, block=block)


def _update_notes(delta: ItemDelta, update: KnnUpdate) -> dict[str, object]:
    """What an incremental kNN update did, for the run's record."""
    return {
        "mode": "incremental",
        **delta.counts(),
        "searched": update.searched,
        "entered": update.entered,
        "rows_rewritten": len(update.rows),
    }


def build_graphs(
    *,
    lake: Lake | str | None = None,
    config: GraphsConfig | None = None,
    run_id: str | None = None,
    force: bool = False,
) -> GraphsSummary:
    """Build (or skip, when unchanged) every configured graph.

    Args:
        lake: lake root.
        config: graphs and their parameters (default ``GraphsConfig()``).
        run_id: flow run id recorded in the commits.
        force: rebuild even when inputs and parameters are unchanged.

    Returns:
        The ``GraphsSummary``: statistics of each graph built, the reason each other graph was skipped.
    """
    resolved, cfg, started = features.resolve_lake(lake), config or GraphsConfig(), time.perf_counter()
    summary = GraphsSummary()
    builder = _Builder(resolved, cfg, run_id, summary)
    for graph in cfg.graphs:
        builder.build(graph, force=force)
    summary.elapsed_s = round(time.perf_counter() - started, 3)
    return summary
