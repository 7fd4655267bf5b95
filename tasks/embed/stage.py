"""Embedding stage: item posters and texts -> ``item_embeddings``, incremental, resumable, at model speed.

Reader -> mapper -> writer per modality: ``plan.todo`` finds the items whose vector for (source hash,
modality, model_id) is missing; they are cut into shards; each shard is encoded in batches (posters decoded
by DataLoader workers while the model computes) and committed as one ``item_embeddings`` upsert, so a killed
run loses at most the shard in flight and the re-run continues after the last committed shard. Posters that
fail to decode go to ``quarantine``. An unchanged catalog plans nothing and loads no model.

Scale-out: with a ``runner`` (``ShardRunner``), every shard of every modality becomes a ``ShardJob`` that a
worker encodes with ``encode_shard`` (encoders cached per worker process: loaded once, not per shard); the
worker returns the vectors and this process commits each shard as it arrives, one commit per shard as in the
in-process path. Why the caller commits instead of the workers: ``item_embeddings`` keeps one writer per
stage (DESIGN.md), a shard's upsert is a Delta *merge* (it reads the table), and concurrent merges conflict
and must be retried, each retry re-reading a table that grows with every shard; object stores without a
put-if-absent commit protocol make several writers unsafe besides. A shard's vectors are small next to its
compute (1,024 x 512 float32 = 2 MiB), so shipping them back costs little and the commit stays atomic per shard.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl
import torch

import features
from features import CommitInfo, Lake, QuarantineRecord
from features.blobs import poster_store
from tasks.embed.config import EmbedConfig
from tasks.embed.images import PosterDataset, poster_loader
from tasks.embed.plan import STORED, source_columns, todo
from tasks.progress import Progress
from tasks.summary import StageSummary
from training import modalities as registry
from training.encoders.clip import ClipEncoder
from training.encoders.device import is_oom
from training.encoders.text import TextEncoder
from training.modalities import Encoder

STAGE = "embed"
log = logging.getLogger("mmcrs.embed")


@dataclass
class ModalitySummary:
    """Counts and speed of one modality: what the plan found, then what the committed shards did.

    Attributes:
        modality / model_id / random_weights: what encoded it (``random_weights``: a ``random:`` CLIP, whose
            vectors carry no meaning).
        candidates / up_to_date: items with a source for this modality, and those whose vector for the current
            source and model was already stored (the rest are embedded).
        embedded / failed / truncated / shards: vectors written, posters quarantined as undecodable, texts cut
            to the encoder's token limit, and shards committed.
        seconds / worker_seconds: wall time of the modality; scale-out: encode time summed over the workers.
    """

    modality: str
    model_id: str
    random_weights: bool
    candidates: int
    up_to_date: int
    embedded: int = 0
    failed: int = 0
    truncated: int = 0
    shards: int = 0
    seconds: float = 0.0
    worker_seconds: float = 0.0

    def count_shard(self, *, embedded: int, failed: int = 0, truncated: int = 0, worker_s: float = 0.0) -> None:
        """Add one committed shard (``worker_s``: its encode time on a scale-out worker)."""
        self.embedded += embedded
        self.failed += failed
        self.truncated += truncated
        self.shards += 1
        self.worker_seconds = round(self.worker_seconds + worker_s, 3)

    @property
    def items_per_s(self) -> float:
        """Embedded items per second of this modality's wall time."""
        return round(self.embedded / self.seconds, 1) if self.seconds else 0.0

    @property
    def items_per_worker_s(self) -> float:
        """Scale-out: embedded items per second of worker encode time (what one worker sustains)."""
        return round(self.embedded / self.worker_seconds, 1) if self.worker_seconds else 0.0


