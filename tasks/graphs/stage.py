"""Graph stage: kNN graphs per embedding set, co-mention and transition graphs -> ``item_graph_edges``.

Each graph is one partition of ``item_graph_edges`` (graph, src, dst, weight, rank), replaced whole in one
commit whose metadata carries the graph's parameters and input table versions. A graph is rebuilt only when
its input table (``item_embeddings`` for kNN, ``turns`` otherwise) or its parameters changed since its last
successful build (``pipeline_runs``); kNN graphs whose embeddings are absent are skipped with the reason.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Literal, get_args

import numpy as np
import polars as pl
import torch

import features
from features import CommitInfo, Lake
from features.runs import StageRun, now_utc, record_run, reusable_run
from tasks.graphs.knn import knn_exact
from tasks.graphs.knn_faiss import knn_faiss_flat, knn_faiss_hnsw, recall_at_k
from tasks.graphs.stats import graph_stats
from tasks.summary import StageSummary
from training import modalities as registry
from training.modalities import graph_names, knn_graphs
from training.turn_graphs import CoMentionConfig, mentions

STAGE = "graphs"
Backend = Literal["torch", "faiss", "faiss-approx"]
BACKENDS: tuple[str, ...] = get_args(Backend)
log = logging.getLogger("mmcrs.graphs")


@dataclass(frozen=True)
class GraphsConfig:
    """Which graphs to build and how. A dialogue-derived graph's builder takes the attributes its
    ``GraphSpec.options`` name (``co_mention``; ``transition_horizon`` and ``transition_min_count``).

    Attributes:
        graphs: names of registered graphs (``training.modalities``; default: every one): kNN graphs over a
            modality's vectors and graphs counted from dialogue turns.
        k: neighbours per item in kNN graphs.
        backend: ``torch`` (exact, chunked), ``faiss`` (exact flat) or ``faiss-approx`` (HNSW; its recall
            against exact is measured on a sample and logged).
        symmetrize: add the reverse of every kNN edge (keeping the larger weight).
        block: rows per block of the torch backend (memory ~ block**2 floats).
        model_ids: ``modality -> model_id`` of the embeddings to use; default: the most recent per modality.
        co_mention: window, min count and weighting of the co-mention graph.
        transition_horizon: next mention-bearing turns an item points to (transition graph).
        transition_min_count: drop rarer transitions.
        device: torch device of the exact backend (default: CUDA when present).
    """

    graphs: tuple[str, ...] = field(default_factory=graph_names)
    k: int = 10
    backend: Backend = "torch"
    symmetrize: bool = False
    block: int = 4096
    model_ids: tuple[tuple[str, str], ...] = ()
    co_mention: CoMentionConfig = field(default_factory=CoMentionConfig)
    transition_horizon: int = 1
    transition_min_count: int = 1
    device: str | None = None

    def __post_init__(self) -> None:
        unknown = set(self.graphs) - set(graph_names())
        if unknown:
            raise ValueError(f"unknown graphs {sorted(unknown)}; known: {list(graph_names())}")
        if self.k < 1:
            raise ValueError("k must be at least 1")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown kNN backend {self.backend!r}; known: {list(BACKENDS)}")


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


def _embeddings(modality: str, model_id: str | None, lake: Lake) -> tuple[str | None, list[str], np.ndarray]:
    """(model_id, item ids sorted, (N, D) float32) of one embedding set; the most recent model by default."""
    rows = features.read("item_embeddings", missing="empty", lake=lake).filter(pl.col("modality") == modality)
    if model_id is None:
        latest = rows.group_by("model_id").agg(pl.col("computed_at").max()).sort("computed_at").collect()
        if latest.height == 0:
            return None, [], np.zeros((0, 0), np.float32)
        model_id = str(latest["model_id"][-1])
    chosen = rows.filter(pl.col("model_id") == model_id).select("item_id", "vector").sort("item_id").collect()
    vectors = np.asarray(chosen["vector"].to_list(), dtype=np.float32) if chosen.height else np.zeros((0, 0))
    return model_id, chosen["item_id"].to_list(), vectors


def knn_edges(ids: list[str], vectors: np.ndarray, config: GraphsConfig) -> tuple[pl.DataFrame, dict[str, object]]:
    """kNN edges ``src, dst, weight`` with the chosen backend, and backend notes (recall for approximate)."""
    notes: dict[str, object] = {}
    if config.backend == "torch":
        idx_t, sim_t = knn_exact(torch.from_numpy(vectors), k=config.k, block=config.block, device=config.device)
        indices, scores = idx_t.numpy(), sim_t.numpy()
    elif config.backend == "faiss":
        indices, scores = knn_faiss_flat(vectors, k=config.k)
    else:
        indices, scores = knn_faiss_hnsw(vectors, k=config.k)
        sample = np.random.default_rng(0).choice(len(ids), size=min(1000, len(ids)), replace=False)
        exact, _ = knn_faiss_flat(vectors, k=config.k)
        notes["recall_at_k_vs_exact"] = round(recall_at_k(indices[sample], exact[sample]), 4)
        log.info("approximate kNN: recall@%d against exact = %.4f", config.k, notes["recall_at_k_vs_exact"])
    names = np.asarray(ids, dtype=object)
    k = indices.shape[1]
    edges = pl.DataFrame(
        {
            "src": np.repeat(names, k).tolist(),
            "dst": names[indices.reshape(-1)].tolist(),
            "weight": scores.reshape(-1).astype(np.float32),
        }
    )
    if config.symmetrize:
        reverse = edges.select(pl.col("dst").alias("src"), pl.col("src").alias("dst"), "weight")
        edges = pl.concat([edges, reverse]).group_by("src", "dst").agg(pl.col("weight").max())
    return edges, notes


class _Builder:
    def __init__(self, lake: Lake, config: GraphsConfig, run_id: str | None, summary: GraphsSummary) -> None:
        self.lake, self.config, self.run_id, self.summary = lake, config, run_id, summary
        self.model_ids = dict(config.model_ids)

    def _options(self, graph: str) -> dict[str, object]:
        """A dialogue-derived graph's builder options, read from the config (``GraphSpec.options``)."""
        return {keyword: getattr(self.config, attribute) for keyword, attribute in registry.graph(graph).options}

    def _inputs(self, graph: str) -> tuple[str, dict[str, object]]:
        """(input table, parameters that define the graph)."""
        cfg, spec = self.config, registry.graph(graph)
        if spec.is_knn:
            params: dict[str, object] = {
                "k": cfg.k,
                "symmetrize": cfg.symmetrize,
                "exact": cfg.backend != "faiss-approx",
            }
            return spec.input_table, params
        return spec.input_table, {k: _jsonable(v) for k, v in self._options(graph).items()}

    def build(self, graph: str, *, force: bool) -> None:
        table, params = self._inputs(graph)
        version = features.table_version(table, lake=self.lake)
        if version is None:
            self.summary.skipped[graph] = f"no {table} table in the lake"
            return
        vectors: tuple[list[str], np.ndarray] | None = None
        if registry.graph(graph).is_knn:
            modality = knn_graphs()[graph]
            model_id, ids, matrix = _embeddings(modality, self.model_ids.get(modality), self.lake)
            if len(ids) < 2:
                self.summary.skipped[graph] = f"no {modality} embeddings (run `mmcrs embed` first)"
                return
            params["model_id"], vectors = model_id, (ids, matrix)
        fingerprint = features.config_hash({"graph": graph, **params, "code": features.code_version()})
        stage = f"{STAGE}:{graph}"
        if not force and reusable_run(stage, fingerprint, watched=[table], lake=self.lake) is not None:
            self.summary.skipped[graph] = f"unchanged since the last build ({table} v{version}, same parameters)"
            return
        started = time.perf_counter()
        edges, stats = self._knn(vectors) if vectors is not None else self._from_turns(graph, version)
        self._write(graph, _ranked(edges, graph), table, version, params, fingerprint, stats, started)

    def _knn(self, vectors: tuple[list[str], np.ndarray]) -> tuple[pl.DataFrame, dict[str, object]]:
        ids, matrix = vectors
        edges, notes = knn_edges(ids, matrix, self.config)
        return edges, graph_stats(edges, len(ids), similarity=True) | notes

    def _from_turns(self, graph: str, version: int) -> tuple[pl.DataFrame, dict[str, object]]:
        turns = features.read("turns", version=version, lake=self.lake)
        nodes = mentions(turns).select("item").unique().select(pl.len()).collect().item()
        builder = registry.graph(graph).builder
        assert builder is not None  # not a kNN graph
        edges = builder(turns, **self._options(graph))
        return edges, dict(graph_stats(edges, nodes))

    def _write(
        self,
        graph: str,
        edges: pl.DataFrame,
        table: str,
        version: int,
        params: dict[str, object],
        fingerprint: str,
        stats: dict[str, object],
        started: float,
    ) -> None:
        commit = CommitInfo(
            stage=STAGE,
            flow_run_id=self.run_id,
            config_hash=fingerprint,
            input_versions={table: version},
            extra={"graph": graph, "params": json.dumps(params, sort_keys=True, default=str)},
        )
        result = features.replace_partition(
            "item_graph_edges", edges, partition={"graph": graph}, commit=commit, lake=self.lake
        )
        seconds = round(time.perf_counter() - started, 3)
        out = {table: version}
        if result.version is not None:
            out["item_graph_edges"] = result.version
            self.summary.versions["item_graph_edges"] = result.version
        record_run(
            StageRun(
                stage=f"{STAGE}:{graph}",
                fingerprint=fingerprint,
                status="ok",
                flow_run_id=self.run_id,
                config_hash=fingerprint,
                input_versions={table: version},
                output_versions=out,
                counts=stats,
                started_at=now_utc(),
                duration_s=seconds,
            ),
            lake=self.lake,
        )
        self.summary.built[graph] = {**stats, "seconds": seconds, "params": params}
        log.info("graph %s: %s", graph, stats)


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
