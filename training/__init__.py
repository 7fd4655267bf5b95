"""Plain PyTorch training for mmcrs (no Prefect): samples, graph-prompt model, metrics, export, registry, loading.

Example:
    >>> import training
    >>> rec = training.load("mmcrs-graph-prompt", "production", lake="./lake")   # doctest: +SKIP
    >>> rec.recommend([{"role": "seeker", "text": "I loved @123"}], k=10)           # doctest: +SKIP

``training.load`` is the function (it shadows the ``training.load`` submodule on purpose; import the module's
other names with ``from training.load import ...``).
"""

from __future__ import annotations

from training.load import ArtifactError, Recommender, load

__all__ = ["ArtifactError", "Recommender", "load"]
