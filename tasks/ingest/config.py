"""Settings of the ingest stage: which catalog and dialogue files to ingest, and how to read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tasks.settings import StageSettings


@dataclass(frozen=True)
class IngestSettings(StageSettings):
    """What to ingest (the catalog first, so that dialogue mentions link to its items).

    Attributes:
        dialogues: a ReDial JSONL or INSPIRED TSV file.
        dialogue_format: ``redial`` | ``inspired`` (default: detected from the file).
        catalog: an item catalog (CSV, JSONL or Parquet).
        catalog_format: ``csv`` | ``jsonl`` | ``parquet`` (default: from the extension) | ``redial-movies``
            (ReDial's ``movies_with_mentions.csv``: items ``redial:<movieId>``, the ids dialogue mentions link to).
        catalog_source: the catalog's source name (``items.source``; default ``catalog``, ``redial`` for
            ``redial-movies``).
        catalog_columns: the catalog's column names mapped to ours (``{"movie_title": "title"}``).
        enrich_with: a metadata source for the items ingested (``tasks.ingest.enrich``): ``bokeh-movies`` (the
            CC0 OMDb extract ``bokeh-sampledata`` ships) or a local CSV / Parquet / sqlite table with ``title``,
            ``year`` and optionally ``imdb_id``, ``genre``, ``director``, ``writer``, ``cast``, ``country``,
            ``language`` columns (a sqlite file as ``path.db`` with one table, or ``path.db::table``).
    """

    dialogues: str | None = None
    dialogue_format: Literal["redial", "inspired"] | None = None
    catalog: str | None = None
    catalog_format: Literal["csv", "jsonl", "parquet", "redial-movies"] | None = None
    catalog_source: str | None = None
    catalog_columns: dict[str, str] = field(default_factory=dict)
    enrich_with: str | None = None
