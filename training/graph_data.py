"""Item graphs from the lake as tensors: the loader that the graphs stage's table (``item_graph_edges``) feeds.

Example:
    >>> from training.graph_data import available_graphs, load_graph
    >>> g = load_graph("co_mention", lake="./lake")          # doctest: +SKIP
    >>> g.edge_index.shape, g.to_pyg()                       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import polars as pl
import torch

import features
from features import Lake


@dataclass(frozen=True)
class ItemGraph:
    """One item graph: ``edge_index`` (2, E) long over positions in ``item_ids``, ``edge_weight`` (E,) float."""

    name: str
    item_ids: tuple[str, ...]
    edge_index: torch.Tensor
    edge_weight: torch.Tensor

    @cached_property
    def index(self) -> dict[str, int]:
        """item_id -> node position."""
        return {item: i for i, item in enumerate(self.item_ids)}

    @property
    def num_nodes(self) -> int:
        return len(self.item_ids)

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def to_pyg(self) -> object:
        """A ``torch_geometric.data.Data`` with ``edge_index``, ``edge_weight`` and ``num_nodes``."""
        from torch_geometric.data import Data

        return Data(edge_index=self.edge_index, edge_weight=self.edge_weight, num_nodes=self.num_nodes)


def available_graphs(lake: Lake | str | None = None, *, version: int | None = None) -> list[str]:
    """Names of the graphs that have at least one edge in ``item_graph_edges`` (empty when the table is absent)."""
    frame = features.read("item_graph_edges", version=version, columns=["graph"], missing="empty", lake=lake)
    frame = frame.unique().collect()
    return sorted(frame["graph"].to_list())


def load_graph(
    graph: str,
    *,
    lake: Lake | str | None = None,
    version: int | None = None,
    item_ids: Sequence[str] | None = None,
) -> ItemGraph:
    """Load one graph's edges as tensors.

    Args:
        graph: graph name (one of ``training.modalities.graph_names()``).
        lake: lake root.
        version: Delta version of ``item_graph_edges`` (default latest).
        item_ids: node order to use; edges touching other items are dropped. Default: the sorted items
            that appear in the graph.

    Returns:
        An ``ItemGraph`` (edges sorted by (src, dst), so the result is deterministic).
    """
    edges = (
        features.read("item_graph_edges", version=version, columns=["graph", "src", "dst", "weight"], lake=lake)
        .filter(pl.col("graph") == graph)
        .collect()
    )
    return graph_from_edges(graph, edges, item_ids=item_ids)


def graph_from_edges(graph: str, edges: pl.DataFrame, *, item_ids: Sequence[str] | None = None) -> ItemGraph:
    """An ``ItemGraph`` from edges ``src, dst, weight`` (edges touching items outside ``item_ids`` dropped)."""
    ids = tuple(item_ids) if item_ids is not None else tuple(sorted(set(edges["src"]) | set(edges["dst"])))
    lookup = pl.DataFrame({"item": list(ids), "pos": list(range(len(ids)))}, schema={"item": pl.Utf8, "pos": pl.Int64})
    joined = (
        edges.join(lookup.rename({"item": "src", "pos": "s"}), on="src")
        .join(lookup.rename({"item": "dst", "pos": "d"}), on="dst")
        .sort("s", "d")
    )
    edge_index = torch.tensor([joined["s"].to_list(), joined["d"].to_list()], dtype=torch.long).reshape(2, -1)
    edge_weight = torch.tensor(joined["weight"].to_list(), dtype=torch.float32)
    return ItemGraph(graph, ids, edge_index, edge_weight)