@dataclass
class EmbedSummary(StageSummary):
    """What one embedding run did."""

    title = "embed"

    modalities: dict[str, ModalitySummary] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    runner: str = "in-process"
    workers: list[str] = field(default_factory=list)  # scale-out: the workers that encoded shards
    model_loads: int = 0  # scale-out: encoder loads on the workers (at most one per model and worker)

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable copy (with items/s per modality)."""
        out = asdict(self)
        for name, summary in self.modalities.items():
            out["modalities"][name]["items_per_s"] = summary.items_per_s
            out["modalities"][name]["items_per_worker_s"] = summary.items_per_worker_s
        return out

    def rows(self) -> list[dict[str, object]]:
        """One row per modality: model, candidates, up to date, embedded, failed, truncated, items/s."""
        keys = ("modality", "model_id", "candidates", "up_to_date", "embedded", "failed", "truncated", "items_per_s")
        return [{k: getattr(s, k) for k in keys} for s in self.modalities.values()]

    def notes(self) -> list[str]:
        """Warnings, and the workers of a scale-out run."""
        lines = [f"warning: {w}" for w in self.warnings]
        if self.workers:
            lines.append(
                f"ran on {len(self.workers)} workers ({', '.join(self.workers)}), {self.model_loads} model loads"
            )
        return lines


@dataclass(frozen=True)
class ShardJob:
    """One shard of one modality, as a worker receives it.

    Attributes:
        modality: what to encode.
        index: the shard's position within its modality (0, 1, ...).
        rows: ``item_id, source_hash, payload, stored`` (payload: poster sha256 or text; stored: the item has an
            older vector), at most ``shard_size`` rows.
        encoder: the modality's encoder kind (a worker needs no registry lookup).
    """

    modality: str
    index: int
    rows: pl.DataFrame
    encoder: Encoder


@dataclass
class ShardResult:
    """What a worker sends back for one shard: vectors for the rows that encoded, the posters that failed.

    Attributes:
        modality / index: the shard's ``ShardJob``.
        rows: the job's rows that got a vector, in the order of ``vectors``.
        vectors: (len(rows), dim) float32.
        failures: (position in the job's rows, reason) of the posters that could not be decoded.
        truncated: texts cut at the encoder's token limit.
        compute_s: seconds the worker spent on this shard (model load included when it loaded one).
        model_loads: encoders this shard had to load (0 once the worker holds them).
        worker: ``host:pid`` of the process that encoded the shard.
    """

    modality: str
    index: int
    rows: pl.DataFrame
    vectors: np.ndarray
    failures: list[tuple[int, str]]
    truncated: int
    compute_s: float
    model_loads: int
    worker: str


ShardRunner = Callable[[Iterable[ShardJob]], Iterable[ShardResult]]
"""Runs shard jobs somewhere (e.g. Prefect tasks on a Dask cluster) and yields their results as they finish;
a failed shard is raised after the other shards' results have been yielded (and committed)."""


def _shards(frame: pl.DataFrame, size: int) -> Iterator[pl.DataFrame]:
    for start in range(0, frame.height, size):
        yield frame.slice(start, size)


class _Batcher:
    """Runs one encoder over a list of inputs in batches, halving the batch on a CUDA out-of-memory error."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def run(self, encode: Callable[[list[Any]], Any], inputs: Sequence[Any], device: torch.device) -> np.ndarray:
        out: list[np.ndarray] = []
        start = 0
        while start < len(inputs):
            chunk = list(inputs[start : start + self.batch_size])
            try:
                out.append(np.asarray(encode(chunk), dtype=np.float32))
            except RuntimeError as exc:
                if device.type != "cuda" or not is_oom(exc) or self.batch_size == 1:
                    raise
                torch.cuda.empty_cache()
                self.batch_size = max(1, self.batch_size // 2)
                log.warning("CUDA out of memory: batch size halved to %d", self.batch_size)
                continue
            start += len(chunk)
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def _model_id(kind: Encoder, config: EmbedConfig) -> str:
    """The ``model_id`` the configured model of encoder ``kind`` writes, without loading it."""
    if kind.uses_clip:
        return ClipEncoder.model_id_for(config.clip_model)
    return TextEncoder.model_id_for(config.text_model)


def _load_encoder(kind: Encoder, config: EmbedConfig) -> ClipEncoder | TextEncoder:
    if kind.uses_clip:
        return ClipEncoder.load(config.clip_model, device=config.device)
    return TextEncoder.load(config.text_model, device=config.device, max_length=config.text_max_length)


def _encode_texts(encoder: ClipEncoder | TextEncoder, texts: list[str], config: EmbedConfig) -> tuple[np.ndarray, int]:
    """(N, D) float32 vectors of ``texts`` and the number cut at the encoder's token limit."""
    if isinstance(encoder, TextEncoder):
        vectors, truncated = encoder.encode(texts, batch_size=config.batch_size)
        return np.asarray(vectors, dtype=np.float32), truncated
    cut = [0]

    def encode(batch: list[str]) -> torch.Tensor:
        out, n = encoder.encode_texts(batch)
        cut[0] += n
        return out

    return _Batcher(config.batch_size).run(encode, texts, encoder.device), cut[0]


@dataclass
class _Posters:
    """Posters encoded so far: positions (in the work rows) that got a vector, their vectors, the failures,
    and the seconds spent waiting for decoded images / computing."""

    kept: list[int] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)
    read_s: float = 0.0
    compute_s: float = 0.0

    def extend(self, other: _Posters) -> None:
        self.kept += other.kept
        self.vectors += other.vectors
        self.failures += other.failures
        self.read_s += other.read_s
        self.compute_s += other.compute_s

    def end(self) -> int:
        """One past the last position seen (the loader keeps the rows' order)."""
        return max(self.kept[-1:] + [i for i, _ in self.failures[-1:]]) + 1

    def rows(self, work: pl.DataFrame) -> pl.DataFrame:
        return work[self.kept] if self.kept else work.clear()

    def matrix(self) -> np.ndarray:
        return np.concatenate(self.vectors) if self.vectors else np.zeros((0, 1), np.float32)


