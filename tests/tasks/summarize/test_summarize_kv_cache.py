"""KV-cache reuse in the local backend, with a tiny random causal LM: a conversation's next step computed from the
stored state, a prompt continued from a shared prefix state, unpadded prefill and a decode batch that drops its
finished rows all give exactly the text of the full prompt computed without a cache, batched or not."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

from tasks.summarize.backends import CachingBackend, ChatPrompt
from tasks.summarize.backends.greedy import GreedyDecoder, Row, common_prefix
from tasks.summarize.backends.local import LocalBackend

from .tiny_lm import WORDS

SYSTEM = "summary of the seeker"


def _conversations(n: int, steps: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    return [[" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 40))) for _ in range(steps)] for _ in range(n)]


def _ids(backend: LocalBackend, prompt: ChatPrompt) -> list[int]:
    return backend.tokenizer(backend.render(prompt), add_special_tokens=False)["input_ids"]


def _reference(backend: LocalBackend, prompt: ChatPrompt, max_new_tokens: int) -> str:
    """The full prompt through transformers' own ``generate``, one at a time, no stored state."""
    enc = backend.tokenizer(backend.render(prompt), return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = backend.model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=backend.tokenizer.pad_token_id,
        )
    return backend._decode(out[0, enc["input_ids"].shape[1] :]).text


@pytest.mark.parametrize(("batch_size", "prefill_rows"), [(1, None), (4, None), (4, 4)])
def test_reused_cache_gives_exactly_the_text_of_the_full_prompt(
    peaky_lm_dir: Path, batch_size: int, prefill_rows: int | None
) -> None:
    backend = LocalBackend(peaky_lm_dir, batch_size=batch_size, prefill_rows=prefill_rows)
    assert isinstance(backend, CachingBackend)
    conversations, max_new = _conversations(5, 3), 12
    history: list[tuple[tuple[str, str], ...]] = [() for _ in conversations]
    for step in range(3):
        prompts = [
            ChatPrompt(
                SYSTEM,
                turns[step],
                history=history[i],
                cache_as=f"c{i}/{step}",
                cache_from=f"c{i}/{step - 1}" if step else None,
            )
            for i, turns in enumerate(conversations)
        ]
        ids = [_ids(backend, p) for p in prompts]
        full = sum(len(x) for x in ids)
        before = backend.prefilled_tokens, backend.reused_tokens, backend.prefix_tokens
        answers = backend.generate(prompts, max_new_tokens=max_new)
        prefilled, reused, prefix = (
            backend.prefilled_tokens - before[0],
            backend.reused_tokens - before[1],
            backend.prefix_tokens - before[2],
        )
        if step:  # later steps compute only the previous answer's tail and the new message
            assert prefix == 0 and prefilled + reused == full
            assert reused > prefilled
        else:  # first steps share the system prompt and chat header: computed once, used by all five
            shared = min(common_prefix(ids[0], x) for x in ids[1:])
            assert reused == 0 and shared > 0 and prefix == 5 * shared
            assert prefilled == full - 5 * shared + shared
        for i, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
            assert answer.text == _reference(backend, prompt, max_new), (step, i)
            history[i] = (*history[i], (prompt.user, answer.text))
    assert backend.cached_states() == 15
    assert backend.release_cache([f"c{i}/{s}" for i in range(5) for s in range(2)]) == 10
    assert backend.cached_states() == 5 and backend.release_cache() == 5 and backend.cached_states() == 0


def test_one_at_a_time_calls_share_the_previous_prompts_prefix(peaky_lm_dir: Path) -> None:
    """Like llama.cpp's prompt cache: a lone prompt continues from the common prefix with a prompt kept before."""
    backend = LocalBackend(peaky_lm_dir, batch_size=1)
    plain = LocalBackend(peaky_lm_dir, batch_size=1, share_prefix=False)
    first, second = (ChatPrompt(SYSTEM, t[0]) for t in _conversations(2, 1, seed=7))
    assert backend.generate([first], max_new_tokens=8) == plain.generate([first], max_new_tokens=8)
    assert backend.prefix_tokens == 0
    again = backend.generate([second], max_new_tokens=8)
    assert backend.prefix_tokens == common_prefix(_ids(backend, first), _ids(backend, second)) > 0
    assert again == plain.generate([second], max_new_tokens=8)
    assert again[0].text == _reference(backend, second, 8)
    assert plain.prefix_tokens == 0 and plain.cached_bytes() == 0 < backend.cached_bytes()
    backend.release_cache()
    assert backend.cached_bytes() == 0


def test_dropping_finished_rows_changes_no_answer(peaky_lm_dir: Path) -> None:
    """Answers of very different lengths in one decode batch: with and without compaction, the same tokens and
    the same stored states (prompt + every answer token fed back)."""
    backend = LocalBackend(peaky_lm_dir)
    prompts = [ChatPrompt(SYSTEM, t[0]) for t in _conversations(9, 1, seed=11)]
    rows = [Row(_ids(backend, p)) for p in prompts]
    stops = frozenset({int(backend.tokenizer.eos_token_id)})
    results = {}
    for compact in (True, False):
        decoder = GreedyDecoder(
            backend.model, pad_id=int(backend.tokenizer.pad_token_id), stops=stops, prefill_rows=3, compact=compact
        )
        logits, states = decoder.prefill(rows)
        results[compact] = decoder.decode(logits, states, [True] * len(rows), max_new_tokens=30)
    lengths = {len(d.tokens) for d in results[True]}
    assert len(lengths) > 1 and min(lengths) < 30  # some rows stop early, so compaction really ran
    for a, b, row in zip(results[True], results[False], rows, strict=True):
        assert a.tokens == b.tokens
        assert a.state is not None and b.state is not None
        assert a.state.ids == b.state.ids == (*row.ids, *a.tokens[:-1])
        for (ka, va), (kb, vb) in zip(a.state.layers, b.state.layers, strict=True):
            torch.testing.assert_close(ka, kb)
            torch.testing.assert_close(va, vb)


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
