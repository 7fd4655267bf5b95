"""The graph loader over ``item_graph_edges``."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import torch

import features
from features import CommitInfo
from training.graph_data import available_graphs, load_graph


@pytest.fixture
def graph_lake(tmp_path: Path) -> str:
    root = str(tmp_path / "lake")
    edges = pl.DataFrame(
        {
            "graph": ["co_mention", "co_mention", "transition"],
            "src": ["b", "a", "a"],
            "dst": ["c", "b", "c"],
            "weight": [2.0, 1.0, 0.5],
            "rank": [1, 1, 1],
        },
        schema_overrides={"weight": pl.Float32, "rank": pl.Int32},
    )
    features.upsert("item_graph_edges", edges, commit=CommitInfo(stage="graphs"), lake=root)
    return root


def test_available_graphs(graph_lake: str, tmp_path: Path) -> None:
    assert available_graphs(graph_lake) == ["co_mention", "transition"]
    assert available_graphs(str(tmp_path / "empty")) == []


def test_load_graph_tensors_and_pyg(graph_lake: str) -> None:
    g = load_graph("co_mention", lake=graph_lake)
    assert g.item_ids == ("a", "b", "c") and g.index == {"a": 0, "b": 1, "c": 2}
    assert g.edge_index.tolist() == [[0, 1], [1, 2]] and g.edge_index.dtype == torch.long
    assert g.edge_weight.tolist() == [1.0, 2.0]
    data = g.to_pyg()
    assert data.num_nodes == 3 and torch.equal(data.edge_index, g.edge_index)


def test_item_order_given_drops_other_edges(graph_lake: str) -> None:
    g = load_graph("co_mention", lake=graph_lake, item_ids=["c", "b"])
    assert g.edge_index.tolist() == [[1], [0]] and g.num_edges == 1
