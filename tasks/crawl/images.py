"""Is this body a poster we can use? Identify, bound, and fully decode it before anything stores it.

The order matters: ``Image.open`` reads only the header, so the pixel count is checked before a single
pixel is decoded (a 20000 x 20000 PNG of zeros is a few kilobytes on the wire and 400 MB decoded);
then the format allow-list, then a full decode, which is what finds truncated files. Pillow's own
decompression-bomb guard (``Image.MAX_IMAGE_PIXELS``, a process-wide setting left untouched here, so
nothing races with other threads) fires first for very large images; its error (or its warning, where
warnings are turned into errors) becomes the same reason, with the dimensions read from the header.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
from dataclasses import dataclass

from PIL import Image, ImageFile, UnidentifiedImageError

from tasks.crawl.config import CrawlConfig

_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError)
_PIXELS_IN_MESSAGE = re.compile(r"\((\d+) pixels\)")


@dataclass(frozen=True)
class ImageInfo:
    """A validated image.

    Attributes:
        width: pixels.
        height: pixels.
        format: Pillow's format name (``JPEG``, ``PNG``, ...).
        sha256: hex digest of the bytes (the blob store key).
        bytes: size of the encoded file.
    """

    width: int
    height: int
    format: str
    sha256: str
    bytes: int


def _header_size(data: bytes) -> tuple[int, int] | None:
    """The size in an image header, read by the format plugins directly (no global bomb check).

    Used only to name the dimensions when Pillow's own guard refused the file inside ``Image.open``.
    """
    Image.init()
    prefix = data[:16]
    for name in Image.ID:
        factory, accept = Image.OPEN[name]
        accepted = accept(prefix) if accept is not None else True
        if not accepted or isinstance(accepted, str):  # a str is Pillow's "close, but no" message
            continue
        try:
            return factory(io.BytesIO(data), "").size
        except _DECODE_ERRORS:
            continue
    return None


def _bomb_reason(data: bytes, error: Exception, max_pixels: int) -> str:
    size = _header_size(data)
    if size is not None:
        return f"decompression bomb: {size[0]} x {size[1]} pixels > {max_pixels}"
    pixels = _PIXELS_IN_MESSAGE.search(str(error))
    return f"decompression bomb: {pixels.group(1) if pixels else '?'} pixels > {max_pixels}"


def _open(data: bytes, max_pixels: int) -> ImageFile.ImageFile | str:
    """The header-only image, or the reason it cannot be opened."""
    try:
        return Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # warning: when raised as error
        return _bomb_reason(data, exc, max_pixels)
    except UnidentifiedImageError:
        return "not an image: cannot identify image file"
    except _DECODE_ERRORS as exc:
        return f"corrupt image: {exc}"


def _decode(image: ImageFile.ImageFile) -> str | None:
    """Decode every pixel of the (first) frame; the reason when that fails."""
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return f"decompression bomb: {exc}"
    except EOFError as exc:
        return f"truncated image: {exc or 'unexpected end of file'}"
    except _DECODE_ERRORS as exc:
        kind = "truncated image" if "truncated" in str(exc).lower() else "corrupt image"
        return f"{kind}: {exc}"
    return None


def validate_image(data: bytes, *, config: CrawlConfig) -> ImageInfo | str:
    """Check that ``data`` is a complete image of an allowed format within the pixel limit.

    Args:
        data: the fetched bytes.
        config: ``max_pixels`` and ``allowed_image_formats``.

    Returns:
        An ``ImageInfo``, or the reason it was refused: ``"not an image: cannot identify image file"``,
        ``"decompression bomb: 20000 x 20000 pixels > 50000000"``, ``"format GIF not allowed"``,
        ``"truncated image: ..."``, ``"corrupt image: ..."``.

    Raises:
        RuntimeError: ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` was switched on in this process, which
            would make truncated files pass silently.
    """
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("validate_image needs PIL.ImageFile.LOAD_TRUNCATED_IMAGES = False (the default)")
    if not data:
        return "not an image: empty body"
    opened = _open(data, config.max_pixels)
    if isinstance(opened, str):
        return opened
    with opened as image:
        width, height = image.size
        if width * height > config.max_pixels:
            return f"decompression bomb: {width} x {height} pixels > {config.max_pixels}"
        if image.format not in config.allowed_image_formats:
            return f"format {image.format} not allowed"
        failure = _decode(image)
        if failure is not None:
            return failure
        return ImageInfo(width, height, str(image.format), hashlib.sha256(data).hexdigest(), len(data))