def _encode_posters(clip: ClipEncoder, rows: pl.DataFrame, config: EmbedConfig, lake: Lake) -> Iterator[_Posters]:
    """The poster mapper: decode (DataLoader workers prefetch while the model computes) and encode, one
    ``_Posters`` per batch, positions into ``rows``."""
    # Dask workers are daemonic processes, which may not start DataLoader decode workers: decode in-line
    # there (the cluster's workers are the parallelism); tiny jobs skip the worker start-up.
    daemon = multiprocessing.current_process().daemon
    workers = 0 if daemon or rows.height <= 2 * config.batch_size else config.num_workers
    dataset = PosterDataset(rows["payload"].to_list(), poster_store(lake), clip.preprocess)
    loader = poster_loader(
        dataset, batch_size=config.batch_size, num_workers=workers, pin_memory=clip.device.type == "cuda"
    )
    batcher = _Batcher(config.batch_size)
    waited = time.perf_counter()
    for batch in loader:
        out = _Posters(failures=list(batch.failures), read_s=time.perf_counter() - waited)
        began = time.perf_counter()
        if batch.pixels is not None:
            out.vectors.append(
                batcher.run(lambda xs: clip.encode_images(torch.stack(xs)), list(batch.pixels), clip.device)
            )
            out.kept += batch.indices
        out.compute_s = time.perf_counter() - began
        log.debug(
            "image batch: %d decoded, %d failed, compute %.3f s", len(batch.indices), len(out.failures), out.compute_s
        )
        yield out
        waited = time.perf_counter()


