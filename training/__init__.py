"""Plain PyTorch training for mmcrs (no Prefect): samples, graph-prompt model, metrics, export, registry, loading.

Example:
    >>> import training
    >>> rec = training.load("mmcrs-graph-prompt", "production", lake="./lake")   # doctest: +SKIP
    >>> rec.recommend([{"role": "seeker", "text": "I loved @123"}], k=10)           # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.load import Recommender

__all__ = ["load"]


def load(model_name: str, version_or_alias: str | int = "production", **kwargs: Any) -> Recommender:
    """Load a registered model (see ``training.load.load``); imports torch lazily."""
    from training.load import load as _load

    return _load(model_name, version_or_alias, **kwargs)
