"""What every commit says about itself: stage, flow run, config hash, code version, input versions.

The metadata lands in the Delta commit (``commitInfo``) under ``mmcrs.*`` keys, so
``features.history(table)`` can trace each table version back to the run and inputs that made it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

PREFIX = "mmcrs."
_REPO_ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(_REPO_ROOT), *args], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.cache
def code_version() -> str:
    """The git sha of the running code (``+dirty`` with uncommitted changes), else the package version."""
    sha = _git("rev-parse", "HEAD") if (_REPO_ROOT / ".git").exists() else None
    if sha:
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        return f"{sha}+dirty" if dirty else sha
    try:
        return f"mmcrs-{metadata.version('mmcrs')}"
    except metadata.PackageNotFoundError:
        return "unknown"


def config_hash(config: Any) -> str:
    """A short stable hash of a JSON-serialisable config (dict keys sorted).

    Example:
        >>> config_hash({"b": 1, "a": 2}) == config_hash({"a": 2, "b": 1})
        True
    """
    if hasattr(config, "model_dump"):
        config = config.model_dump(mode="json")
    blob = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CommitInfo:
    """Metadata attached to one commit.

    Attributes:
        stage: the pipeline stage that writes (e.g. ``"ingest_dialogues"``).
        flow_run_id: the Prefect flow run id, or another run identifier outside Prefect.
        config_hash: hash of the stage config (see ``config_hash``).
        input_versions: versions of the lake tables the stage read, by table name.
        code_version: git sha of the code (filled automatically).
        extra: further string key/values (e.g. source file).
    """

    stage: str
    flow_run_id: str | None = None
    config_hash: str | None = None
    input_versions: Mapping[str, int] = field(default_factory=dict)
    code_version: str = field(default_factory=code_version)
    extra: Mapping[str, str] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, str]:
        """Flat string metadata for ``CommitProperties(custom_metadata=...)``."""
        meta = {
            f"{PREFIX}stage": self.stage,
            f"{PREFIX}flow_run_id": self.flow_run_id or "",
            f"{PREFIX}config_hash": self.config_hash or "",
            f"{PREFIX}code_version": self.code_version,
            f"{PREFIX}input_versions": json.dumps(dict(self.input_versions), sort_keys=True),
        }
        meta.update({f"{PREFIX}{k}": str(v) for k, v in self.extra.items()})
        return meta