class _Embedder:
    """Encodes and writes the shards of one modality."""

    def __init__(self, lake: Lake, config: EmbedConfig, commit: CommitInfo, summary: EmbedSummary) -> None:
        self.lake, self.config, self.commit, self.summary = lake, config, commit, summary
        self._encoders: dict[bool, ClipEncoder | TextEncoder] = {}  # by ``uses_clip``: one model each

    def model_id(self, modality: str) -> str:
        return _model_id(registry.modality(modality).encoder, self.config)

    def encoder(self, kind: Encoder) -> ClipEncoder | TextEncoder:
        """The encoder of ``kind``, loaded on first use."""
        if kind.uses_clip not in self._encoders:
            self._encoders[kind.uses_clip] = _load_encoder(kind, self.config)
        return self._encoders[kind.uses_clip]

    def run(self, plans: dict[str, pl.DataFrame], on_shard: Callable[[int], None]) -> None:
        """Encode and commit every planned shard here, modality by modality."""
        for modality, work in plans.items():
            stats, began = self.summary.modalities[modality], time.perf_counter()
            if registry.modality(modality).encoder is Encoder.CLIP_IMAGE:
                self.images(work, stats, on_shard)
            else:
                for shard in _shards(work, self.config.shard_size):
                    self.texts(shard, stats)
                    on_shard(shard.height)
            stats.seconds = round(time.perf_counter() - began, 3)

    def images(self, work: pl.DataFrame, stats: ModalitySummary, on_shard: Callable[[int], None]) -> None:
        """Embed posters through one DataLoader (decode workers start once and prefetch across shards);
        every ``shard_size`` posters are committed as one shard."""
        if not work.height:
            return
        clip = self.encoder(Encoder.CLIP_IMAGE)
        assert isinstance(clip, ClipEncoder)
        shard, start = _Posters(), 0
        for batch in _encode_posters(clip, work, self.config, self.lake):
            shard.extend(batch)
            end = shard.end()
            if end - start >= self.config.shard_size or end == work.height:
                self._commit_posters(work, start, end, shard, stats)
                on_shard(end - start)
                shard, start = _Posters(), end

    def _commit_posters(
        self, work: pl.DataFrame, start: int, end: int, shard: _Posters, stats: ModalitySummary
    ) -> None:
        began = time.perf_counter()
        rows = shard.rows(work)
        self._write(rows, shard.matrix(), stats.modality, stats.model_id)
        self._quarantine(work, shard.failures, stats.modality, stats.model_id)
        stats.count_shard(embedded=rows.height, failed=len(shard.failures))
        log.info(
            "%s shard %d (items %d-%d): %d embedded, %d failed; read %.2f s, compute %.2f s, write %.2f s",
            stats.modality,
            stats.shards,
            start,
            end - 1,
            rows.height,
            len(shard.failures),
            shard.read_s,
            shard.compute_s,
            time.perf_counter() - began,
        )

    def texts(self, shard: pl.DataFrame, stats: ModalitySummary) -> None:
        """Encode one shard of texts and commit it."""
        started = time.perf_counter()
        encoder = self.encoder(registry.modality(stats.modality).encoder)
        vectors, truncated = _encode_texts(encoder, shard["payload"].to_list(), self.config)
        compute_s, started = time.perf_counter() - started, time.perf_counter()
        self._write(shard, vectors, stats.modality, stats.model_id)
        stats.count_shard(embedded=shard.height, truncated=truncated)
        log.info(
            "%s shard %d: %d embedded; compute %.2f s, write %.2f s",
            stats.modality,
            stats.shards,
            shard.height,
            compute_s,
            time.perf_counter() - started,
        )

    def _write(self, rows: pl.DataFrame, vectors: np.ndarray, modality: str, model_id: str) -> None:
        """Commit one shard's vectors: appended for items with no vector yet (one commit that reads nothing of
        the table, so a shard costs the same however large the table grew), merged on the key for items whose
        older vector it replaces."""
        if rows.height == 0:
            return
        frame = self._frame(rows, vectors, modality, model_id)
        fresh = ~rows[STORED] if STORED in rows.columns else pl.Series([False] * rows.height)
        if fresh.any():
            app = f"embed/{modality}/{model_id}"
            version = features.table_version("item_embeddings", lake=self.lake)
            next_version = 0 if version is None else version + 1  # above any version this app recorded before
            result = features.append(
                "item_embeddings",
                frame.filter(fresh),
                commit=self.commit,
                app_id=app,
                app_version=next_version,
                lake=self.lake,
            )
            self.summary.versions["item_embeddings"] = int(result.version or 0)
        if not fresh.all():
            result = features.upsert("item_embeddings", frame.filter(~fresh), commit=self.commit, lake=self.lake)
            if result.version is not None:
                self.summary.versions["item_embeddings"] = result.version

    @staticmethod
    def _frame(rows: pl.DataFrame, vectors: np.ndarray, modality: str, model_id: str) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "item_id": rows["item_id"],
                "modality": modality,
                "model_id": model_id,
                "source_hash": rows["source_hash"],
                "dim": np.int32(vectors.shape[1]),
                "vector": pl.Series("vector", list(vectors), dtype=pl.List(pl.Float32)),
                "computed_at": datetime.now(UTC),
            },
            schema_overrides={"dim": pl.Int32},
        )

    def commit_shard(self, result: ShardResult, job: ShardJob, stats: ModalitySummary) -> None:
        """Commit one worker's shard: its vectors (appended or merged, as ``_write``), its undecodable posters to
        ``quarantine``."""
        began = time.perf_counter()
        self._write(result.rows, result.vectors, result.modality, stats.model_id)
        self._quarantine(job.rows, result.failures, result.modality, stats.model_id)
        stats.count_shard(
            embedded=result.rows.height,
            failed=len(result.failures),
            truncated=result.truncated,
            worker_s=result.compute_s,
        )
        log.info(
            "%s shard %d from %s: %d embedded, %d failed; worker %.2f s, write %.2f s",
            result.modality,
            result.index,
            result.worker,
            result.rows.height,
            len(result.failures),
            result.compute_s,
            time.perf_counter() - began,
        )

    def _quarantine(self, shard: pl.DataFrame, failures: list[tuple[int, str]], modality: str, model_id: str) -> None:
        records = [
            QuarantineRecord(
                f"embed:{modality}", shard["item_id"][i], reason[:500], f"poster {shard['payload'][i]} ({model_id})"
            )
            for i, reason in failures
        ]
        result = features.quarantine(records, commit=self.commit, lake=self.lake)
        if result is not None and result.version is not None:
            self.summary.versions["quarantine"] = result.version


