"""Transition graph (TPAD): an item mentioned at one turn -> the items mentioned at the next turns.

Directed. Within each dialogue the turns that mention items are taken in order; every item of one such
turn points to every item of the next ``horizon`` mention-bearing turns. Weight: how often that transition
occurs over all dialogues.
"""

from __future__ import annotations

import polars as pl

from tasks.graphs.co_mention import mentions


def transition_edges(turns: pl.LazyFrame | pl.DataFrame, *, horizon: int = 1, min_count: int = 1) -> pl.DataFrame:
    """Edges ``src, dst, weight`` of the transition graph."""
    found = mentions(turns)
    steps = (found.select("dialogue_id", "turn_idx").unique()
             .with_columns(pl.col("turn_idx").rank("dense").over("dialogue_id").cast(pl.Int64).alias("step")))
    found = found.join(steps, on=["dialogue_id", "turn_idx"])
    left = found.select("dialogue_id", pl.col("item").alias("src"), pl.col("step").alias("a"))
    right = found.select("dialogue_id", pl.col("item").alias("dst"), pl.col("step").alias("b"))
    pairs = left.join(right, on="dialogue_id").filter(
        (pl.col("b") > pl.col("a")) & (pl.col("b") - pl.col("a") <= horizon) & (pl.col("src") != pl.col("dst")))
    counts = pairs.group_by("src", "dst").agg(pl.len().alias("count")).filter(pl.col("count") >= min_count)
    return counts.select("src", "dst", pl.col("count").cast(pl.Float32).alias("weight")).collect()
