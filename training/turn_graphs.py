"""Graphs counted from dialogue turns: co-mention (collaborative) and transition (TPAD), from sparse pair counts.

They live in ``training`` (plain polars) because both the graph stage and training build them: training
rebuilds them from its training dialogues only, so validation and test dialogues never leak into a view.

Co-mention: items mentioned in the same dialogue.

Built with polars joins over (dialogue, turn, item) mentions: the work and memory grow with the number of
co-mentioned pairs, never with items x items (the reference implementation's dense matrix is tens of GB
at ReDial scale). Weight: the number of dialogues that mention both (optionally within ``window`` turns of
each other), or PMI over dialogues. Both directions are stored.

Raw counts add up over dialogues, so when a night only adds dialogues, ``new_dialogues`` finds them,
the builder counts their pairs alone and ``add_counts`` adds them to the stored counts of the pairs they
touch (``additive`` says when a builder's stored weights are such raw counts: ``count`` weighting and no
``min_count`` cut, since a cut pair's count is not stored).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    return counts.select("src", "dst", pl.col("count").cast(pl.Float32).alias("weight")).sort("src", "dst").collect()


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
    return counts.select("src", "dst", pl.col("count").cast(pl.Float32).alias("weight")).sort("src", "dst").collect()


def additive(builder: Callable[..., pl.DataFrame], options: Mapping[str, object]) -> bool:
    """True when ``builder`` with ``options`` stores raw pair counts, so counts of new dialogues add up: the
    co-mention graph (a builder taking a ``CoMentionConfig``) with ``count`` weighting and no ``min_count``
    cut, or the transition graph with no ``min_count`` cut."""
    configs = [value for value in options.values() if isinstance(value, CoMentionConfig)]
    if configs:
        return all(cfg.weighting == "count" and cfg.min_count <= 1 for cfg in configs)
    return builder is transition_edges and int(options.get("min_count", 1)) <= 1  # type: ignore[call-overload]


def new_dialogues(current: pl.LazyFrame, base: pl.LazyFrame) -> pl.Series | None:
    """Dialogue ids in ``current`` turns that ``base`` turns lack, or None when anything else changed (a base
    dialogue's turns or mentions were edited or removed): then only a full recount is right."""
    columns = ["dialogue_id", "turn_idx", "mentioned_item_ids"]
    cur, old = current.select(columns), base.select(columns)
    if old.join(cur, on=columns, how="anti").select(pl.len()).collect().item():
        return None  # a base turn is gone or differs
    added = cur.join(old, on=columns, how="anti").select("dialogue_id").unique().collect()
    touched = added.join(old.select("dialogue_id").unique().collect(), on="dialogue_id", how="semi")
    return None if touched.height else added["dialogue_id"].sort()


def add_counts(stored: pl.DataFrame, delta: pl.DataFrame) -> pl.DataFrame:
    """``src, dst, weight`` of the pairs in ``delta``: the stored count (0 when new) plus the delta's."""
    old = stored.select("src", "dst", pl.col("weight").alias("old"))
    joined = delta.join(old, on=["src", "dst"], how="left")
    return joined.select("src", "dst", (pl.col("weight") + pl.col("old").fill_null(0.0)).cast(pl.Float32))