# Worker side of the scale-out path: encoders live as long as the worker process, one per model spec.
_WORKER_ENCODERS: dict[tuple[str, ...], ClipEncoder | TextEncoder] = {}
_WORKER_LOCK = threading.Lock()


def _worker_encoder(kind: Encoder, config: EmbedConfig) -> tuple[ClipEncoder | TextEncoder, int]:
    """(encoder, 1 if it was loaded now else 0): loaded once per worker process and spec, then reused."""
    key = (
        str(kind.uses_clip),
        config.clip_model if kind.uses_clip else config.text_model,
        str(config.device),
        "" if kind.uses_clip else str(config.text_max_length),
    )
    with _WORKER_LOCK:  # a worker with several threads still loads each model once
        if key in _WORKER_ENCODERS:
            return _WORKER_ENCODERS[key], 0
        _WORKER_ENCODERS[key] = _load_encoder(kind, config)
        return _WORKER_ENCODERS[key], 1


def encode_shard(job: ShardJob, *, config: EmbedConfig, lake: Lake) -> ShardResult:
    """Encode one shard (worker side of the scale-out path); writes nothing.

    The encoders are cached in the worker process, so a worker loads each model once however many shards it
    encodes. ``lake`` must be the resolved ``Lake`` (root URI and storage options): posters are read from
    its blob store, and a worker on another machine has neither the caller's environment nor its config file.
    """
    began = time.perf_counter()
    encoder, loads = _worker_encoder(job.encoder, config)
    if isinstance(encoder, ClipEncoder) and job.encoder is Encoder.CLIP_IMAGE:
        posters = _Posters()
        for batch in _encode_posters(encoder, job.rows, config, lake):
            posters.extend(batch)
        rows, vectors, failures, truncated = posters.rows(job.rows), posters.matrix(), posters.failures, 0
    else:
        vectors, truncated = _encode_texts(encoder, job.rows["payload"].to_list(), config)
        rows, failures = job.rows, []
    return ShardResult(
        job.modality,
        job.index,
        rows,
        vectors,
        failures,
        truncated,
        round(time.perf_counter() - began, 3),
        loads,
        f"{socket.gethostname()}:{os.getpid()}",
    )


def _items(lake: Lake, modalities: Iterable[str]) -> pl.DataFrame:
    """The ``items`` columns that the sources of ``modalities`` read (empty without an ``items`` table)."""
    wanted = (c for m in modalities for c in source_columns(registry.modality(m).source))
    columns = list(dict.fromkeys(["item_id", *wanted]))
    return features.read("items", columns=columns, missing="empty", lake=lake).collect()


