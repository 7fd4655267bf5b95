"""The modality and graph registries: every item modality and every item graph, declared once, here.

A modality is one kind of item vector: what it is computed from (``source``: the stored poster, ``items``
columns, the item's latest LLM summary), with which encoder kind (``encoder``), and the name of the kNN graph
over its vectors (``knn_graph``). A graph is either such a kNN graph, or one counted from dialogue turns by a
``builder`` (``derived_from_turns``). The embed stage, the graph stage, the report and training read these
specs through the accessors below instead of keeping lists of names; training rebuilds every dialogue-derived
graph from its training split with the graph's own builder, so a new one cannot leak valid or test dialogues.

Example:
    >>> from training.modalities import graph, knn_graphs, modality, turn_graphs
    >>> modality("image").encoder.uses_clip, modality("image").knn_graph
    (True, 'image_knn')
    >>> knn_graphs()["text_knn"], turn_graphs()
    ('text', ('co_mention', 'transition'))

A test (or a plugin) adds specs for a while with ``register``; they are removed again on exit::

    title = ModalitySpec("title", item_columns("title"), Encoder.SENTENCE, knn_graph="title_knn")
    with register(title, knn_graph_spec(title)):
        ...
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any, Generic, TypeVar

import polars as pl

from training.turn_graphs import CoMentionConfig, co_mention_edges, transition_edges


class Encoder(StrEnum):
    """Encoder kinds: the embed stage's CLIP towers (one ``clip_model``) and its sentence encoder (``text_model``)."""

    CLIP_IMAGE = "clip-image"
    CLIP_TEXT = "clip-text"
    SENTENCE = "sentence"

    @property
    def uses_clip(self) -> bool:
        """Whether the vectors come from the CLIP model (image or text tower)."""
        return self is not Encoder.SENTENCE


class SourceKind(StrEnum):
    """Where a modality's input comes from."""

    POSTER = "poster"  # the poster stored in the blob store (``items.poster_sha256``)
    ITEM_COLUMNS = "item_columns"  # the first non-null of some ``items`` columns
    ITEM_SUMMARIES = "item_summaries"  # the item's latest LLM summary (``item_summaries``)


@dataclass(frozen=True)
class Source:
    """What a modality encodes.

    Attributes:
        kind: poster, ``items`` columns or item summaries.
        columns: ``ITEM_COLUMNS`` only: the ``items`` columns, the first non-null one per item (items whose
            value is blank get no vector).
    """

    kind: SourceKind
    columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.kind is SourceKind.ITEM_COLUMNS) != bool(self.columns):
            raise ValueError("an item_columns source names its columns; other sources name none")


POSTER = Source(SourceKind.POSTER)
ITEM_SUMMARIES = Source(SourceKind.ITEM_SUMMARIES)


def item_columns(*columns: str) -> Source:
    """A source reading the first non-null of ``columns`` from the ``items`` table."""
    return Source(SourceKind.ITEM_COLUMNS, tuple(columns))


@dataclass(frozen=True)
class ModalitySpec:
    """One modality of item vectors (one ``item_embeddings.modality`` value).

    Attributes:
        name: the modality's name in ``item_embeddings`` and in every config.
        source: what is encoded.
        encoder: which encoder encodes it (a poster needs the CLIP image tower, texts any text encoder).
        knn_graph: the name of the kNN graph over its vectors (a ``GraphSpec`` without builder), or None.
        text_baseline: rank of its vectors as the text-similarity baseline's input (lowest present first);
            None: not a candidate.
        description: one line for help texts.
    """

    name: str
    source: Source
    encoder: Encoder
    knn_graph: str | None = None
    text_baseline: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if (self.source.kind is SourceKind.POSTER) != (self.encoder is Encoder.CLIP_IMAGE):
            raise ValueError(f"modality {self.name!r}: posters, and only posters, take the CLIP image encoder")


Builder = Callable[..., pl.DataFrame]
"""Turns (a frame with ``dialogue_id, turn_idx, mentioned_item_ids``) and keyword options -> edges
``src, dst, weight``."""


