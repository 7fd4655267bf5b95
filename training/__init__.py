"""Plain PyTorch training for mmcrs (no Prefect): samples, graph-prompt model, metrics, export, registry, loading.

Example:
    >>> import training
    >>> rec = training.load("mmcrs-graph-prompt", "production", lake="./lake")   # doctest: +SKIP
    >>> rec.recommend([{"role": "seeker", "text": "I loved @123"}], k=10)           # doctest: +SKIP
    >>> training.read_inputs("mmcrs-graph-prompt@production", lake="./lake")["turns"]   # doctest: +SKIP

``training.load`` is the function (it shadows the ``training.load`` submodule on purpose; import the module's
other names with ``from training.loading import ...``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.inputs import input_versions, read_inputs
    from training.loading import ArtifactError, Recommender, load

__all__ = ["ArtifactError", "Recommender", "input_versions", "load", "read_inputs"]
_MODULES = {"input_versions": "training.inputs", "read_inputs": "training.inputs"}


def __getattr__(name: str) -> Any:
    """``training.load`` and friends import torch only when first used (registries stay light to import)."""
    if name in __all__:
        import importlib

        value = getattr(importlib.import_module(_MODULES.get(name, "training.loading")), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'training' has no attribute {name!r}")
