"""Turn-graph deltas: which dialogues are new, when counts add up, and adding them."""

from __future__ import annotations

import polars as pl

from training.turn_graphs import (
    CoMentionConfig,
    add_counts,
    additive,
    co_mention_edges,
    new_dialogues,
    transition_edges,
)

BASE = pl.DataFrame(
    {"dialogue_id": ["d1", "d1", "d2"], "turn_idx": [0, 1, 0], "mentioned_item_ids": [["a"], ["b"], ["a", "c"]]}
)


def test_new_dialogues_only_when_nothing_else_changed() -> None:
    grown = pl.concat([BASE, pl.DataFrame({"dialogue_id": ["d3"], "turn_idx": [0], "mentioned_item_ids": [["b"]]})])
    assert new_dialogues(grown.lazy(), BASE.lazy()).to_list() == ["d3"]  # type: ignore[union-attr]
    assert new_dialogues(BASE.lazy(), BASE.lazy()).to_list() == []  # type: ignore[union-attr]
    extra_turn = pl.concat([BASE, pl.DataFrame({"dialogue_id": ["d1"], "turn_idx": [2], "mentioned_item_ids": [[]]})])
    assert new_dialogues(extra_turn.lazy(), BASE.lazy()) is None  # an old dialogue grew
    assert new_dialogues(BASE.head(2).lazy(), BASE.lazy()) is None  # a dialogue was removed


def test_counts_add_up_for_raw_counts_only() -> None:
    assert additive(transition_edges, {"horizon": 2, "min_count": 1})
    assert not additive(transition_edges, {"horizon": 1, "min_count": 2})
    assert additive(co_mention_edges, {"config": CoMentionConfig()})
    assert not additive(co_mention_edges, {"config": CoMentionConfig(weighting="pmi")})
    assert not additive(co_mention_edges, {"config": CoMentionConfig(min_count=2)})


def test_add_counts_equals_a_recount() -> None:
    more = pl.DataFrame({"dialogue_id": ["d3", "d3"], "turn_idx": [0, 1], "mentioned_item_ids": [["a"], ["c", "b"]]})
    both = pl.concat([BASE, more])
    summed = add_counts(co_mention_edges(BASE), co_mention_edges(more)).sort("src", "dst")
    recount = co_mention_edges(both).join(summed.select("src", "dst"), on=["src", "dst"], how="semi")
    assert summed.rows() == recount.sort("src", "dst").rows()
