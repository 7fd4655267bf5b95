"""Deterministic poster images for the demo catalog, where no real posters can be fetched.

A poster is a pure function of its inputs: a gradient whose colours come from ``sha256(key)``, geometric
shapes placed by a generator seeded with that hash and tinted by the first genre, then the wrapped title
and the year. The same inputs give the same PNG bytes on every run; different keys give visibly
different images, which is what the image-embedding stage needs from them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import polars as pl
from PIL import Image, ImageDraw, ImageFont

_RGB = tuple[int, int, int]
_RENDERER_HASH = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]

_GENRE_TINTS: Mapping[str, _RGB] = {
    "Action": (220, 60, 40),
    "Adventure": (230, 150, 40),
    "Animation": (250, 210, 60),
    "Children's": (120, 210, 90),
    "Comedy": (255, 190, 0),
    "Crime": (90, 90, 110),
    "Documentary": (150, 140, 120),
    "Drama": (120, 60, 150),
    "Fantasy": (170, 90, 220),
    "Film-Noir": (30, 30, 30),
    "Horror": (130, 0, 20),
    "Musical": (240, 100, 180),
    "Mystery": (40, 60, 120),
    "Romance": (230, 80, 120),
    "Sci-Fi": (40, 200, 220),
    "Thriller": (60, 110, 70),
    "War": (110, 100, 60),
    "Western": (180, 110, 60),
}
_DEFAULT_TINT: _RGB = (200, 200, 200)
_SHAPES = ("ellipse", "rectangle", "triangle")
_MAX_TITLE_LINES = 4
_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_REQUIRED_COLUMNS = ("item_id", "title", "year", "genres")


def _int_below(rng: random.Random, bound: int) -> int:
    """A uniform integer in ``[0, bound)`` from ``random()`` alone, whose sequence Python keeps stable."""
    return min(int(rng.random() * bound), bound - 1)


def _mix(first: _RGB, second: _RGB, weight: float) -> _RGB:
    """``weight`` of ``first`` blended with ``1 - weight`` of ``second``."""
    return (
        round(first[0] * weight + second[0] * (1 - weight)),
        round(first[1] * weight + second[1] * (1 - weight)),
        round(first[2] * weight + second[2] * (1 - weight)),
    )


@lru_cache(maxsize=8)
def _gradient_mask(size: tuple[int, int], *, horizontal: bool) -> Image.Image:
    """A black-to-white ramp, top to bottom (or left to right); cached, as every poster reuses it."""
    mask = Image.linear_gradient("L")  # (256, 256), black at the top to white at the bottom
    if horizontal:
        mask = mask.transpose(Image.Transpose.ROTATE_90)
    return mask.resize(size)


def _gradient(size: tuple[int, int], digest: bytes) -> Image.Image:
    """A two-colour linear gradient; colours and direction come from the hash."""
    start = _mix((digest[0], digest[1], digest[2]), (0, 0, 0), 0.8)  # darker, so light text stays legible
    end = _mix((digest[3], digest[4], digest[5]), (0, 0, 0), 0.8)
    mask = _gradient_mask(size, horizontal=bool(digest[6] % 2))
    return Image.composite(Image.new("RGB", size, end), Image.new("RGB", size, start), mask)


def _shape_layer(size: tuple[int, int], digest: bytes, tint: _RGB) -> Image.Image:
    """Translucent shapes, placed by a generator seeded with the hash and tinted by the genre."""
    width, height = size
    rng = random.Random(int.from_bytes(digest, "big"))
    layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(5 + _int_below(rng, 6)):
        x0, y0 = _int_below(rng, width), _int_below(rng, height)
        extent = max(4, round(min(width, height) * (0.15 + 0.45 * rng.random())))
        accent = (_int_below(rng, 256), _int_below(rng, 256), _int_below(rng, 256))
        fill = (*_mix(tint, accent, 0.4 + 0.5 * rng.random()), 70 + _int_below(rng, 120))
        kind = _SHAPES[_int_below(rng, len(_SHAPES))]
        if kind == "ellipse":
            draw.ellipse((x0, y0, x0 + extent, y0 + extent), fill=fill)
        elif kind == "rectangle":
            draw.rectangle((x0, y0, x0 + extent, y0 + round(extent * 0.6)), fill=fill)
        else:
            draw.polygon([(x0, y0), (x0 + extent, y0), (x0 + extent // 2, y0 - extent)], fill=fill)
    return layer


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled default font (no system font lookup, so rendering does not depend on the host)."""
    return ImageFont.load_default(size=size)


