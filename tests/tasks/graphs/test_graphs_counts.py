"""Co-mention and transition counts on fixture dialogues, checked by hand; 200,000 items without a dense matrix."""

from __future__ import annotations

import subprocess
import sys

import polars as pl
import pytest

from training.turn_graphs import CoMentionConfig, co_mention_edges, transition_edges

# d1: turn 0 mentions a, b; turn 1 none; turn 2 c; turn 3 a, d.   d2: turn 0 a; turn 1 c; turn 2 b, c.
TURNS = pl.DataFrame(
    {
        "dialogue_id": ["d1"] * 4 + ["d2"] * 3,
        "turn_idx": [0, 1, 2, 3, 0, 1, 2],
        "mentioned_item_ids": [["a", "b"], [], ["c"], ["a", "d"], ["a"], ["c"], ["b", "c"]],
    }
)


def _as_dict(edges: pl.DataFrame) -> dict[tuple[str, str], float]:
    return {(r["src"], r["dst"]): r["weight"] for r in edges.iter_rows(named=True)}


def test_co_mention_counts_dialogues_both_directions() -> None:
    got = _as_dict(co_mention_edges(TURNS))
    # d1 pairs: ab ac ad bc bd cd; d2 pairs: ac ab bc  -> ab:2 ac:2 bc:2 ad:1 bd:1 cd:1
    expected = {("a", "b"): 2, ("a", "c"): 2, ("b", "c"): 2, ("a", "d"): 1, ("b", "d"): 1, ("c", "d"): 1}
    assert got == {**{k: v for k, v in expected.items()}, **{(b, a): v for (a, b), v in expected.items()}}


def test_co_mention_window_min_count_and_pmi() -> None:
    windowed = _as_dict(co_mention_edges(TURNS, CoMentionConfig(window=1)))
    # at most one turn apart: d1 ab (0-0), ca cd ad (2-3, 3-3); d2 ac (0-1), cb bc (1-2, 2-2); not d1 bc (0-2)
    assert set(windowed) == {
        (x, y) for a, b in [("a", "b"), ("a", "d"), ("a", "c"), ("b", "c"), ("c", "d")] for x, y in [(a, b), (b, a)]
    }
    assert set(_as_dict(co_mention_edges(TURNS, CoMentionConfig(min_count=2)))) == {
        (x, y) for a, b in [("a", "b"), ("a", "c"), ("b", "c")] for x, y in [(a, b), (b, a)]
    }
    pmi = _as_dict(co_mention_edges(TURNS, CoMentionConfig(weighting="pmi")))
    # a, b, c are in both dialogues: observed 2 * 2 dialogues / (2 * 2) = 1 -> log 1 = 0; a-d: 1*2/(2*1) -> 0
    assert pmi[("a", "b")] == pytest.approx(0.0) and pmi[("a", "d")] == pytest.approx(0.0)


def test_transitions_by_hand() -> None:
    got = _as_dict(transition_edges(TURNS))
    # d1 steps: {a,b} -> {c} -> {a,d};  d2: {a} -> {c} -> {b,c}
    expected = {("a", "c"): 2, ("b", "c"): 1, ("c", "a"): 1, ("c", "d"): 1, ("c", "b"): 1}
    assert got == expected
    two = _as_dict(transition_edges(TURNS, horizon=2))
    assert two[("a", "d")] == 1 and two[("b", "a")] == 1 and two[("a", "b")] == 1


_BIG = """
import resource, polars as pl
from training.turn_graphs import co_mention_edges
n = 200_000
ids = [f"item{i}" for i in range(n)]
turns = pl.DataFrame({"dialogue_id": [f"d{i // 4}" for i in range(n)], "turn_idx": [i % 4 for i in range(n)],
                      "mentioned_item_ids": [[ids[i], ids[(i * 7919) % n]] for i in range(n)]})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
edges = co_mention_edges(turns)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(edges.height, len(set(edges["src"])), (after - before) // 1024)
"""


def test_200k_distinct_items_without_a_dense_matrix() -> None:
    out = subprocess.run([sys.executable, "-c", _BIG], capture_output=True, text=True, check=True, timeout=300)
    edges, sources, extra_mib = (int(v) for v in out.stdout.split())
    assert sources == 200_000 and edges > 200_000
    assert extra_mib < 1024  # a dense 200k x 200k float32 matrix would need 149 GiB
