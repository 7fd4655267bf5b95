"""Settings of the graph stage: which graphs, how many neighbours, which kNN backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tasks.settings import StageSettings
from training.modalities import graph_names

if TYPE_CHECKING:
    from tasks.graphs.stage import GraphsConfig


BACKENDS = ("auto", "torch", "faiss", "faiss-approx")


@dataclass(frozen=True)
class GraphsSettings(StageSettings):
    """What a user sets for one graph run; fields left None keep ``GraphsConfig``'s defaults.

    Attributes:
        graphs: graph names to build (default: every registered graph).
        k: neighbours per item in kNN graphs.
        backend: kNN backend, ``auto`` (default: exact up to ``exact_max_items`` items, HNSW above) |
            ``torch`` | ``faiss`` | ``faiss-approx``.
        exact_max_items: the ``auto`` backend's threshold (default: the measured crossover).
        incremental: update graphs where their inputs changed instead of rebuilding them (default true).
        force: rebuild graphs even when their inputs and parameters are unchanged.
    """

    graphs: tuple[str, ...] | None = None
    k: int | None = None
    backend: str | None = None
    exact_max_items: int | None = None
    incremental: bool | None = None
    force: bool = False

    def __post_init__(self) -> None:
        known = graph_names()
        unknown = sorted(set(self.graphs or ()) - set(known))
        if unknown:
            raise ValueError(f"unknown graph: {', '.join(unknown)} ({' | '.join(known)})")
        if self.backend not in (None, *BACKENDS):
            raise ValueError(f"unknown backend {self.backend!r} ({' | '.join(BACKENDS)})")
        if self.k is not None and self.k < 1:
            raise ValueError("k must be at least 1")
        if self.exact_max_items is not None and self.exact_max_items < 0:
            raise ValueError("exact_max_items must not be negative")

    def graphs_config(self) -> GraphsConfig:
        """The stage's option bag: the given fields over ``GraphsConfig``'s defaults."""
        from tasks.graphs.stage import GraphsConfig

        given = {
            "graphs": self.graphs,
            "k": self.k,
            "backend": self.backend,
            "exact_max_items": self.exact_max_items,
            "incremental": self.incremental,
        }
        return GraphsConfig(**{key: v for key, v in given.items() if v is not None})  # type: ignore[arg-type]
