"""The stage settings a lake runs with, stored in the lake itself: ``<lake>/_settings/mmcrs.toml``.

The demo writes the settings it ran with there (``mmcrs settings save FILE`` writes a user's); every later run
on that lake — ``mmcrs run``, a stage command, a deployment — starts from them, and what a command or a
deployment passes explicitly goes on top. So a lake built by the demo stays up to date with ``mmcrs run``,
and a nightly deployment needs no settings of its own.

Example:
    >>> lake = resolve_lake("/tmp/lake-settings-example")  # doctest: +SKIP
    >>> write_stage_settings(lake, {"embed": {"clip_model": "local:/models/clip"}})  # doctest: +SKIP
    >>> read_stage_settings(lake)["embed"]["clip_model"]  # doctest: +SKIP
    'local:/models/clip'
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from features.blobs import filesystem
from features.errors import LakeError
from features.lake import Lake

SETTINGS_PATH = ("_settings", "mmcrs.toml")
HEADER = "# The stage settings this lake runs with (written by mmcrs; every run on this lake starts from them).\n"


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, tables merged key by key (``None`` in ``over`` leaves ``base``'s value)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping):
            below = out.get(key)
            out[key] = merge(below if isinstance(below, Mapping) else {}, value)
        elif value is not None:
            out[key] = value
    return out


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def to_toml(settings: Mapping[str, Any], prefix: str = "") -> str:
    """A TOML document of nested tables of scalars and lists (``None`` values are left out)."""
    scalars = [f"{k} = {_value(v)}" for k, v in settings.items() if v is not None and not isinstance(v, Mapping)]
    parts = ([f"[{prefix}]"] if prefix and scalars else []) + scalars
    text = "\n".join(parts) + ("\n" if parts else "")
    for key, value in settings.items():
        if isinstance(value, Mapping):
            sub = to_toml(value, f"{prefix}.{key}" if prefix else key)
            text += ("\n" if text and sub else "") + sub
    return text


def _location(lake: Lake) -> tuple[Any, str]:
    """(pyarrow filesystem or None for a local folder, path of the settings file)."""
    if lake.is_local:
        return None, str(Path(lake.root, *SETTINGS_PATH))
    return filesystem(lake.path(*SETTINGS_PATH), lake.options())


def read_stage_settings(lake: Lake) -> dict[str, dict[str, Any]]:
    """The lake's stored stage settings (``{}`` when it has none); a broken file raises ``LakeError``."""
    fs, path = _location(lake)
    try:
        if fs is None:
            if not Path(path).is_file():
                return {}
            text = Path(path).read_text()
        else:
            if fs.get_file_info(path).type.name == "NotFound":
                return {}
            with fs.open_input_stream(path) as stream:
                text = stream.read().decode()
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LakeError(f"the lake's settings file {lake.path(*SETTINGS_PATH)} is unreadable: {exc}") from None
    if not all(isinstance(v, dict) for v in data.values()):
        raise LakeError(f"{lake.path(*SETTINGS_PATH)}: expected a table per stage")
    return data


def write_stage_settings(lake: Lake, settings: Mapping[str, Mapping[str, Any]]) -> str:
    """Store ``settings`` as the lake's stage settings (replacing what was there); returns the file's URI."""
    text = HEADER + to_toml(settings)
    fs, path = _location(lake)
    if fs is None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".tmp")
        partial.write_text(text)
        partial.replace(target)  # never a half-written settings file
    else:
        with fs.open_output_stream(path) as stream:
            stream.write(text.encode())
    return lake.path(*SETTINGS_PATH)
