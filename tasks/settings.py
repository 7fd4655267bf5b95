"""What every stage receives: its own settings (a frozen, validated dataclass) and the run's context.

A stage's settings are the parameters a user gives it (``mmcrs <stage> --...``, ``[<stage>]`` in a settings
file, a deployment's ``settings`` parameter). ``StageSettings.from_dict`` is the one place they are checked:
an unknown key or a value of the wrong type is a ``ValueError`` naming the stage, the key and what is
expected, raised before any work starts.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class ToySettings(StageSettings):
    ...     k: int = 10
    >>> ToySettings.from_dict({"k": 5}, stage="toy")
    ToySettings(k=5)
    >>> ToySettings.from_dict({"kk": 5}, stage="toy")
    Traceback (most recent call last):
    ...
    ValueError: unknown setting 'kk' for stage toy; known: k
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self, Union, get_args, get_origin

from features import Lake

TASK_RUNNERS: tuple[str, ...] = ("default", "dask")


def check_task_runner(kind: str, dask_address: str | None, dask_workers: int) -> None:
    """Raise ``ValueError`` for an unknown runner or options that do not fit it."""
    if kind not in TASK_RUNNERS:
        raise ValueError(f"unknown task runner {kind!r}: {' | '.join(TASK_RUNNERS)}")
    if dask_workers < 1:
        raise ValueError("dask_workers must be at least 1")
    if dask_address and kind != "dask":
        raise ValueError("dask_address needs task_runner='dask'")


@dataclass(frozen=True)
class StageContext:
    """Where and as what a stage runs: resolved once at the edge (CLI, flow), never re-read inside a stage.

    Attributes:
        lake: the resolved lake.
        run_id: the flow run recorded in the stage's commits (None outside Prefect).
        artifacts_root: where model artifacts go (None: the stage's own default).
        runs_later_stages: this run also runs stages after ingest, so the ingest does not announce new
            dialogues (the event would trigger a retrain of what this run computes itself).
    """

    lake: Lake
    run_id: str | None = None
    artifacts_root: str | None = None
    runs_later_stages: bool = False


def _matches(value: object, hint: Any) -> bool:
    """True when ``value`` fits the type hint (the JSON / TOML shapes settings arrive in)."""
    if hint is Any or hint is object:
        return True
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_matches(value, arg) for arg in get_args(hint))
    if origin is Literal:
        return value in get_args(hint)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (tuple, list, typing.Sequence):
        args = [a for a in get_args(hint) if a is not Ellipsis]
        return isinstance(value, list | tuple) and all(_matches(v, args[0]) for v in value) if args else True
    if origin in (dict, Mapping):
        return isinstance(value, Mapping)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _coerce(value: object, hint: Any) -> object:
    """Lists become tuples where the field is a tuple (frozen settings stay hashable)."""
    if isinstance(value, list) and tuple in {get_origin(hint), *(get_origin(a) for a in get_args(hint))}:
        return tuple(value)
    return value


def _describe(hint: Any) -> str:
    if get_origin(hint) is Literal:
        return "one of " + " | ".join(map(str, get_args(hint)))
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in get_args(hint))
    return getattr(hint, "__name__", str(hint).replace("typing.", ""))


@dataclass(frozen=True, kw_only=True)  # ``enabled`` never takes a subclass's first positional argument
class StageSettings:
    """Base of every stage's settings: validated construction from a mapping, and the values given.

    Attributes:
        enabled: False turns the stage off on this lake (every run skips it, saying so).
    """

    enabled: bool = True

    @classmethod
    def from_dict(cls, values: Mapping[str, object] | None, *, stage: str) -> Self:
        """Build the settings from user-given values; raises ``ValueError`` on an unknown key or a wrong type."""
        given = dict(values or {})
        fields = {f.name for f in dataclasses.fields(cls)}
        hints = typing.get_type_hints(cls)
        for key, value in given.items():
            if key not in fields:
                raise ValueError(f"unknown setting {key!r} for stage {stage}; known: {', '.join(sorted(fields))}")
            if not _matches(value, hints[key]):
                raise ValueError(f"setting {key!r} of stage {stage} must be {_describe(hints[key])}, got {value!r}")
        return cls(**{k: _coerce(v, hints[k]) for k, v in given.items()})

    def given(self) -> dict[str, object]:
        """The values that differ from the defaults (what a run's fingerprint hashes)."""
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            default = f.default if f.default is not dataclasses.MISSING else None
            if f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            value = getattr(self, f.name)
            if value != default:
                out[f.name] = value
        return out
