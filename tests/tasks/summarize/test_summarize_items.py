"""Item summaries with a tiny random causal LM: rows, the skipped image part, caching, quarantine."""

from __future__ import annotations

from pathlib import Path

import features
from tasks.summarize.backends.local import LocalBackend
from tasks.summarize.checks import OutputChecks
from tasks.summarize.items import summarize_items
from tasks.summarize.stage import SummarizeConfig

from .conftest import Recording, write_items

LENIENT = SummarizeConfig(
    max_new_tokens=5, item_checks=OutputChecks(min_chars=1, allow_unfinished=True, max_repeat_share=1.0)
)


def test_items_summarised_once_and_image_part_skipped(lake: str, tiny_lm_dir: Path) -> None:
    write_items(lake, ["a", "b", "c"], poster=True)
    backend = Recording(LocalBackend(tiny_lm_dir))
    summary = summarize_items(backend=backend, lake=lake, config=LENIENT, limit=2)
    assert summary.images == "skipped: the backend takes no images"
    assert all(not p.images for p, _ in backend.calls)
    assert "Title a (1999)" in backend.calls[0][0].user and "genres: ['comedy']" in backend.calls[0][0].user
    rows = features.read("item_summaries", lake=lake).collect()
    assert sorted(rows["item_id"]) == ["a", "b"] and summary.written == 2 and summary.generated == 2
    assert rows["prompt_hash"].str.len_chars().to_list() == [64, 64]

    again = summarize_items(backend=backend, lake=lake, config=LENIENT, limit=2)
    assert again.generated == 0 and again.cached == 2
    more = summarize_items(backend=backend, lake=lake, config=LENIENT)
    assert more.generated == 1 and more.cached == 2  # only the new item


def test_unusable_item_answers_are_quarantined(lake: str, tiny_lm_dir: Path) -> None:
    write_items(lake, ["a"])
    summary = summarize_items(backend=LocalBackend(tiny_lm_dir), lake=lake, config=SummarizeConfig(max_new_tokens=3))
    assert summary.quarantined == 1 and summary.generated == 2  # answered, retried once, quarantined
    row = features.read("quarantine", lake=lake).collect().row(0, named=True)
    assert row["source"] == "summarize:item" and row["record_key"].startswith("a|local:")


def test_batched_generation_matches_one_at_a_time(tiny_lm_dir: Path) -> None:
    from tasks.summarize.backends import ChatPrompt

    backend = LocalBackend(tiny_lm_dir, batch_size=4)
    prompts = [ChatPrompt("s", "i like " + "comedy " * n) for n in (1, 5, 9)]
    batched = backend.generate(prompts, max_new_tokens=6)
    single = [backend.generate([p], max_new_tokens=6)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in single]
    assert all(g.new_tokens > 0 for g in batched)


def test_local_backend_model_id_is_the_model_spec_fingerprint(tiny_lm_dir: Path) -> None:
    from tasks.summarize.backends.factory import SMOLLM2, BackendSpec
    from training.spec import ModelSpec

    spec = ModelSpec("local", str(tiny_lm_dir))
    backend = LocalBackend(spec)
    assert backend.model_id == f"local:{tiny_lm_dir.name}@{spec.fingerprint()[:12]}"
    assert LocalBackend(tiny_lm_dir).model_id == backend.model_id
    from tasks.summarize.config import SummarizeSettings

    folder = SummarizeSettings(model_dir=str(tiny_lm_dir))  # the --model-dir shorthand is the same local spec
    assert folder.backend_spec() == SummarizeSettings(weights=f"local:{tiny_lm_dir}").backend_spec()
    assert folder.backend_spec().weights == spec
    assert BackendSpec().weights == SMOLLM2
