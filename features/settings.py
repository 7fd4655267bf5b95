"""Where a run reads and writes, resolved once at the edge (CLI, flow entry point) and passed down explicitly.

Resolution, first hit wins:

- lake: the ``lake=`` argument, ``MMCRS_LAKE``, the config file's ``[lake]`` section, ``./lake``
  (``features.lake.resolve_lake``);
- artifacts root: the ``artifacts_root=`` argument, ``MMCRS_ARTIFACTS``, else None: models live with the lake,
  under ``<lake>/_artifacts/<model>/<version>/`` (``training.artifacts``);
- config file: ``MMCRS_CONFIG``, else ``./mmcrs.toml`` (None when the file does not exist).

Nothing below the edge reads these environment variables: stages and training take the lake and the
artifacts root as arguments.

Example:
    >>> settings = Settings.resolve(lake="/tmp/lake", artifacts_root="/tmp/artifacts")
    >>> settings.lake.root, str(settings.artifacts_root)
    ('/tmp/lake', '/tmp/artifacts')
    >>> Settings.resolve(lake="/tmp/lake").artifacts_root is None  # (without MMCRS_ARTIFACTS) the lake's
    True
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from features.lake import Lake, config_file, resolve_lake

ARTIFACTS_ENV = "MMCRS_ARTIFACTS"


@dataclass(frozen=True)
class Settings:
    """A run's resolved locations.

    Attributes:
        lake: the lake (root and storage options).
        artifacts_root: an explicit absolute folder for model artifacts (``<root>/<model>/<version>``); None
            (the default): they live with the lake, under ``<lake>/_artifacts``.
        config_file: absolute path of the config file the lake was resolved with, None when there is none.
    """

    lake: Lake
    artifacts_root: Path | None
    config_file: Path | None = None

    @classmethod
    def resolve(
        cls,
        *,
        lake: Lake | str | os.PathLike[str] | None = None,
        artifacts_root: str | os.PathLike[str] | None = None,
    ) -> Settings:
        """Resolve every location once, from the arguments, then the environment and the config file.

        Args:
            lake: a ``Lake`` or root path/URI; None falls back to ``MMCRS_LAKE``, the config file, ``./lake``.
            artifacts_root: an artifacts folder overriding the lake's; None falls back to ``MMCRS_ARTIFACTS``,
                then to the lake itself (``artifacts_root`` None).

        Returns:
            The frozen ``Settings``.
        """
        root = artifacts_root or os.environ.get(ARTIFACTS_ENV) or None
        found = config_file()
        return cls(
            lake=resolve_lake(lake),
            artifacts_root=None if root is None else Path(root).expanduser().resolve(),
            config_file=None if found is None else found.resolve(),
        )
