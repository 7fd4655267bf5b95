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
    with path.open("rb") as fh:
        section = tomllib.load(fh).get("lake", {})
    return section if isinstance(section, dict) else {}


def _normalise_root(root: str) -> str:
    root = root.rstrip("/") or "/"
    if root.startswith("file://"):
        root = root[len("file://") :]
    if "://" in root:
        return root
    return str(Path(root).expanduser().resolve())


def resolve_lake(lake: Lake | str | os.PathLike[str] | None = None) -> Lake:
    """Resolve a lake from an argument, the environment, the config file or the default.

    Args:
        lake: a ``Lake``, a root path/URI, or None to fall back to ``MMCRS_LAKE``, the config
            file and finally ``./lake``.

    Returns:
        The resolved ``Lake``.

    Example:
        >>> resolve_lake("/tmp/my-lake").root
        '/tmp/my-lake'
    """
    if isinstance(lake, Lake):
        return lake
    section = _config_lake_section()
    options: dict[str, str] = {str(k): str(v) for k, v in section.get("storage_options", {}).items()}
    env_options = os.environ.get("MMCRS_STORAGE_OPTIONS")
    if env_options:
        options.update({str(k): str(v) for k, v in json.loads(env_options).items()})
    if lake is not None:
        root = os.fspath(lake)
    elif os.environ.get("MMCRS_LAKE"):
        root = os.environ["MMCRS_LAKE"]
    elif section.get("root"):
        root = str(section["root"])
    else:
        root = DEFAULT_ROOT
    return Lake(root=_normalise_root(root), storage_options=options)