def _plan(embedder: _Embedder, items: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Per configured modality, the rows to embed; fills the summary's counts and random-weight warnings."""
    cfg, summary, plans = embedder.config, embedder.summary, {}
    for modality in cfg.modalities:
        model_id = embedder.model_id(modality)
        work, up_to_date = todo(items, modality, model_id, embedder.lake)
        random = registry.modality(modality).encoder.uses_clip and cfg.clip_model.startswith("random:")
        summary.modalities[modality] = ModalitySummary(
            modality, model_id, random_weights=random, candidates=work.height + up_to_date, up_to_date=up_to_date
        )
        plans[modality] = work
        if random and work.height:
            summary.warnings.append(
                f"{modality}: RANDOM WEIGHTS ({cfg.clip_model}) — these vectors carry no "
                "meaning; pass --model with real open_clip weights for real features"
            )
    for warning in summary.warnings:
        log.warning(warning)
    return plans


def _counter(total: int, progress: Progress | None) -> Callable[[int], None]:
    """A per-shard callback that adds up the items done and reports (done, total) to ``progress``."""
    done = 0

    def on_shard(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    return on_shard


NO_CLIP = (
    "skipped: no CLIP weights configured. Set one in the lake's settings (`[embed] clip_model = \"local:/path/to/"
    'open_clip_folder"`, or `hub:ORG/NAME` online) or pass `mmcrs embed --model SPEC`; `random:ARCH@SEED` gives '
    "random vectors (tests and demos only)."
)


def _without_unconfigured_clip(config: EmbedConfig, summary: EmbedSummary) -> EmbedConfig:
    """The config without the CLIP modalities when no CLIP model is configured (said once in the summary):
    never random weights unless a ``random:`` spec was asked for."""
    if config.clip_model is not None:
        return config
    clip = [m for m in config.modalities if registry.modality(m).encoder.uses_clip]
    if clip:
        summary.warnings.append(f"{', '.join(clip)} {NO_CLIP}")
    return dataclasses.replace(config, modalities=tuple(m for m in config.modalities if m not in clip))


def embed(
    *,
    lake: Lake | str | None = None,
    config: EmbedConfig | None = None,
    run_id: str | None = None,
    progress: Progress | None = None,
    runner: ShardRunner | None = None,
    runner_name: str = "in-process",
) -> EmbedSummary:
    """Embed every item whose vector for its current poster / text and the configured model is missing.

    Args:
        lake: lake root.
        config: modalities, models, batch and shard sizes, device (default ``EmbedConfig()``).
        run_id: flow run id recorded in the commits.
        progress: called with (items done, items to do) after each shard.
        runner: scale-out: runs ``encode_shard`` on every shard somewhere else (e.g. Prefect tasks on a Dask
            cluster); this process commits each returned shard. None encodes here, shard by shard.
        runner_name: how the summary names the runner.

    Returns:
        The ``EmbedSummary``. A second run on an unchanged lake embeds nothing and loads no model.
    """
    resolved, started = features.resolve_lake(lake), time.perf_counter()
    summary = EmbedSummary(runner=runner_name)
    cfg = _without_unconfigured_clip(config or EmbedConfig(), summary)
    commit = CommitInfo(
        stage=STAGE,
        flow_run_id=run_id,
        config_hash=features.config_hash(cfg.hashable()),
        input_versions=features.table_versions(["items", "poster_blobs"], lake=resolved),
    )
    embedder = _Embedder(resolved, cfg, commit, summary)
    plans = _plan(embedder, _items(resolved, cfg.modalities))
    on_shard = _counter(sum(p.height for p in plans.values()), progress)
    if runner is not None:
        _run_sharded(runner, plans, embedder, summary, on_shard)
    else:
        embedder.run(plans, on_shard)
    summary.elapsed_s = round(time.perf_counter() - started, 3)
    return summary


def _run_sharded(
    runner: ShardRunner,
    plans: dict[str, pl.DataFrame],
    embedder: _Embedder,
    summary: EmbedSummary,
    on_shard: Callable[[int], None],
) -> None:
    """Hand every shard of every modality to ``runner``; commit each result as it comes back."""
    cfg, began = embedder.config, time.perf_counter()
    jobs = {
        (m, i): ShardJob(m, i, shard, registry.modality(m).encoder)
        for m, work in plans.items()
        for i, shard in enumerate(_shards(work, cfg.shard_size))
    }
    workers: set[str] = set()
    for result in runner(iter(jobs.values())):
        job, stats = jobs[(result.modality, result.index)], summary.modalities[result.modality]
        embedder.commit_shard(result, job, stats)
        summary.model_loads += result.model_loads
        workers.add(result.worker)
        stats.seconds = round(time.perf_counter() - began, 3)  # modalities overlap: wall until its last shard
        on_shard(job.rows.height)
    summary.workers = sorted(workers)
