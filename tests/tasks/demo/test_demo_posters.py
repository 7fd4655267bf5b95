"""Tests for tasks.demo.posters: deterministic, distinct, valid PNG posters written idempotently."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pytest
from PIL import Image, ImageChops, ImageStat

from tasks.demo.posters import poster_filename, render_poster, write_posters


def _poster(key: str = "ml:1", **overrides: object) -> bytes:
    options: dict = {"title": "Toy Story", "year": 1995, "genres": ["Animation", "Comedy"], "key": key}
    return render_poster(**{**options, **overrides})


def _items(count: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "item_id": [f"ml:{number}" for number in range(1, count + 1)],
            "title": [f"Movie number {number}" for number in range(1, count + 1)],
            "year": [1990 + number if number % 3 else None for number in range(1, count + 1)],
            "genres": [["Drama"] if number % 2 else [] for number in range(1, count + 1)],
        },
        schema={"item_id": pl.String, "title": pl.String, "year": pl.Int32, "genres": pl.List(pl.String)},
    )


def test_same_inputs_give_identical_bytes() -> None:
    assert _poster() == _poster()


def test_different_keys_give_visibly_different_images() -> None:
    first = Image.open(io.BytesIO(_poster("ml:1"))).convert("RGB")
    second = Image.open(io.BytesIO(_poster("ml:2"))).convert("RGB")
    mean_difference = sum(ImageStat.Stat(ImageChops.difference(first, second)).mean) / 3
    assert mean_difference > 10  # out of 255: not a few pixels, the whole picture


@pytest.mark.parametrize("size", [(200, 300), (64, 96), (300, 200)])
def test_poster_is_a_png_of_the_requested_size(size: tuple[int, int]) -> None:
    png = _poster(size=size)
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    assert image.size == size
    assert image.mode == "RGB"


@pytest.mark.parametrize(
    ("title", "year", "genres"),
    [
        ("unkonwn", None, []),
        ("Land Before Time III: The Time of the Great Giving and Then Some More Words to Wrap", 1995, ["X"]),
        ("Supercalifragilisticexpialidociouslylongsingleword", 2001, ["Sci-Fi"]),
        ("Amélie — Le Fabuleux Destin", 2001, ["Comedy"]),
    ],
)
def test_unusual_inputs_render(title: str, year: int | None, genres: list[str]) -> None:
    png = render_poster(title=title, year=year, genres=genres, key=title)
    assert Image.open(io.BytesIO(png)).size == (200, 300)


def test_poster_filenames_are_filesystem_safe() -> None:
    assert poster_filename("ml:1") == "ml_1.png"
    assert poster_filename("redial:12/3 x") == "redial_12_3_x.png"


def test_write_posters_writes_one_file_per_item(tmp_path: Path) -> None:
    paths = write_posters(_items(5), out_dir=tmp_path / "posters")
    assert list(paths) == ["ml:1", "ml:2", "ml:3", "ml:4", "ml:5"]
    assert paths["ml:1"] == tmp_path / "posters" / "ml_1.png"
    assert sorted(path.name for path in (tmp_path / "posters").iterdir()) == [
        f"ml_{number}.png" for number in range(1, 6)
    ]
    assert paths["ml:2"].read_bytes() == render_poster(title="Movie number 2", year=1992, genres=[], key="ml:2")


def test_write_posters_is_idempotent(tmp_path: Path) -> None:
    items = _items(4)
    paths = write_posters(items, out_dir=tmp_path)
    mtimes = {item_id: path.stat().st_mtime_ns for item_id, path in paths.items()}
    paths["ml:3"].write_bytes(b"not a poster")  # a damaged file is repaired, the others are left alone
    damaged_mtime = paths["ml:3"].stat().st_mtime_ns
    again = write_posters(items, out_dir=tmp_path)
    assert again == paths
    for item_id in ("ml:1", "ml:2", "ml:4"):
        assert again[item_id].stat().st_mtime_ns == mtimes[item_id]
    assert again["ml:3"].read_bytes() == render_poster(title="Movie number 3", year=None, genres=["Drama"], key="ml:3")
    assert again["ml:3"].stat().st_mtime_ns >= damaged_mtime
    assert not [path for path in tmp_path.iterdir() if path.name.endswith(".partial")]


def test_write_posters_rejects_frames_without_the_columns(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="genres"):
        write_posters(_items(2).drop("genres"), out_dir=tmp_path)
