"""CRS samples from turns, and the deterministic split by dialogue."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from training.data import one_summary_per_point
from training.samples import build_samples, context_from_messages, split_dialogues


def _turns() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "dialogue_id": ["a"] * 4,
            "turn_idx": [0, 1, 2, 3],
            "role": ["seeker", "recommender", "seeker", "recommender"],
            "text": ["I liked @x", "try @y", "no, seen it", "then @z or @x"],
            "mentioned_item_ids": [["x"], ["y"], [], ["z", "x"]],
            "liked": [[True], [None], [], [None, None]],
        }
    )


def test_one_sample_per_item_in_recommender_turns_with_prior_context() -> None:
    summaries = pl.DataFrame({"dialogue_id": ["a", "a"], "upto_turn": [0, 3], "summary": ["likes x", "late"]})
    samples = build_samples(_turns(), summaries=summaries, titles={"x": "Heat"})
    assert [(s.turn_idx, s.target) for s in samples] == [(1, "y"), (3, "z"), (3, "x")]
    first, last = samples[0], samples[2]
    assert first.context_text == "seeker: I liked Heat" and first.context_items == ("x",)
    assert first.context_liked == (True,) and first.summary == "likes x" and not first.repeat
    assert last.context_items == ("x", "y") and last.repeat
    assert "then" not in last.context_text  # the target's own turn is not context
    assert last.summary == "likes x"  # the summary written at turn 3 is not before turn 3


def test_split_is_deterministic_disjoint_and_complete() -> None:
    ids = [f"d{i}" for i in range(100)]
    one, two = split_dialogues(ids, seed=3), split_dialogues(list(reversed(ids)), seed=3)
    assert one == two
    assert (len(one.train), len(one.valid), len(one.test)) == (80, 10, 10)
    assert set(one.train) | set(one.valid) | set(one.test) == set(ids)
    assert not set(one.train) & set(one.test)
    assert split_dialogues(ids, seed=4).test != one.test


def test_context_from_messages() -> None:
    text, items = context_from_messages([{"role": "seeker", "text": "@a and @b"}, {"text": "@a again"}])
    assert items == ("a", "b") and text.splitlines()[1] == "seeker: @a again"


def test_mentions_stop_before_trailing_punctuation() -> None:
    _, items = context_from_messages([{"role": "seeker", "text": "I loved @redial:111776, and @ml:2. Also @x!"}])
    assert items == ("redial:111776", "ml:2", "x")


def test_one_summary_per_point_of_one_model_whatever_the_prompt_hashes() -> None:
    at = [datetime(2026, 1, day, tzinfo=UTC) for day in (1, 1, 1, 2, 1)]
    rows = pl.DataFrame(
        {
            "dialogue_id": ["d1", "d1", "d2", "d2", "d1"],
            "upto_turn": [1, 3, 1, 1, 1],
            "model_id": ["a", "a", "a", "a", "b"],
            "prompt_hash": ["h1", "h2", "h3", "h4", "h5"],  # every row's own history: all different
            "summary": ["s1", "s2", "old", "new", "other model"],
            "generated_at": at,
        }
    )
    kept = one_summary_per_point(rows).sort("dialogue_id", "upto_turn")
    assert kept["summary"].to_list() == ["s1", "s2", "new"]
