"""Where a model version's files live, and moving them there and back, for any lake URI.

By default a version lives with its lake, at ``<lake>/_artifacts/<model>/<version>/``, and the registry
stores the lake-relative URI ``_artifacts/<model>/<version>``; an explicit artifacts root overrides that,
and the registry then stores the absolute location. Files go through pyarrow's filesystem with the lake's
storage options (``features.blobs.filesystem``), so a lake on ``s3://`` keeps its models beside its tables.
Loading a model from an object store downloads the files to a local cache folder first.

Example:
    >>> lake = features.resolve_lake("/tmp/lake")
    >>> artifact_uri("m", 3)
    '_artifacts/m/3'
    >>> locate("_artifacts/m/3", lake=lake)
    '/tmp/lake/_artifacts/m/3'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pyarrow import fs as pafs

import features
from features import Lake
from features.blobs import filesystem

ARTIFACTS_DIR = "_artifacts"
MANIFEST = "manifest.json"


class ArtifactError(RuntimeError):
    """A model version's artifact is missing, unreadable, incomplete, or a file does not match its checksum."""


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def default_cache_dir() -> Path:
    """Where artifacts downloaded from an object store are kept: ``~/.cache/mmcrs/artifacts``."""
    return Path.home() / ".cache" / "mmcrs" / "artifacts"


def artifact_uri(model_name: str, version: int | str, *, artifacts_root: str | os.PathLike[str] | None = None) -> str:
    """What the registry records for a version: ``_artifacts/<model>/<version>`` (relative to the lake), or
    the absolute location under an explicit ``artifacts_root``."""
    if artifacts_root is None:
        return f"{ARTIFACTS_DIR}/{model_name}/{version}"
    root = os.fspath(artifacts_root)
    if "://" in root:
        return f"{root.rstrip('/')}/{model_name}/{version}"
    return str(Path(root).expanduser().resolve() / model_name / str(version))


def locate(uri: str, *, lake: Lake) -> str:
    """The absolute location of a registry ``artifact_uri``: lake-relative URIs are joined to the lake root;
    absolute paths and URIs (rows written before artifacts lived with the lake) are returned as they are."""
    if "://" in uri or Path(uri).is_absolute():
        return uri
    return lake.path(*uri.strip("/").split("/"))


def _is_local(location: str) -> bool:
    return "://" not in location or location.startswith("file://")


def _options(location: str, lake: Lake) -> dict[str, str] | None:
    """The lake's storage options for a remote location (None for local folders)."""
    return None if _is_local(location) else lake.options()


def publish(folder: Path, location: str, *, lake: Lake) -> None:
    """Copy every file of the local ``folder`` to ``location`` (which must hold no artifact yet).

    A local target is written under a temporary name and renamed into place; on an object store
    ``manifest.json`` is uploaded last, so a manifest present means every file it lists is there.

    Raises:
        FileExistsError: ``location`` holds files already.
    """
    if _is_local(location):
        target = Path(location.removeprefix("file://"))
        if target.exists():
            raise FileExistsError(str(target))
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
        try:
            for path in folder.iterdir():
                shutil.copy2(path, staging / path.name)
            os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide the model from other readers
            staging.rename(target)  # fails when a concurrent run put a non-empty folder there meanwhile
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return
    fs, base = filesystem(location, _options(location, lake))
    if fs.get_file_info(pafs.FileSelector(base, allow_not_found=True)):
        raise FileExistsError(location)
    fs.create_dir(base, recursive=True)
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    for name in sorted(names, key=lambda n: n == MANIFEST):
        with fs.open_output_stream(f"{base}/{name}") as out:
            out.write((folder / name).read_bytes())


def read_bytes(location: str, name: str, *, lake: Lake) -> bytes:
    """One file of an artifact.

    Raises:
        FileNotFoundError: no such file.
        OSError: the store could not be read.
    """
    fs, base = filesystem(location, _options(location, lake))
    with fs.open_input_stream(f"{base}/{name}") as stream:
        return bytes(stream.read())


def read_manifest(location: str, *, lake: Lake) -> dict:
    """The ``manifest.json`` of the artifact at ``location``.

    Raises:
        FileNotFoundError / OSError / ValueError: missing, unreadable, or not JSON.
    """
    return json.loads(read_bytes(location, MANIFEST, lake=lake))


def fetch(location: str, *, lake: Lake, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """A local folder holding the artifact at ``location``: the folder itself when local, else a copy in
    ``cache_dir`` (default ``default_cache_dir()``) refreshed from the store (files whose sha256 already
    matches the manifest are not downloaded again).

    Raises:
        FileNotFoundError / OSError / ValueError: the artifact or its manifest is missing or unreadable.
    """
    if _is_local(location):
        folder = Path(location.removeprefix("file://"))
        if not (folder / MANIFEST).is_file():
            raise FileNotFoundError(f"{folder / MANIFEST} does not exist")
        return folder
    manifest_bytes = read_bytes(location, MANIFEST, lake=lake)
    key = hashlib.sha256(location.encode()).hexdigest()[:24]
    folder = Path(cache_dir or default_cache_dir()) / key
    folder.mkdir(parents=True, exist_ok=True)
    for name, digest in json.loads(manifest_bytes)["files"].items():
        path = folder / name
        if not (path.is_file() and sha256_file(path) == digest):
            _write_atomic(path, read_bytes(location, name, lake=lake))
    _write_atomic(folder / MANIFEST, manifest_bytes)
    return folder


def _write_atomic(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def manifests(root: str, *, lake: Lake) -> Iterator[dict]:
    """Every readable ``<root>/<model>/<version>/manifest.json`` (unreadable ones are skipped)."""
    fs, base = filesystem(root, _options(root, lake))
    found = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    for info in sorted(found, key=lambda i: i.path):
        relative = info.path[len(base) :].strip("/").split("/")
        if info.type != pafs.FileType.File or len(relative) != 3 or relative[-1] != MANIFEST:
            continue
        try:
            with fs.open_input_stream(info.path) as stream:
                manifest = json.loads(stream.read())
        except (OSError, ValueError):
            continue
        yield manifest


def lake_artifacts_root(lake: Lake | str | None = None) -> str:
    """``<lake>/_artifacts``: where a lake's models live by default."""
    return features.resolve_lake(lake).path(ARTIFACTS_DIR)
