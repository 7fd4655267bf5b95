"""Item enrichment: link items to a metadata source offline and write what matched into ``text`` / ``attributes``.

Each item is matched by the first rule that links it (``RULES``): ``imdb_id`` (an ``imdb_id`` in the item's
attributes), ``title+year`` (``tasks.ingest.titles.title_key``), ``title`` (an item without a year whose
title only one movie of the source has). Where several movies share a key, the one with the smallest IMDb id
wins, so the choice is deterministic. A matched item gets the fields it lacks in ``attributes`` (``genres``
and ``cast`` as lists, ``director``, ``writer``, ``country``, ``language``, ``imdb_id``, plus
``metadata_source`` and ``metadata_match``), a year when it had none, and ``text`` becomes a readable
description — title, year, genres, people, country, language, then the catalog's own text — that the text
encoders embed. A ``MatchReport`` counts items, matches by rule, and keeps examples of unmatched titles.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from tasks.ingest.metadata import FIELDS, KEY_COLUMNS, load_metadata, one_row_per_key, with_title_keys
from tasks.items import item_content_hash

RULES = ("imdb_id", "title+year", "title")
MAX_NAMES_IN_TEXT = 5  # OMDb lists up to ~20 cast members, in alphabetical order
MAX_UNMATCHED_EXAMPLES = 20
_PAYLOAD = (*FIELDS, "runtime")

Row = dict[str, object]


def split_names(value: object) -> list[str]:
    """``"A, B, C"`` -> ``["A", "B", "C"]``; a list stays a list; ``None`` -> ``[]``."""
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    return [name.strip() for name in str(value or "").split(",") if name.strip()]


def _name_list(names: Sequence[str]) -> str:
    """``"A, B, C"``, cut to the first few names with ``"and N others"``."""
    shown = ", ".join(names[:MAX_NAMES_IN_TEXT])
    hidden = len(names) - MAX_NAMES_IN_TEXT
    return f"{shown} and {hidden} others" if hidden > 0 else shown


def describe(title: str, year: int | None, meta: Mapping[str, Any]) -> str:
    """A readable item description: ``"Heat (1995). Genres: Crime. Directed by Michael Mann. ..."``.

    ``meta`` may hold ``genres`` (a list or ``"A, B"``), ``director``, ``writer``, ``cast``, ``country`` and
    ``language``; absent ones are left out.

    Example:
        >>> describe("Heat", 1995, {"genres": ["Crime"], "director": "Michael Mann"})
        'Heat (1995). Genres: Crime. Directed by Michael Mann.'
    """
    sentences = [f"{title} ({year})" if year is not None else title]
    genres = split_names(meta.get("genres"))
    if genres:
        sentences.append(f"Genres: {', '.join(genres)}")
    for prefix, column in (("Directed by", "director"), ("Written by", "writer"), ("Starring", "cast")):
        names = split_names(meta.get(column))
        if names:
            sentences.append(f"{prefix} {_name_list(names)}")
    for prefix, column in (("Country", "country"), ("Language", "language")):
        if meta.get(column):
            sentences.append(f"{prefix}: {meta[column]}")
    return ". ".join(sentences) + "."


def match_metadata(items: pl.DataFrame, movies: pl.DataFrame) -> pl.DataFrame:
    """Every item (``item_id, title, year`` and optionally ``imdb_id``) with the rule that matched it
    (``match``, null when none did), the matched movie's ``meta_year`` and its metadata columns."""
    payload = [c for c in _PAYLOAD if c in movies.columns]
    movies = movies.with_columns(pl.col("year").alias("meta_year"))
    todo = with_title_keys(items.select("item_id", "title", "year"))
    imdb = items.select("item_id", pl.col("imdb_id") if "imdb_id" in items.columns else pl.lit(None, pl.String))
    todo = todo.join(imdb.rename({imdb.columns[1]: "item_imdb_id"}), on="item_id", how="left")
    unique_titles = movies.group_by("key_title").len().filter(pl.col("len") == 1).select("key_title")
    by_imdb = one_row_per_key(movies, ["imdb_id"]) if "imdb_id" in movies.columns else movies.clear()
    rules = [
        ("imdb_id", ["item_imdb_id"], by_imdb.with_columns(item_imdb_id=pl.col("imdb_id"))),
        ("title+year", KEY_COLUMNS, one_row_per_key(movies, KEY_COLUMNS)),
        ("title", ["key_title"], movies.join(unique_titles, on="key_title").filter(pl.col("key_title") != "")),
    ]
    parts = []
    for rule, keys, candidates in rules:
        if rule == "imdb_id" and by_imdb.is_empty():
            continue
        usable = todo.filter(pl.col("key_year").is_null()) if rule == "title" else todo
        hit = usable.drop_nulls(subset=keys).join(candidates.select(*keys, "meta_year", *payload), on=keys)
        parts.append(hit.select("item_id", pl.lit(rule).alias("match"), "meta_year", *payload))
        todo = todo.join(hit.select("item_id"), on="item_id", how="anti")
    matched = pl.concat(parts, how="diagonal_relaxed") if parts else pl.DataFrame(schema={"item_id": pl.String})
    return items.select("item_id").join(matched, on="item_id", how="left", maintain_order="left")