@dataclass(frozen=True)
class GraphSpec:
    """One item graph (one ``item_graph_edges.graph`` partition).

    Attributes:
        name: the graph's name in ``item_graph_edges`` and in every config.
        builder: dialogue-derived graphs: builds the edges from turns; None for a kNN graph (built over the
            vectors of the modality whose ``knn_graph`` names it).
        derived_from_turns: counted from dialogues: training rebuilds it from its training split with
            ``builder`` (with default options), so valid and test dialogues do not leak into it.
        options: ``(builder keyword, graph-stage config attribute)`` pairs: the builder's options, read from
            the graph stage's config and fingerprinted under the keyword.
        cooccurrence: its raw weights are dialogue co-occurrence counts: they feed the model's co-occurrence
            signal (with the leave-own-dialogue-out offset) and the co-mention item-kNN baseline.
        description: one line for help texts.
    """

    name: str
    builder: Builder | None = None
    derived_from_turns: bool = False
    options: tuple[tuple[str, str], ...] = ()
    cooccurrence: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if (self.builder is not None) != self.derived_from_turns:
            raise ValueError(f"graph {self.name!r}: a builder, and only a builder, derives a graph from turns")
        if self.options and self.builder is None:
            raise ValueError(f"graph {self.name!r}: options are a builder's")

    @property
    def is_knn(self) -> bool:
        """Built over a modality's vectors (not from dialogues)."""
        return self.builder is None

    @property
    def input_table(self) -> str:
        """The lake table the graph is built from."""
        return "turns" if self.derived_from_turns else "item_embeddings"


def knn_graph_spec(spec: ModalitySpec) -> GraphSpec:
    """The kNN graph over ``spec``'s vectors, named by its ``knn_graph`` (register the two together)."""
    if spec.knn_graph is None:
        raise ValueError(f"modality {spec.name!r} declares no kNN graph")
    return GraphSpec(spec.knn_graph, description=f"kNN over the {spec.name} vectors")


def _co_mention(turns: pl.LazyFrame | pl.DataFrame, *, co_mention: CoMentionConfig | None = None) -> pl.DataFrame:
    """``co_mention_edges`` with its config under the keyword that fingerprints it."""
    return co_mention_edges(turns, co_mention)


_ITEM_TEXT = item_columns("text", "plot_text", "title")  # the catalog text, else the crawled plot, else the title

_BUILTIN_MODALITIES = (
    ModalitySpec(
        "image", POSTER, Encoder.CLIP_IMAGE, knn_graph="image_knn", description="CLIP image tower on the stored poster"
    ),
    ModalitySpec(
        "clip_text",
        _ITEM_TEXT,
        Encoder.CLIP_TEXT,
        knn_graph="clip_text_knn",
        text_baseline=2,
        description="CLIP text tower on the item text, in the images' space",
    ),
    ModalitySpec(
        "text",
        _ITEM_TEXT,
        Encoder.SENTENCE,
        knn_graph="text_knn",
        text_baseline=0,
        description="sentence encoder on the item text",
    ),
    ModalitySpec(
        "summary",
        ITEM_SUMMARIES,
        Encoder.SENTENCE,
        text_baseline=1,
        description="sentence encoder on the item's LLM summary",
    ),
)
_BUILTIN_GRAPHS = (
    *(knn_graph_spec(m) for m in _BUILTIN_MODALITIES if m.knn_graph is not None),
    GraphSpec(
        "co_mention",
        _co_mention,
        derived_from_turns=True,
        options=(("co_mention", "co_mention"),),
        cooccurrence=True,
        description="items mentioned in the same dialogue (dialogue counts)",
    ),
    GraphSpec(
        "transition",
        transition_edges,
        derived_from_turns=True,
        options=(("horizon", "transition_horizon"), ("min_count", "transition_min_count")),
        description="item mentioned next in a dialogue",
    ),
)


S = TypeVar("S", ModalitySpec, GraphSpec)


