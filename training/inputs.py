"""The exact inputs of a registered model: every lake table at the version the model was trained on.

Example:
    >>> import training
    >>> inputs = training.read_inputs("mmcrs-graph-prompt@production", lake="./lake")   # doctest: +SKIP
    >>> inputs["turns"].filter(pl.col("role") == "seeker").collect()                    # doctest: +SKIP
"""

from __future__ import annotations

import json

import polars as pl

import features
from features import Lake
from training.registry import resolve

DEFAULT_REF = "production"


def split_model_ref(model: str, version_or_alias: str | int | None = None) -> tuple[str, str]:
    """``("name", "ref")`` from ``"name@ref"`` (or ``"name"`` and ``version_or_alias``, default production).

    Example:
        >>> split_model_ref("mmcrs-graph-prompt@3")
        ('mmcrs-graph-prompt', '3')
    """
    name, at, ref = model.rpartition("@")
    if not at:
        name, ref = model, ""
    if ref and version_or_alias is not None and str(version_or_alias) != ref:
        raise ValueError(f"{model!r} names version {ref!r}, and version_or_alias says {version_or_alias!r}")
    return name, ref or str(version_or_alias if version_or_alias is not None else DEFAULT_REF)


def input_versions(
    model: str, version_or_alias: str | int | None = None, *, lake: Lake | str | None = None
) -> dict[str, int]:
    """The table versions a registered model was trained on (its registry row's ``input_versions``, else its
    artifact manifest's ``inputs.tables``).

    Raises:
        LookupError: no such model, version or alias in the registry.
    """
    from training.artifacts import locate, read_manifest

    resolved = features.resolve_lake(lake)
    name, ref = split_model_ref(model, version_or_alias)
    row = resolve(name, ref, lake=resolved)
    versions = json.loads(row["input_versions"] or "{}")
    if not versions and row["artifact_uri"]:
        manifest = read_manifest(locate(row["artifact_uri"], lake=resolved), lake=resolved)
        versions = manifest.get("inputs", {}).get("tables", {})
    return {str(table): int(version) for table, version in sorted(versions.items())}


def read_inputs(
    model: str, version_or_alias: str | int | None = None, *, lake: Lake | str | None = None
) -> dict[str, pl.LazyFrame]:
    """Lazy frames of every table a registered model read, each pinned at the version it was trained on.

    Args:
        model: ``"name@version"``, ``"name@alias"`` (``candidate``, ``production``) or ``"name"``.
        version_or_alias: the version or alias when ``model`` names none (default ``production``).
        lake: the lake the model is registered in.

    Raises:
        LookupError: no such model, version or alias in the registry.
        features.LakeError: a version is no longer readable (vacuumed past it).
    """
    resolved = features.resolve_lake(lake)
    versions = input_versions(model, version_or_alias, lake=resolved)
    return {table: features.read(table, version=version, lake=resolved) for table, version in versions.items()}
