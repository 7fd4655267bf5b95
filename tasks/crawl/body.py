"""Reading a response body or a local file without ever holding more than the size cap.

The cap is checked up front (``Content-Length``, ``st_size``) and again while the bytes arrive, so a
server that lies about the length, or streams forever without one, is cut off at ``max_bytes + 1``
bytes. A compressed body is decoded here with bounded output (the crawler asks for ``identity``, but a
server may compress anyway): a gzip bomb stops at the cap instead of inflating one network chunk into
hundreds of megabytes.
"""

from __future__ import annotations

import os
import stat
import zlib
from pathlib import Path

import httpx

_ZLIB_OR_GZIP = 32 + zlib.MAX_WBITS  # zlib auto-detects a zlib or gzip header


class BodyError(Exception):
    """The body cannot be accepted; ``reason`` says why (e.g. ``"too large: > 1024 bytes"``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def too_large(max_bytes: int) -> BodyError:
    """The error for a body over the cap."""
    return BodyError(f"too large: > {max_bytes} bytes")


class _Decoder:
    """``Content-Encoding`` decoding whose output per call never exceeds what the caller has room for."""

    def __init__(self, encoding: str | None) -> None:
        name = (encoding or "identity").strip().lower()
        if name in ("", "identity"):
            self._inflate = None
        elif name in ("gzip", "x-gzip", "deflate"):
            self._inflate = zlib.decompressobj(_ZLIB_OR_GZIP)
        else:
            raise BodyError(f"unsupported content encoding: {name}")

    def decode(self, chunk: bytes, room: int) -> bytes:
        """Decoded bytes of ``chunk``; at most ``room + 1`` of them (one more than fits means: too large)."""
        if self._inflate is None:
            return chunk
        try:
            return self._inflate.decompress(chunk, room + 1)
        except zlib.error as exc:
            raise BodyError(f"corrupt content encoding: {exc}") from exc


async def read_capped(response: httpx.Response, *, max_bytes: int) -> bytes:
    """The (decoded) body of a streamed response, refused as soon as it exceeds ``max_bytes``.

    Args:
        response: a response opened with ``client.stream(...)`` whose body is not read yet.
        max_bytes: the cap.

    Returns:
        The body.

    Raises:
        BodyError: over the cap (declared or counted), or an unsupported/corrupt content encoding.
    """
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)
    decoder = _Decoder(response.headers.get("content-encoding"))
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        data = decoder.decode(chunk, max_bytes - size)
        size += len(data)
        if size > max_bytes:
            raise too_large(max_bytes)
        parts.append(data)
    return b"".join(parts)


def read_file_capped(path: Path, *, max_bytes: int) -> bytes:
    """The bytes of a regular local file, refused when over ``max_bytes``.

    The file is opened without following a final symlink and without blocking (a FIFO planted under
    ``file_root`` cannot hang the crawl), then checked to be a regular file before reading.

    Args:
        path: a path already resolved and confined by the safety policy.
        max_bytes: the cap.

    Returns:
        The file's bytes.

    Raises:
        BodyError: unreadable, not a regular file, or over the cap.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise BodyError(f"cannot read file: {exc}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BodyError(f"not a regular file: {path}")
        if info.st_size > max_bytes:
            raise too_large(max_bytes)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)  # the file may have grown since fstat
    except OSError as exc:
        raise BodyError(f"cannot read file: {exc}") from exc
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise too_large(max_bytes)
    return data
