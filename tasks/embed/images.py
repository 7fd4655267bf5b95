"""Poster images for the CLIP image tower: blob bytes -> decoded, preprocessed tensors, in DataLoader workers.

Decoding runs in worker processes (``num_workers``) so it overlaps the model's forward pass; a poster that
fails to decode comes back as a failure with its reason instead of stopping the batch.
"""

from __future__ import annotations

import io
import multiprocessing
import multiprocessing.context
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from features.blobs import BlobStore


@dataclass
class ImageBatch:
    """One collated batch: the decoded images and the posters that failed."""

    indices: list[int]  # positions in the dataset of the rows of ``pixels``
    pixels: torch.Tensor | None  # (B, 3, H, W)
    failures: list[tuple[int, str]]  # (position, reason)


class PosterDataset(Dataset[tuple[int, torch.Tensor | None, str | None]]):
    """Posters by sha256 from the blob store, decoded with Pillow and transformed by ``preprocess``."""

    def __init__(self, shas: Sequence[str], store: BlobStore, preprocess: Callable[..., torch.Tensor]) -> None:
        self.shas, self.store, self.preprocess = list(shas), store, preprocess

    def __len__(self) -> int:
        return len(self.shas)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            data = self.store.get(self.shas[index])
        except (OSError, ValueError) as exc:
            return index, None, f"blob unreadable: {exc}"
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                return index, self.preprocess(image.convert("RGB")), None
        except Exception as exc:  # Pillow raises many types for broken files
            return index, None, f"image decode failed: {type(exc).__name__}: {exc}"


def _collate(items: list[tuple[int, torch.Tensor | None, str | None]]) -> ImageBatch:
    good = [(i, t) for i, t, _ in items if t is not None]
    failures = [(i, reason or "unknown") for i, t, reason in items if t is None]
    pixels = torch.stack([t for _, t in good]) if good else None
    return ImageBatch([i for i, _ in good], pixels, failures)


def _worker_context() -> multiprocessing.context.BaseContext:
    """Workers fork from a clean server process that has torch and Pillow imported once.

    Forking the caller directly is unsafe under Prefect and pytest (their threads and captured file
    descriptors are copied half-way); spawning would import torch again in every worker.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "PIL.Image", "tasks.embed.images"])
    return context


def poster_loader(dataset: PosterDataset, *, batch_size: int, num_workers: int, pin_memory: bool) -> DataLoader:
    """Batches of decoded posters in dataset order; decode workers prefetch while the model computes."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=pin_memory,
        prefetch_factor=4 if num_workers else None,
        multiprocessing_context=_worker_context() if num_workers else None,
    )
