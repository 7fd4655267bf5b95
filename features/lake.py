"""Where the lake lives: one root URI (a local folder or any object store Delta supports).

Resolution order, first hit wins:

1. an explicit ``lake=`` argument (the CLI's ``--lake``),
2. the ``MMCRS_LAKE`` environment variable,
3. the ``[lake]`` section of the config file (``MMCRS_CONFIG`` or ``./mmcrs.toml``),
4. ``./lake``.

Storage options (credentials, endpoints) come from ``MMCRS_STORAGE_OPTIONS`` (a JSON object) or the
config file's ``[lake.storage_options]`` table.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from features.errors import LakeError

DEFAULT_ROOT = "lake"
CONFIG_ENV = "MMCRS_CONFIG"
DEFAULT_CONFIG_FILE = "mmcrs.toml"


@dataclass(frozen=True)
class Lake:
    """A resolved lake root.

    Attributes:
        root: absolute local path or URI (``s3://bucket/prefix``), without a trailing slash.
        storage_options: options passed to Delta for object stores (empty for local folders).
    """

    root: str
    storage_options: dict[str, str] = field(default_factory=dict, repr=False)  # credentials: never in a repr

    @property
    def is_local(self) -> bool:
        """True when the root is a folder on this machine."""
        return "://" not in self.root or self.root.startswith("file://")

    def table_uri(self, name: str) -> str:
        """The URI of one table under this root."""
        return f"{self.root}/{name}"

    def path(self, *parts: str) -> str:
        """A URI beside the tables (e.g. the blob store), under the same root."""
        return "/".join([self.root, *parts])

    def options(self) -> dict[str, str] | None:
        """Storage options as Delta and polars expect them (None when empty)."""
        return dict(self.storage_options) or None


def config_file() -> Path | None:
    """The config file: ``MMCRS_CONFIG`` or ``./mmcrs.toml``, None when that file does not exist."""
    path = Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG_FILE))
    return path if path.is_file() else None


def _config_lake_section() -> dict[str, Any]:
    path = config_file()
    if path is None:
        return {}
    try:
        with path.open("rb") as fh:
            section = tomllib.load(fh).get("lake", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LakeError(f"config file {path} is unreadable: {exc}") from None
    if not isinstance(section, dict):
        raise LakeError(f"config file {path}: [lake] must be a table")
    if not isinstance(section.get("storage_options", {}), dict):
        raise LakeError(f"config file {path}: [lake.storage_options] must be a table")
    return section


def _env_storage_options() -> dict[str, str]:
    """``MMCRS_STORAGE_OPTIONS``: a JSON object of option names to values (``{}`` when unset)."""
    text = os.environ.get("MMCRS_STORAGE_OPTIONS")
    if not text:
        return {}
    try:
        loaded = json.loads(text)
    except ValueError as exc:
        raise LakeError(f"MMCRS_STORAGE_OPTIONS is not JSON: {exc}") from None
    if not isinstance(loaded, dict) or any(isinstance(v, dict | list) for v in loaded.values()):
        raise LakeError('MMCRS_STORAGE_OPTIONS must be a JSON object of names to values, e.g. {"aws_region": "x"}')
    return {str(k): str(v) for k, v in loaded.items()}


def _normalise_root(root: str) -> str:
    if not root.strip():
        raise LakeError("the lake root is empty: pass --lake DIR_OR_URI")
    root = root.rstrip("/") or "/"
    if root.startswith("file://"):
        root = root[len("file://") :]
    if "://" in root:
        return root
    path = Path(root).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise LakeError(f"the lake root {path} is a file, not a folder")
    return str(path)


def resolve_lake(lake: Lake | str | os.PathLike[str] | None = None) -> Lake:
    """Resolve a lake from an argument, the environment, the config file or the default.

    Args:
        lake: a ``Lake``, a root path/URI, or None to fall back to ``MMCRS_LAKE``, the config
            file and finally ``./lake``.

    Returns:
        The resolved ``Lake``.

    Raises:
        LakeError: an empty root, a root that is a file, an unreadable config file or bad storage options.

    Example:
        >>> resolve_lake("/tmp/my-lake").root
        '/tmp/my-lake'
    """
    if isinstance(lake, Lake):
        return lake
    section = _config_lake_section()
    options: dict[str, str] = {str(k): str(v) for k, v in section.get("storage_options", {}).items()}
    options.update(_env_storage_options())
    if lake is not None:
        root = os.fspath(lake)
    elif os.environ.get("MMCRS_LAKE"):
        root = os.environ["MMCRS_LAKE"]
    elif section.get("root"):
        root = str(section["root"])
    else:
        root = DEFAULT_ROOT
    return Lake(root=_normalise_root(root), storage_options=options)