def _wrap(text: str, *, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> list[str]:
    """Greedy word wrap to ``width`` pixels, at most ``_MAX_TITLE_LINES`` lines (the last one ellipsised)."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and font.getlength(candidate) <= width:
            lines[-1] = candidate
        else:
            lines.append(word)
    if len(lines) > _MAX_TITLE_LINES:
        lines = [*lines[: _MAX_TITLE_LINES - 1], f"{lines[_MAX_TITLE_LINES - 1]}…"]
    return lines


def _draw_caption(image: Image.Image, *, title: str, year: int | None) -> None:
    """The wrapped title on a dark band at the bottom, the year under it."""
    width, height = image.size
    margin = max(4, width // 20)
    title_font, year_font = _font(max(8, width // 11)), _font(max(6, width // 15))
    lines = _wrap(title, font=title_font, width=width - 2 * margin)
    line_height = round(title_font.getbbox("Ay")[3] * 1.2)
    band_height = line_height * len(lines) + 2 * margin + (line_height if year is not None else 0)
    draw = ImageDraw.Draw(image, "RGBA")
    draw.rectangle((0, height - band_height, width, height), fill=(0, 0, 0, 150))
    y = height - band_height + margin
    for line in lines:
        draw.text((margin, y), line, font=title_font, fill=(255, 255, 255))
        y += line_height
    if year is not None:
        draw.text((margin, y), str(year), font=year_font, fill=(210, 210, 210))


def _write_if_changed(path: Path, content: bytes) -> None:
    """Write ``content`` atomically unless the file already holds exactly these bytes."""
    if path.is_file() and path.stat().st_size == len(content) and path.read_bytes() == content:
        return
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(content)
    os.replace(partial, path)


def poster_filename(item_id: str) -> str:
    """A filesystem-safe PNG file name for an item id: ``"ml:1"`` -> ``"ml_1.png"``."""
    return f"{_UNSAFE_FILENAME_CHARS.sub('_', item_id)}.png"


def render_poster(
    *, title: str, year: int | None, genres: Sequence[str], key: str, size: tuple[int, int] = (200, 300)
) -> bytes:
    """Render a deterministic poster image.

    Args:
        title: Printed, word-wrapped, on the poster.
        year: Printed under the title when known.
        genres: The first genre tints the shapes.
        key: Seeds the colours and the layout (use the item id).
        size: ``(width, height)`` in pixels.

    Returns:
        PNG bytes, identical for identical arguments.

    Example:
        >>> png = render_poster(title="Toy Story", year=1995, genres=["Animation"], key="ml:1")
        >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
        True
    """
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    tint = _GENRE_TINTS.get(genres[0], _DEFAULT_TINT) if genres else _DEFAULT_TINT
    image = _gradient(size, digest).convert("RGBA")
    image.alpha_composite(_shape_layer(size, digest, tint))
    image = image.convert("RGB")  # an RGBA draw blends onto RGB images (onto RGBA ones it overwrites)
    _draw_caption(image, title=title, year=year)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # speed over size: posters are re-rendered, not archived
    return buffer.getvalue()


RENDER_INDEX = "-render-index.json"


def _render_key(item_id: str, title: str, year: int | None, genres: Sequence[str]) -> str:
    """What a poster's bytes depend on (the renderer's own source included)."""
    return hashlib.sha256(json.dumps([_RENDERER_HASH, item_id, title, year, list(genres)]).encode()).hexdigest()


def write_posters(items: pl.DataFrame, *, out_dir: Path) -> dict[str, Path]:
    """Render a poster per item into ``out_dir``; files that already hold the right bytes are left alone.

    An index beside the folder (``.<folder>-render-index.json``: item -> hash of the render inputs and of
    this module, and of the file) skips rendering a poster whose file is intact and whose inputs did not
    change, so a second demo run does not redraw 1,682 posters.

    Args:
        items: Columns ``item_id``, ``title``, ``year`` and ``genres`` (as from
            ``tasks.demo.catalog.load_movielens_items``); the item id is the poster's key.
        out_dir: Folder to write into; created when missing.

    Returns:
        ``item_id -> poster path``, in the order of ``items``.
    """
    missing = [column for column in _REQUIRED_COLUMNS if column not in items.columns]
    if missing:
        raise ValueError(f"items lacks the columns {missing}")
    out_dir.mkdir(parents=True, exist_ok=True)
    index_path = out_dir.parent / f".{out_dir.name}{RENDER_INDEX}"
    try:
        index: dict[str, list[str]] = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    paths: dict[str, Path] = {}
    for item_id, title, year, genres in items.select(_REQUIRED_COLUMNS).iter_rows():
        path = out_dir / poster_filename(item_id)
        key = _render_key(item_id, title, year, genres or [])
        known = index.get(item_id)
        if not (
            known and known[0] == key and path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == known[1]
        ):  # a damaged file is redrawn
            png = render_poster(title=title, year=year, genres=genres or [], key=item_id)
            _write_if_changed(path, png)
            index[item_id] = [key, hashlib.sha256(png).hexdigest()]
        paths[item_id] = path
    tmp = index_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(index, sort_keys=True))
    tmp.replace(index_path)
    return paths