class _Table(Generic[S]):
    """The registered specs of one kind, by name, in registration order (built-ins first)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.specs: dict[str, S] = {}

    def get(self, name: str) -> S:
        """The spec named ``name``; KeyError (naming the known ones) when there is none."""
        if name not in self.specs:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {list(self.specs)}")
        return self.specs[name]

    def all(self) -> tuple[S, ...]:
        """Every registered spec, built-ins first, in registration (graphs: build) order."""
        return tuple(self.specs.values())

    def names(self) -> tuple[str, ...]:
        """The names of every registered spec, in the same order (the CLI's ``--modality``/``--graph`` choices)."""
        return tuple(self.specs)


_MODALITIES = _Table[ModalitySpec]("modality")
_GRAPHS = _Table[GraphSpec]("graph")


def _table(spec: ModalitySpec | GraphSpec) -> dict[str, Any]:
    return _MODALITIES.specs if isinstance(spec, ModalitySpec) else _GRAPHS.specs


def _check() -> None:
    """Every modality's kNN graph is a registered kNN graph, and every kNN graph has exactly one modality."""
    owners: dict[str, list[str]] = {}
    for spec in _MODALITIES.specs.values():
        if spec.knn_graph is not None:
            if spec.knn_graph not in _GRAPHS.specs or not _GRAPHS.specs[spec.knn_graph].is_knn:
                raise ValueError(f"modality {spec.name!r}: {spec.knn_graph!r} is no registered kNN graph")
            owners.setdefault(spec.knn_graph, []).append(spec.name)
    for name, graph_spec in _GRAPHS.specs.items():
        if graph_spec.is_knn and len(owners.get(name, ())) != 1:
            raise ValueError(f"kNN graph {name!r} needs exactly one modality naming it, has {owners.get(name, [])}")


class Registration(AbstractContextManager["Registration"]):
    """Specs added by ``register``; ``remove()`` (or leaving the ``with`` block) takes them out again."""

    def __init__(self, specs: tuple[ModalitySpec | GraphSpec, ...]) -> None:
        self.specs = specs

    def remove(self) -> None:
        """Unregister the specs (only these: built-ins and other registrations stay)."""
        for spec in self.specs:
            table = _table(spec)
            if table.get(spec.name) is spec:
                del table[spec.name]

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.remove()


def register(*specs: ModalitySpec | GraphSpec) -> Registration:
    """Add modality and graph specs (a kNN graph together with its modality); usable as a context manager.

    Raises:
        ValueError: a name already taken, or a kNN graph and its modality that do not name each other
            (nothing is registered then).
    """
    added: list[ModalitySpec | GraphSpec] = []
    try:
        for spec in specs:
            table = _table(spec)
            if spec.name in table:
                raise ValueError(f"{spec.name!r} is already registered")
            table[spec.name] = spec
            added.append(spec)
        _check()
    except ValueError:
        Registration(tuple(added)).remove()
        raise
    return Registration(tuple(added))


def register_modality(spec: ModalitySpec) -> Registration:
    """``register`` one modality (without kNN graph, or one whose kNN graph is registered)."""
    return register(spec)


def register_graph(spec: GraphSpec) -> Registration:
    """``register`` one dialogue-derived graph (a kNN graph goes with its modality:
    ``register(spec, knn_graph_spec(spec))``)."""
    return register(spec)


# The accessors: ``modality(name)`` / ``graph(name)`` (one spec; KeyError naming the known ones),
# ``modalities()`` / ``graphs()`` (every spec, in registration order), ``modality_names()`` / ``graph_names()``.
modality, modalities, modality_names = _MODALITIES.get, _MODALITIES.all, _MODALITIES.names
graph, graphs, graph_names = _GRAPHS.get, _GRAPHS.all, _GRAPHS.names


def knn_graphs() -> dict[str, str]:
    """kNN graph name -> the modality whose vectors it is built over, in build order."""
    owner = {m.knn_graph: m.name for m in modalities() if m.knn_graph is not None}
    return {name: owner[name] for name, spec in _GRAPHS.specs.items() if spec.is_knn}


def turn_graphs() -> tuple[str, ...]:
    """Names of the dialogue-derived graphs (training rebuilds them from its training split)."""
    return tuple(name for name, spec in _GRAPHS.specs.items() if spec.derived_from_turns)


def cooccurrence_graphs() -> tuple[str, ...]:
    """Names of the graphs whose raw weights are dialogue co-occurrence counts."""
    return tuple(name for name, spec in _GRAPHS.specs.items() if spec.cooccurrence)


def text_baseline_modalities() -> tuple[str, ...]:
    """Modalities the text-similarity baseline may use, in order of preference."""
    ranked = [(m.text_baseline, m.name) for m in modalities() if m.text_baseline is not None]
    return tuple(name for _, name in sorted(ranked))


register(*_BUILTIN_GRAPHS, *_BUILTIN_MODALITIES)
