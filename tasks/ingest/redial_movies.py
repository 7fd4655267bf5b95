"""The ReDial movie list (``movies_with_mentions.csv``: ``movieId,movieName,nbMentions``) as catalog rows.

Each movie becomes the item ``redial:<movieId>`` — the id a ReDial dialogue's mention of ``@<movieId>`` links
to (``tasks.ingest.linking``), so ingesting the list before or after the dialogues gives the same items. The
name ``"Title (Year)"`` is split into title and year; a name without a year, or with a year outside
1800..2200, keeps its whole name as the title and no year. ``nbMentions`` (a count over the whole dataset,
test dialogues included) is not kept. A row without a numeric ``movieId`` or without a name is rejected
(and quarantined by the catalog ingest).
"""

from __future__ import annotations

from tasks.ingest.titles import split_title_year

REDIAL_SOURCE = "redial"
FORMAT = "redial-movies"
_COLUMNS = ("movieId", "movieName")

Row = dict[str, object]


def missing_columns(columns: list[str]) -> list[str]:
    """The ReDial movie-list columns a header lacks."""
    return [c for c in _COLUMNS if c not in columns]


def redial_item_id(movie_id: str) -> str:
    """The lake item id of a ReDial movie id: ``redial:<movieId>`` (what dialogue mentions link to)."""
    return f"{REDIAL_SOURCE}:{movie_id}"


def redial_movie_row(row: Row) -> Row:
    """One ``movies_with_mentions.csv`` row as a catalog row (``item_id, title, year, text``); raises
    ``ValueError`` with the reason a row cannot be used.

    Example:
        >>> redial_movie_row({"movieId": "75815", "movieName": "Angels in the Outfield  (1994)"})["title"]
        'Angels in the Outfield'
    """
    movie_id = row.get("movieId")
    if not isinstance(movie_id, str) or not movie_id.strip():
        raise ValueError("missing item_id: the row has no movieId")
    if not movie_id.strip().isdigit():
        raise ValueError(f"invalid item_id: movieId {movie_id.strip()[:40]!r} is not a number")
    name = row.get("movieName")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("missing title: the row has no movieName")
    title, year = split_title_year(name)
    if not title or (year is not None and not 1800 <= year <= 2200):
        title, year = " ".join(name.split()), None
    return {
        "item_id": redial_item_id(movie_id.strip()),
        "title": title,
        "year": year,
        "text": f"{title} ({year})" if year is not None else title,
    }
