"""Graphs counted from dialogue turns: co-mention (collaborative) and transition (TPAD), from sparse pair counts.

They live in ``training`` (plain polars) because both the graph stage and training build them: training
rebuilds them from its training dialogues only, so validation and test dialogues never leak into a view.

Co-mention: items mentioned in the same dialogue.

Built with polars joins over (dialogue, turn, item) mentions: the work and memory grow with the number of
co-mentioned pairs, never with items x items (the reference implementation's dense matrix is tens of GB
at ReDial scale). Weight: the number of dialogues that mention both (optionally within ``window`` turns of
each other), or PMI over dialogues. Both directions are stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class CoMentionConfig:
    """Co-mention parameters.

    Attributes:
        window: only pairs mentioned at most this many turns apart (None: anywhere in the dialogue).
        min_count: drop pairs co-mentioned in fewer dialogues.
        weighting: ``count`` (dialogues) or ``pmi`` (log of observed / expected co-occurrence).
    """

    window: int | None = None
    min_count: int = 1
    weighting: str = "count"


def mentions(turns: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """One row per distinct (dialogue_id, turn_idx, item) mention."""
    return (
        turns.lazy()
        .select("dialogue_id", "turn_idx", pl.col("mentioned_item_ids").alias("item"))
        .explode("item")
        .drop_nulls("item")
        .unique()
    )


def co_mention_edges(turns: pl.LazyFrame | pl.DataFrame, config: CoMentionConfig | None = None) -> pl.DataFrame:
    """Edges ``src, dst, weight`` (both directions) of the co-mention graph."""
    cfg = config or CoMentionConfig()
    found = mentions(turns)
    left = found.rename({"item": "src", "turn_idx": "turn_a"})
    right = found.rename({"item": "dst", "turn_idx": "turn_b"})
    pairs = left.join(right, on="dialogue_id").filter(pl.col("src") != pl.col("dst"))
    if cfg.window is not None:
        pairs = pairs.filter((pl.col("turn_a") - pl.col("turn_b")).abs() <= cfg.window)
    counts = (
        pairs.select("dialogue_id", "src", "dst")
        .unique()
        .group_by("src", "dst")
        .agg(pl.len().alias("count"))
        .filter(pl.col("count") >= cfg.min_count)
    )
    if cfg.weighting == "pmi":
        dialogues = found.select("dialogue_id").unique().select(pl.len()).collect().item()
        per_item = found.select("dialogue_id", "item").unique().group_by("item").agg(pl.len().alias("n"))
        counts = (
            counts.join(per_item.rename({"item": "src", "n": "n_src"}), on="src")
            .join(per_item.rename({"item": "dst", "n": "n_dst"}), on="dst")
            .with_columns((pl.col("count") * dialogues / (pl.col("n_src") * pl.col("n_dst"))).log().alias("count"))
        )
    elif cfg.weighting != "count":
        raise ValueError(f"unknown weighting {cfg.weighting!r}: count | pmi")
    return counts.select("src", "dst", pl.col("count").cast(pl.Float32).alias("weight")).collect()


def transition_edges(turns: pl.LazyFrame | pl.DataFrame, *, horizon: int = 1, min_count: int = 1) -> pl.DataFrame:
    """Edges ``src, dst, weight`` of the transition graph."""
    found = mentions(turns)
    steps = (
        found.select("dialogue_id", "turn_idx")
        .unique()
        .with_columns(pl.col("turn_idx").rank("dense").over("dialogue_id").cast(pl.Int64).alias("step"))
    )
    found = found.join(steps, on=["dialogue_id", "turn_idx"])
    left = found.select("dialogue_id", pl.col("item").alias("src"), pl.col("step").alias("a"))
    right = found.select("dialogue_id", pl.col("item").alias("dst"), pl.col("step").alias("b"))
    pairs = left.join(right, on="dialogue_id").filter(
        (pl.col("b") > pl.col("a")) & (pl.col("b") - pl.col("a") <= horizon) & (pl.col("src") != pl.col("dst"))
    )
    counts = pairs.group_by("src", "dst").agg(pl.len().alias("count")).filter(pl.col("count") >= min_count)
    return counts.select("src", "dst", pl.col("count").cast(pl.Float32).alias("weight")).collect()
