"""What the embedding stage must compute: items whose (source hash, modality, model_id) has no vector yet."""

from __future__ import annotations

import hashlib

import polars as pl

import features
from features import Lake
from training import modalities as registry
from training.modalities import Source, SourceKind

_TEXTS = {"item_id": pl.String, "text": pl.String}
STORED = "stored"  # work rows: the item has an older vector for this modality and model


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def item_texts(items: pl.DataFrame, columns: tuple[str, ...]) -> pl.DataFrame:
    """``item_id, text``: the first non-null of ``columns`` per item, items whose text is blank left out."""
    text = pl.coalesce(*(pl.col(c) for c in columns))
    return items.select("item_id", text.alias("text")).filter(pl.col("text").str.strip_chars().str.len_chars() > 0)


def latest_item_summaries(lake: Lake) -> pl.DataFrame:
    """``item_id, text``: each item's most recent LLM summary (``item_summaries``), none when absent."""
    rows = features.read("item_summaries", columns=["item_id", "summary", "generated_at"], missing="empty", lake=lake)
    latest = rows.sort("generated_at").group_by("item_id").agg(pl.col("summary").last().alias("text"))
    return latest.sort("item_id").collect()


def source_columns(source: Source) -> tuple[str, ...]:
    """The ``items`` columns (besides ``item_id``) that ``source`` reads."""
    if source.kind is SourceKind.POSTER:
        return ("poster_sha256",)
    return source.columns


def candidates(items: pl.DataFrame, modality: str, lake: Lake | None = None) -> pl.DataFrame:
    """Every item that can be embedded in ``modality``: ``item_id, source_hash, payload``.

    ``payload`` is the poster sha256 (posters) or the text; ``source_hash`` what the vector is computed from.
    """
    source = registry.modality(modality).source
    if source.kind is SourceKind.POSTER:
        posters = items.filter(pl.col("poster_sha256").is_not_null())
        return posters.select(
            "item_id", pl.col("poster_sha256").alias("source_hash"), pl.col("poster_sha256").alias("payload")
        )
    if source.kind is SourceKind.ITEM_SUMMARIES:
        texts = latest_item_summaries(lake) if lake is not None else pl.DataFrame(schema=_TEXTS)
    else:
        texts = item_texts(items, source.columns)
    hashes = pl.Series("source_hash", [_sha256(t) for t in texts["text"]], dtype=pl.String)
    return texts.select("item_id", hashes, pl.col("text").alias("payload"))


def existing(modality: str, model_id: str, lake: Lake) -> pl.DataFrame:
    """``item_id, source_hash`` of the vectors already stored for this modality and model."""
    columns = ["item_id", "modality", "model_id", "source_hash"]
    return (
        features.read("item_embeddings", columns=columns, missing="empty", lake=lake)
        .filter((pl.col("modality") == modality) & (pl.col("model_id") == model_id))
        .select("item_id", "source_hash")
        .collect()
    )


def todo(items: pl.DataFrame, modality: str, model_id: str, lake: Lake) -> tuple[pl.DataFrame, int]:
    """(rows to embed, number of candidates already up to date), in ``item_id`` order (deterministic shards).

    The rows carry ``stored``: whether the item has a vector for this modality and model already (from an
    older source), so the writer appends the vectors of new items and merges only the replaced ones.
    """
    wanted = candidates(items, modality, lake)
    stored = existing(modality, model_id, lake)
    work = wanted.join(stored, on=["item_id", "source_hash"], how="anti")
    work = work.with_columns(pl.col("item_id").is_in(stored["item_id"].implode()).alias(STORED))
    return work.sort("item_id"), wanted.height - work.height