@dataclass
class MatchReport:
    """What an enrichment matched: items seen, items matched (per rule), examples of unmatched items."""

    source: str
    items: int = 0
    matched: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    unmatched_examples: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Matched items / items (0 when there were none)."""
        return self.matched / self.items if self.items else 0.0

    def add(self, frame: pl.DataFrame, labels: Sequence[str]) -> None:
        """Count one ``match_metadata`` result; ``labels`` name its items (``"Heat (1995)"``) in order."""
        self.items += frame.height
        for rule, n in frame.drop_nulls("match").group_by("match").len().iter_rows():
            self.by_rule[rule] = self.by_rule.get(rule, 0) + n
            self.matched += n
        room = MAX_UNMATCHED_EXAMPLES - len(self.unmatched_examples)
        misses = [label for label, rule in zip(labels, frame["match"].to_list(), strict=True) if rule is None]
        self.unmatched_examples += misses[: max(room, 0)]

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable copy, with the match rate."""
        return {**asdict(self), "rate": round(self.rate, 4)}


def _attributes(row: Row) -> dict[str, Any]:
    raw = row.get("attributes")
    try:
        parsed = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        parsed = {}
    return parsed if isinstance(parsed, dict) else {"catalog_attributes": parsed}


def _metadata_fields(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The matched movie's fields as attributes: genres and cast as lists, the rest as stored."""
    fields = {
        "genres": split_names(meta.get("genre")) or None,
        "cast": split_names(meta.get("cast")) or None,
        **{c: meta.get(c) for c in ("director", "writer", "country", "language", "imdb_id")},
    }
    return {k: v for k, v in fields.items() if v is not None}


def _is_heading(text: object, title: object, year: object) -> bool:
    return text is None or text == title or text == f"{title} ({year})"


def enrich_row(row: Row, meta: Mapping[str, Any], *, source: str) -> Row:
    """One item row with a matched movie's fields (``meta``: a ``match_metadata`` row) in ``attributes``
    (the item's own keys win), a year when it had none, a description as ``text`` (the item's own text,
    unless just its title, after it) and a new ``content_hash``."""
    attributes = {**_metadata_fields(meta), **_attributes(row)}
    attributes |= {"metadata_source": source, "metadata_match": meta["match"]}
    title, year = row.get("title") or "", row.get("year") if row.get("year") is not None else meta.get("meta_year")
    text = describe(str(title), year, attributes)  # type: ignore[arg-type]
    if not _is_heading(row.get("text"), row.get("title"), row.get("year")):
        text = f"{text} {row['text']}"
    enriched = {
        **row,
        "year": year,
        "text": text,
        "attributes": json.dumps(attributes, sort_keys=True, ensure_ascii=False, separators=(",", ":")),
    }
    return {**enriched, "content_hash": item_content_hash(enriched)}


class Enricher:
    """A loaded metadata source that enriches item rows and keeps a ``MatchReport`` across calls."""

    def __init__(self, name: str, movies: pl.DataFrame) -> None:
        self.name, self.movies, self.report = name, movies, MatchReport(source=name)

    @classmethod
    def load(cls, source: str) -> Enricher:
        """Load ``bokeh-movies`` or a local table (see ``tasks.ingest.metadata.load_metadata``)."""
        return cls(source, load_metadata(source))

    def enrich(self, rows: Sequence[Row]) -> list[Row]:
        """The rows, each matched one enriched (``enrich_row``); counts them in ``report``."""
        if not rows:
            return []
        items = pl.DataFrame(
            {
                "item_id": [str(r["item_id"]) for r in rows],
                "title": [r.get("title") for r in rows],
                "year": [r.get("year") for r in rows],
                "imdb_id": [_attributes(r).get("imdb_id") or _attributes(r).get("imdbID") for r in rows],
            },
            schema={"item_id": pl.String, "title": pl.String, "year": pl.Int32, "imdb_id": pl.String},
        )
        matched = match_metadata(items, self.movies)
        labels = [f"{r.get('title')} ({r.get('year')})" if r.get("year") else str(r.get("title")) for r in rows]
        self.report.add(matched, labels)
        return [
            row if meta["match"] is None else enrich_row(row, meta, source=self.name)
            for row, meta in zip(rows, matched.iter_rows(named=True), strict=True)
        ]
