"""Content-addressed blob store on a local folder: layout, idempotence, no partial blobs."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from features import Lake, blobs
from features.blobs import BlobIntegrityError, BlobStore, poster_store

DATA = b"poster bytes"
SHA = hashlib.sha256(DATA).hexdigest()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_key_layout() -> None:
    assert BlobStore("/unused").key(SHA) == f"{SHA[:2]}/{SHA[2:4]}/{SHA}"


@pytest.mark.parametrize("bad", ["", "abc", "../" * 20 + "etc/passwd", SHA.upper(), SHA + "0"])
def test_keys_must_be_sha256_digests(bad: str) -> None:
    with pytest.raises(ValueError, match="not a sha256"):
        BlobStore("/unused").key(bad)


def test_put_get_exists(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "blobs"))
    assert not store.exists(SHA)
    assert store.put(DATA) == SHA
    assert store.exists(SHA) and store.get(SHA) == DATA
    assert _files(tmp_path) == [tmp_path / "blobs" / SHA[:2] / SHA[2:4] / SHA]
    assert stat.S_IMODE((tmp_path / "blobs" / store.key(SHA)).stat().st_mode) == 0o644


def test_put_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = BlobStore(str(tmp_path))
    store.put(DATA)
    path = tmp_path / store.key(SHA)
    before = path.stat().st_mtime_ns

    def never(*args: object) -> None:
        raise AssertionError("an existing blob was written again")

    monkeypatch.setattr(BlobStore, "_write_local", never)
    assert store.put(DATA) == SHA
    assert path.stat().st_mtime_ns == before and _files(tmp_path) == [path]


def test_a_failed_write_leaves_no_partial_blob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = BlobStore(str(tmp_path))

    def crash(fd: int) -> None:  # the bytes are in the temp file, the rename has not happened
        raise OSError("disk on fire")

    monkeypatch.setattr(blobs.os, "fsync", crash)
    with pytest.raises(OSError, match="disk on fire"):
        store.put(DATA)
    assert not store.exists(SHA) and _files(tmp_path) == []
    monkeypatch.undo()
    assert store.put(DATA) == SHA and store.get(SHA) == DATA


def test_a_crash_before_the_rename_only_leaves_a_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = BlobStore(str(tmp_path))

    def killed(src: str, dst: str) -> None:  # as if the process died here: no cleanup runs
        raise SystemExit(9)

    monkeypatch.setattr(blobs.os, "unlink", lambda path: None)
    monkeypatch.setattr(blobs.os, "replace", killed)
    with pytest.raises(SystemExit):
        store.put(DATA)
    leftovers = _files(tmp_path)
    assert not store.exists(SHA) and len(leftovers) == 1 and leftovers[0].name.startswith(".tmp-")


def test_file_uri_root_and_missing_blob(tmp_path: Path) -> None:
    store = BlobStore(tmp_path.as_uri())
    assert store.put(DATA) == SHA and (tmp_path / store.key(SHA)).read_bytes() == DATA
    with pytest.raises(FileNotFoundError):
        store.get(hashlib.sha256(b"never stored").hexdigest())


def test_distinct_contents_get_distinct_blobs(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    shas = {store.put(bytes([i]) * 10) for i in range(20)}
    assert len(shas) == 20 and len(_files(tmp_path)) == 20
    assert all(hashlib.sha256(store.get(sha)).hexdigest() == sha for sha in shas)


def test_poster_store_lives_beside_the_tables(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    sha = poster_store(lake).put(b"poster")
    assert (tmp_path / "lake" / "_blobs" / "posters" / BlobStore("/unused").key(sha)).read_bytes() == b"poster"


def test_get_verifies_the_sha256_of_what_it_reads(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    sha, other = store.put(b"the real poster"), store.put(b"another poster")
    Path(tmp_path, store.key(sha)).write_bytes(b"swapped bytes")  # altered behind the store's back
    with pytest.raises(BlobIntegrityError, match="fails its checksum"):
        store.get(sha)
    assert store.get(sha, verify=False) == b"swapped bytes"  # an explicit opt-out still reads it
    assert store.get(other) == b"another poster"


def test_put_many_stores_each_new_blob_once_and_returns_keys_in_order(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path))
    store.put(b"old")
    datas = [b"a", b"old", b"b", b"a"] + [i.to_bytes(2, "big") * 500 for i in range(300)]  # over one write batch
    shas = store.put_many(datas)
    assert shas == [hashlib.sha256(d).hexdigest() for d in datas]
    assert all(store.get(sha) == data for sha, data in zip(shas, datas, strict=True))
    assert len(_files(tmp_path)) == 303 and not any(p.name.startswith(".tmp-") for p in _files(tmp_path))


def test_a_failed_put_many_leaves_no_partial_blob(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = BlobStore(str(tmp_path))
    calls = {"n": 0}
    real_fsync = blobs.os.fsync

    def third_fails(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk on fire")
        real_fsync(fd)

    monkeypatch.setattr(blobs.os, "fsync", third_fails)
    with pytest.raises(OSError, match="disk on fire"):
        store.put_many([b"1", b"2", b"3", b"4"])
    assert _files(tmp_path) == []


def test_delete_removes_one_blob_and_reports_a_missing_one(tmp_path: Path) -> None:
    store = BlobStore(str(tmp_path / "blobs"))
    keep, gone = store.put_many([b"kept", b"gone"])
    assert store.delete(gone) and not store.exists(gone)
    assert store.delete(gone) is False
    assert store.get(keep) == b"kept"
