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
        catalog_format: ``csv`` | ``jsonl`` | ``parquet`` (default: from the extension).
        catalog_source: the catalog's source name (``items.source``).
        catalog_columns: the catalog's column names mapped to ours (``{"movie_title": "title"}``).
    """

    dialogues: str | None = None
    dialogue_format: Literal["redial", "inspired"] | None = None
    catalog: str | None = None
    catalog_format: Literal["csv", "jsonl", "parquet"] | None = None
    catalog_source: str = "catalog"
    catalog_columns: dict[str, str] = field(default_factory=dict)
