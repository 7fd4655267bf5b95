"""Recurrent preference summaries with a tiny random causal LM: carry-over (quoted in v1, one chat with KV-cache
reuse in v2), caching, quarantine, no leakage, bounded cache memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

import features
from tasks.summarize.backends import ChatPrompt, Generation
from tasks.summarize.backends.local import LocalBackend
from tasks.summarize.checks import OutputChecks
from tasks.summarize.preferences import summarize_preferences
from tasks.summarize.stage import SummarizeConfig

from .conftest import Recording

LENIENT = OutputChecks(min_chars=1, allow_unfinished=True, max_repeat_share=1.0)
CONFIG = SummarizeConfig(max_new_tokens=6, preference_checks=LENIENT, batch=4, labels=True)  # prompts show labels
V1 = replace(CONFIG, preference_template="preference_v1")

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


def test_v1_one_row_per_recommendation_point_with_carry_over(
    lake: str, backend: Recording, dialogue_writer: Callable[..., None]
) -> None:
    dialogue_writer("d1", DIALOGUE, {"i1": True})
    summary = summarize_preferences(backend=backend, lake=lake, config=V1)

    rows = features.read("preference_summaries", lake=lake).collect().sort("upto_turn")
    assert rows["upto_turn"].to_list() == [1, 3] and summary.written == 2
    assert set(rows["model_id"]) == {backend.model_id}
    prompts = [p.user for p, _ in backend.calls]
    # the shared first step (items 1-3 of point 3 differ from point 1's 2 items) and the carried summary
    first_steps = [p for p in prompts if "Summary so far: (none yet)" in p]
    later_steps = [(p, g) for p, g in backend.calls if "Summary so far: (none yet)" not in p.user]
    assert len(first_steps) == 2 and len(later_steps) == 1
    step2_prompt = later_steps[0][0].user
    carried = next(
        g.text for p, g in backend.calls if "Title i1" in p.user and "Title i3" in p.user and "(none yet)" in p.user
    )
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
    versions = features.tables(lake=lake).select("table", "version")
    calls = len(backend.calls)
    again = summarize_preferences(backend=backend, lake=lake, config=CONFIG)
    assert again.generated == 0 and again.cached == 2 and len(backend.calls) == calls
    assert features.tables(lake=lake).select("table", "version").equals(versions)


def test_new_item_summary_changes_the_prompt_hash(
    lake: str, backend: Recording, dialogue_writer: Callable[..., None]
) -> None:
    dialogue_writer("d1", DIALOGUE)
    summarize_preferences(backend=backend, lake=lake, config=CONFIG)
    from tasks.summarize.items import summarize_items

    summarize_items(
        backend=backend, lake=lake, config=SummarizeConfig(max_new_tokens=4, item_checks=LENIENT), item_ids=["i1"]
    )
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


def test_unlabelled_prompts_without_final_points(
    lake: str, backend: Recording, dialogue_writer: Callable[..., None]
) -> None:
    dialogue_writer("d1", DIALOGUE, {"i1": True})
    config = replace(CONFIG, labels=False, final_points=False)
    summary = summarize_preferences(backend=backend, lake=lake, config=config)
    rows = features.read("preference_summaries", lake=lake).collect()
    assert rows["upto_turn"].to_list() == [1] and summary.candidates == 1  # the last point (turn 3) is skipped
    assert all("(liked)" not in _text(p) for p, _ in backend.calls) and "Title i1" in _text(backend.calls[0][0])
    labelled = summarize_preferences(backend=backend, lake=lake, config=CONFIG)
    assert labelled.cached == 0 and labelled.written == 2  # labels change every prompt hash


def _text(prompt: ChatPrompt) -> str:
    return "\n".join(m["content"] for m in prompt.messages())


def test_v2_one_chat_per_chain_with_cache_reuse(
    lake: str, backend: Recording, dialogue_writer: Callable[..., None]
) -> None:
    dialogue_writer("d1", DIALOGUE, {"i1": True})
    summary = summarize_preferences(backend=backend, lake=lake, config=CONFIG)

    rows = features.read("preference_summaries", lake=lake).collect().sort("upto_turn")
    assert rows["upto_turn"].to_list() == [1, 3] and summary.written == 2
    first_steps = [(p, g) for p, g in backend.calls if not p.history]
    later_steps = [(p, g) for p, g in backend.calls if p.history]
    assert len(first_steps) == 2 and len(later_steps) == 1
    step2, answer2 = later_steps[0]
    step1, answer1 = next((p, g) for p, g in first_steps if p.cache_as == step2.cache_from)
    assert "Title i3" in step1.user and "- Title i1 (liked)" in step1.user  # point 3's first chunk (items 1-3)
    assert step2.history == ((step1.user, answer1.text),) and step2.system == step1.system
    assert "Title i5" in step2.user and "The user appears to have a preference for" in step2.user
    assert rows.filter(pl.col("upto_turn") == 3)["summary"].item() == answer2.text
    assert backend.inner.reused_tokens > 0  # type: ignore[attr-defined]
    assert backend.cached_states() == 0  # every state is released when its chains end
    assert all("zebra" not in _text(p) and "Title i7" not in _text(p) for p, _ in backend.calls)


def test_v2_reuse_writes_the_same_summaries_as_full_prompts(
    lake: str, tmp_path: Path, peaky_lm_dir: Path, dialogue_writer: Callable[..., None]
) -> None:
    from .conftest import write_dialogue

    dialogue_writer("d1", DIALOGUE)
    other = str(tmp_path / "other-lake")
    write_dialogue(other, "d1", DIALOGUE)
    reusing = LocalBackend(peaky_lm_dir, batch_size=4)
    full = LocalBackend(peaky_lm_dir, batch_size=4, reuse_cache=False)
    summarize_preferences(backend=reusing, lake=lake, config=CONFIG)
    summarize_preferences(backend=full, lake=other, config=CONFIG)
    assert reusing.reused_tokens > 0 and full.reused_tokens == 0
    assert reusing.prefilled_tokens < full.prefilled_tokens
    a, b = (features.read("preference_summaries", lake=x).collect().sort("upto_turn") for x in (lake, other))
    assert a.select("upto_turn", "prompt_hash", "summary").equals(b.select("upto_turn", "prompt_hash", "summary"))


def test_v2_a_chain_only_continues_its_own_dialogue(
    lake: str, backend: Recording, dialogue_writer: Callable[..., None]
) -> None:
    dialogue_writer("d1", DIALOGUE)
    dialogue_writer("d2", DIALOGUE)  # the same words: the same step hashes, but separate chats and states
    summarize_preferences(backend=backend, lake=lake, config=CONFIG)
    stored = {p.cache_as: (p, g) for p, g in backend.calls}
    continued = [p for p, _ in backend.calls if p.cache_from]
    assert len(continued) == 2
    for prompt in continued:
        parent, answer = stored[prompt.cache_from]
        assert prompt.cache_from.split("|")[0] == prompt.cache_as.split("|")[0]  # type: ignore[union-attr]
        assert prompt.history == (*parent.history, (parent.user, answer.text))
    keys = {d: {k for k in stored if k and k.startswith(f"{d}|")} for d in ("d1", "d2")}
    assert len(keys["d1"]) == len(keys["d2"]) == 3 and keys["d1"].isdisjoint(keys["d2"])
    rows = features.read("preference_summaries", lake=lake).collect().sort("dialogue_id", "upto_turn")
    assert (
        rows.filter(pl.col("dialogue_id") == "d1")["summary"].to_list()
        == rows.filter(pl.col("dialogue_id") == "d2")["summary"].to_list()
    )


class _Held(Recording):
    """Records how many KV states the backend holds at the start of every call."""

    def __init__(self, inner: LocalBackend) -> None:
        super().__init__(inner)
        self.held: list[int] = []

    def generate(
        self, prompts: list[ChatPrompt], *, max_new_tokens: int, temperature: float = 0.0, seed: int | None = None
    ) -> list[Generation]:
        self.held.append(self.cached_states())
        return super().generate(prompts, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)


def test_v2_cache_memory_is_bounded_by_the_live_chains(
    lake: str, tiny_lm_dir: Path, dialogue_writer: Callable[..., None]
) -> None:
    for d in ("d1", "d2", "d3"):
        dialogue_writer(d, DIALOGUE)
    backend = _Held(LocalBackend(tiny_lm_dir, batch_size=8))
    summarize_preferences(backend=backend, lake=lake, config=replace(CONFIG, batch=1))
    # per dialogue: step 1 of both chains (nothing held), then step 2 of the longer chain (only its step 1 held:
    # the finished chain's state was dropped); all dropped when the dialogue's batch ends
    assert backend.held == [0, 1] * 3 and backend.cached_states() == 0


def test_v1_rows_stay_valid_beside_v2(lake: str, backend: Recording, dialogue_writer: Callable[..., None]) -> None:
    dialogue_writer("d1", DIALOGUE)
    summarize_preferences(backend=backend, lake=lake, config=V1)
    v2 = summarize_preferences(backend=backend, lake=lake, config=CONFIG)
    assert v2.written == 2 and v2.cached == 0  # a new template: a new prompt_hash
    rows = features.read("preference_summaries", lake=lake).collect()
    assert rows.height == 4 and rows["prompt_hash"].n_unique() == 4
    calls = len(backend.calls)
    for config in (V1, CONFIG):
        again = summarize_preferences(backend=backend, lake=lake, config=config)
        assert again.generated == 0 and again.cached == 2
    assert len(backend.calls) == calls


def test_a_large_cpu_run_says_what_it_will_cost_before_it_starts(tmp_path, monkeypatch) -> None:
    import features
    from tasks.summarize import task as summarize_task
    from tasks.summarize.config import SummarizeSettings

    from .conftest import write_dialogue

    lake = str(tmp_path / "lake")
    for d in range(4):
        write_dialogue(lake, f"d{d}", [("seeker", "i like @a", ["a"]), ("recommender", "try @b", ["b"])])
    monkeypatch.setattr(summarize_task, "ANNOUNCE_ABOVE", 3)
    monkeypatch.setattr(summarize_task, "torch_cuda_available", lambda: False)
    resolved = features.resolve_lake(lake)
    warning = summarize_task.cost_warning(SummarizeSettings(), resolved)
    assert warning is not None and warning.startswith("summarising 4 dialogues on the CPU") and "limit" in warning
    assert summarize_task.cost_warning(SummarizeSettings(limit=2), resolved) is None  # a sample: no warning
    assert summarize_task.cost_warning(SummarizeSettings(backend="openai"), resolved) is None  # served elsewhere
