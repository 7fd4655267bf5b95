"""Tests for tasks.demo.catalog against the real MovieLens-100K and OMDb data shipped on PyPI."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from urllib.parse import urlparse

import polars as pl
import pytest

from tasks.demo.catalog import (
    CATALOG_SCHEMA,
    build_demo_catalog,
    load_movie_database,
    load_movielens_items,
    package_data_dir,
)
from tasks.ingest.titles import title_key


@pytest.fixture(scope="module")
def items() -> pl.DataFrame:
    return load_movielens_items()


def _row(frame: pl.DataFrame, item_id: str) -> dict:
    return frame.filter(pl.col("item_id") == item_id).row(0, named=True)


def test_movielens_items_are_all_read_with_types(items: pl.DataFrame) -> None:
    assert items.height == 1682
    assert items.schema == pl.Schema(
        {"item_id": pl.String, "title": pl.String, "year": pl.Int32, "genres": pl.List(pl.String)}
    )
    assert items["item_id"].head(3).to_list() == ["ml:1", "ml:2", "ml:3"]
    assert items["item_id"].n_unique() == 1682


def test_movielens_genres_keep_multi_word_tokens(items: pl.DataFrame) -> None:
    assert _row(items, "ml:1")["genres"] == ["Animation", "Children's", "Comedy"]
    genres = set(items["genres"].explode().drop_nulls().to_list())
    assert {"Film-Noir", "Sci-Fi", "Children's"} <= genres
    assert "unknown" not in genres


def test_movielens_years_are_parsed(items: pl.DataFrame) -> None:
    assert _row(items, "ml:1")["year"] == 1995
    assert _row(items, "ml:267")["year"] is None  # the row whose title and year read "unkonwn"
    land_before_time = _row(items, "ml:1412")  # year column "V", year left in the title
    assert land_before_time["year"] == 1995
    assert land_before_time["title"] == "Land Before Time III: The Time of the Great Giving"
    assert items["year"].null_count() == 1


def test_limit_keeps_the_first_ids() -> None:
    assert load_movielens_items(limit=4)["item_id"].to_list() == ["ml:1", "ml:2", "ml:3", "ml:4"]


def test_movie_database_has_keys_and_no_empty_strings() -> None:
    movies = load_movie_database()
    assert movies.height > 10_000
    assert {"title", "year", "genre", "director", "writer", "cast", "imdb_id", "key_title", "key_year"} <= set(
        movies.columns
    )
    assert movies.filter(pl.col("cast") == "").height == 0
    toy_story = movies.filter(pl.col("imdb_id") == "tt0114709").row(0, named=True)
    assert (toy_story["key_title"], toy_story["key_year"]) == title_key("Toy Story", 1995)
    assert toy_story["director"] == "John Lasseter"


def test_catalog_has_the_exact_columns_and_types(tmp_path: Path) -> None:
    result = build_demo_catalog(out_dir=tmp_path, limit=25, render_posters=False)
    catalog = pl.read_parquet(result.path)
    assert result.path == tmp_path / "catalog.parquet"
    assert catalog.schema == pl.Schema(CATALOG_SCHEMA)
    assert catalog.columns == ["item_id", "title", "year", "text", "attributes", "poster_url"]
    assert result.n_items == catalog.height == 25
    assert catalog["item_id"].to_list() == [f"ml:{number}" for number in range(1, 26)]
    assert catalog["poster_url"].null_count() == 25


def test_catalog_text_and_attributes_carry_enrichment(tmp_path: Path) -> None:
    result = build_demo_catalog(out_dir=tmp_path, limit=25, render_posters=False)
    catalog = pl.read_parquet(result.path)
    assert 0 < result.n_enriched <= 25
    toy_story = _row(catalog, "ml:1")
    assert toy_story["text"].startswith("Toy Story (1995). Genres: Animation, Children's, Comedy.")
    enriched = 0
    for text, attributes in catalog.select("text", "attributes").iter_rows():
        parsed = json.loads(attributes)
        assert list(parsed) == sorted(parsed)
        assert isinstance(parsed["genres"], list)
        if "imdb_id" in parsed:
            enriched += 1
            assert f"Directed by {parsed['director'].split(',')[0]}" in text
    assert enriched == result.n_enriched


def test_a_good_fraction_of_all_items_is_enriched(tmp_path: Path) -> None:
    result = build_demo_catalog(out_dir=tmp_path, render_posters=False)
    assert result.n_items == 1682
    assert result.n_enriched > 1682 * 0.6


def test_catalog_links_rendered_posters(tmp_path: Path) -> None:
    result = build_demo_catalog(out_dir=tmp_path, limit=3)
    urls = pl.read_parquet(result.path)["poster_url"].to_list()
    assert result.poster_dir == tmp_path / "posters"
    for url in urls:
        parsed = urlparse(url)
        assert parsed.scheme == "file"
        path = Path(parsed.path)
        assert path.is_absolute() and path.is_file() and path.parent == result.poster_dir.resolve()


def test_catalog_is_deterministic(tmp_path: Path) -> None:
    first = build_demo_catalog(out_dir=tmp_path / "a", limit=40, render_posters=False)
    second = build_demo_catalog(out_dir=tmp_path / "b", limit=40, render_posters=False)
    assert pl.read_parquet(first.path).equals(pl.read_parquet(second.path))
    assert first.path.read_bytes() == second.path.read_bytes()


def test_package_data_dir_finds_installed_packages() -> None:
    assert (package_data_dir("recbole") / "dataset_example" / "ml-100k").is_dir()


def test_package_data_dir_names_the_pip_command_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps mmcrs-no-such-package"):
        package_data_dir("mmcrs_no_such_package")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps bokeh-sampledata==2026\.1"):
        package_data_dir("bokeh_sampledata")
