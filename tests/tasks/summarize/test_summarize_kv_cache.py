"""KV-cache reuse in the local backend, with a tiny random causal LM: a conversation's next step computed from the
stored state gives exactly the text of the full prompt computed without a cache, batched or not."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from tasks.summarize.backends import CachingBackend, ChatPrompt
from tasks.summarize.backends.local import LocalBackend

from .tiny_lm import WORDS

SYSTEM = "summary of the seeker"


def _conversations(n: int, steps: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    return [[" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 40))) for _ in range(steps)] for _ in range(n)]


def _reference(backend: LocalBackend, prompt: ChatPrompt, max_new_tokens: int) -> str:
    """The full prompt through transformers' own ``generate``, one at a time, no stored state."""
    enc = backend.tokenizer(backend.render(prompt), return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = backend.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, temperature=None,
                                     top_p=None, top_k=None, pad_token_id=backend.tokenizer.pad_token_id)
    return backend._decode(out[0, enc["input_ids"].shape[1] :]).text


@pytest.mark.parametrize("batch_size", [1, 4])
def test_reused_cache_gives_exactly_the_text_of_the_full_prompt(peaky_lm_dir: Path, batch_size: int) -> None:
    backend = LocalBackend(peaky_lm_dir, batch_size=batch_size)
    assert isinstance(backend, CachingBackend)
    conversations, max_new = _conversations(5, 3), 12
    history: list[tuple[tuple[str, str], ...]] = [() for _ in conversations]
    for step in range(3):
        prompts = [ChatPrompt(SYSTEM, turns[step], history=history[i], cache_as=f"c{i}/{step}",
                              cache_from=f"c{i}/{step - 1}" if step else None)
                   for i, turns in enumerate(conversations)]
        full = sum(len(backend.tokenizer(backend.render(p), add_special_tokens=False)["input_ids"]) for p in prompts)
        before = backend.prefilled_tokens, backend.reused_tokens
        answers = backend.generate(prompts, max_new_tokens=max_new)
        prefilled, reused = backend.prefilled_tokens - before[0], backend.reused_tokens - before[1]
        assert prefilled + reused == full
        if step:  # later steps compute only the previous answer's tail and the new message
            assert reused > prefilled
        else:
            assert reused == 0
        for i, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
            assert answer.text == _reference(backend, prompt, max_new), (step, i)
            history[i] = (*history[i], (prompt.user, answer.text))
    assert backend.cached_states() == 15
    assert backend.release_cache([f"c{i}/{s}" for i in range(5) for s in range(2)]) == 10
    assert backend.cached_states() == 5 and backend.release_cache() == 5 and backend.cached_states() == 0


def test_a_step_from_a_cut_or_changed_answer_still_matches(peaky_lm_dir: Path) -> None:
    """The next prompt may carry a different answer than the one cached (a trimmed or re-sampled one): only the
    common token prefix of the state is reused."""
    backend = LocalBackend(peaky_lm_dir, batch_size=2)
    [first] = _conversations(1, 2, seed=3)
    prompt = ChatPrompt(SYSTEM, first[0], cache_as="a/0")
    answer = backend.generate([prompt], max_new_tokens=10)[0]
    changed = "the user appears to have a preference for comedy"
    assert changed != answer.text
    nxt = ChatPrompt(SYSTEM, first[1], history=((first[0], changed),), cache_from="a/0", cache_as="a/1")
    before = backend.reused_tokens
    [again] = backend.generate([nxt], max_new_tokens=10)
    assert 0 < backend.reused_tokens - before < len(backend.tokenizer(backend.render(nxt))["input_ids"])
    assert again.text == _reference(backend, nxt, 10)


def test_unknown_or_foreign_keys_are_not_used(peaky_lm_dir: Path) -> None:
    backend = LocalBackend(peaky_lm_dir, batch_size=2)
    a, b = _conversations(2, 1, seed=5)
    backend.generate([ChatPrompt(SYSTEM, a[0], cache_as="d1|x")], max_new_tokens=4)
    before = backend.reused_tokens
    backend.generate([ChatPrompt(SYSTEM, b[0], cache_from="d2|x")], max_new_tokens=4)
    assert backend.reused_tokens == before  # another key's state is never looked at


def test_stored_states_are_bounded(peaky_lm_dir: Path) -> None:
    backend = LocalBackend(peaky_lm_dir, batch_size=4, max_cached_states=2)
    prompts = [ChatPrompt(SYSTEM, t[0], cache_as=f"k{i}") for i, t in enumerate(_conversations(3, 1))]
    backend.generate(prompts, max_new_tokens=3)
    assert backend.cached_states() == 2 and backend.cached_bytes() > 0


def test_sampling_and_disabled_reuse_store_nothing(peaky_lm_dir: Path) -> None:
    prompts = [ChatPrompt(SYSTEM, t[0], cache_as=f"k{i}") for i, t in enumerate(_conversations(2, 1))]
    sampling = LocalBackend(peaky_lm_dir)
    sampling.generate(prompts, max_new_tokens=3, temperature=0.7, seed=0)
    disabled = LocalBackend(peaky_lm_dir, reuse_cache=False)
    disabled.generate(prompts, max_new_tokens=3)
    assert sampling.cached_states() == 0 and disabled.cached_states() == 0
