"""Recurrent preference summaries with a tiny random causal LM: carry-over, caching, quarantine, no leakage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

import features
from tasks.summarize.backends.local import LocalBackend
from tasks.summarize.checks import OutputChecks
from tasks.summarize.preferences import summarize_preferences
from tasks.summarize.stage import SummarizeConfig

from .conftest import Recording

LENIENT = OutputChecks(min_chars=1, allow_unfinished=True, max_repeat_share=1.0)
CONFIG = SummarizeConfig(max_new_tokens=6, preference_checks=LENIENT, batch=4)

DIALOGUE = [
    ("seeker", "hi i like @i1 and @i2", ["i1", "i2"]),
    ("recommender", "have you seen @i3 or @i4", ["i3", "i4"]),  # point 1: 2 items before -> 1 step
    ("seeker", "no, but i love @i5", ["i5"]),
    ("recommender", "then try @i6", ["i6"]),  # point 3: 5 items before -> 2 steps
    ("seeker", "zebra zebra @i7", ["i7"]),  # after the last point: must never be read
]


@pytest.fixture
def backend(tiny_lm_dir: Path) -> Recording:
    return Recording(LocalBackend(tiny_lm_dir, batch_size=8))


def test_one_row_per_recommendation_point_with_carry_over(
    lake: str, backend: Recording, dialogue_writer: Callable[..., None]
) -> None:
    dialogue_writer("d1", DIALOGUE, {"i1": True})
    summary = summarize_preferences(backend=backend, lake=lake, config=CONFIG)

    rows = features.read("preference_summaries", lake=lake).collect().sort("upto_turn")
    assert rows["upto_turn"].to_list() == [1, 3] and summary.written == 2
    assert set(rows["model_id"]) == {backend.model_id}
    prompts = [p.user for p, _ in backend.calls]
    # the shared first step (items 1-3 of point 3 differ from point 1's 2 items) and the carried summary
    first_steps = [p for p in prompts if "Summary so far: (none yet)" in p]
    later_steps = [(p, g) for p, g in backend.calls if "Summary so far: (none yet)" not in p.user]
    assert len(first_steps) == 2 and len(later_steps) == 1
    step2_prompt = later_steps[0][0].user
    carried = next(g.text for p, g in backend.calls if "Title i1" in p.user and "Title i3" in p.user
                   and "(none yet)" in p.user)
    assert f"Summary so far: {carried}\n" in step2_prompt  # step 2 carries step 1's answer
    assert rows.filter(pl.col("upto_turn") == 3)["summary"].item() == later_steps[0][1].text
    assert "- Title i1 (liked)" in first_steps[0] + first_steps[1]
    assert all("zebra" not in p and "Title i7" not in p for p in prompts)  # nothing from after the point


def test_rerun_generates_nothing_and_writes_nothing(
    lake: str, backend: Recording, dialogue_writer: Callable[..., None]
) -> None:
    dialogue_writer("d1", DIALOGUE)
    first = summarize_preferences(backend=backend, lake=lake, config=CONFIG)
    assert first.generated > 0
    versions = features.tables(lake).select("table", "version")
    calls = len(backend.calls)
    again = summarize_preferences(backend=backend, lake=lake, config=CONFIG)
    assert again.generated == 0 and again.cached == 2 and len(backend.calls) == calls
    assert features.tables(lake).select("table", "version").equals(versions)


def test_new_item_summary_changes_the_prompt_hash(
    lake: str, backend: Recording, dialogue_writer: Callable[..., None]
) -> None:
    dialogue_writer("d1", DIALOGUE)
    summarize_preferences(backend=backend, lake=lake, config=CONFIG)
    from tasks.summarize.items import summarize_items

    summarize_items(backend=backend, lake=lake, config=SummarizeConfig(max_new_tokens=4, item_checks=LENIENT),
                    item_ids=["i1"])
    again = summarize_preferences(backend=backend, lake=lake, config=CONFIG)
    assert again.written == 2 and again.cached == 0  # both points had i1 in their history
    assert features.read("preference_summaries", lake=lake).collect().height == 4


def test_bad_outputs_are_retried_once_then_quarantined(
    lake: str, backend: Recording, dialogue_writer: Callable[..., None]
) -> None:
    dialogue_writer("d1", DIALOGUE)
    strict = SummarizeConfig(max_new_tokens=6)  # random weights never say "prefer" nor stop in 6 tokens
    summary = summarize_preferences(backend=backend, lake=lake, config=strict)
    assert summary.written == 0 and summary.quarantined == 2
    assert summary.generated == 2 * 2  # two distinct first steps, each retried once; the chain stops there
    quarantine = features.read("quarantine", lake=lake).collect()
    assert set(quarantine["source"]) == {"summarize:preference"}
    assert quarantine["reason"].str.contains("step 1/").all()
    assert quarantine["reason"].str.contains(r"^(runaway|empty|off-format)").all()
    again = summarize_preferences(backend=backend, lake=lake, config=strict)
    assert again.generated == 0 and again.cached == 2


def test_limit_takes_the_first_dialogues(lake: str, backend: Recording, dialogue_writer: Callable[..., None]) -> None:
    for d in ("d1", "d2", "d3"):
        dialogue_writer(d, DIALOGUE[:2])
    summary = summarize_preferences(backend=backend, lake=lake, config=CONFIG, limit=2)
    assert summary.dialogues == 2 and summary.dialogues_total == 3
    assert set(features.read("preference_summaries", lake=lake).collect()["dialogue_id"]) == {"d1", "d2"}
