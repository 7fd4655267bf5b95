"""Everything one training run reads from the lake, pinned to table versions: samples, split, graphs, features."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl
import torch

import features
from features import Lake
from training import modalities as registry
from training.graph_data import ItemGraph, available_graphs, graph_from_edges, load_graph
from training.samples import Sample, Split, build_samples, split_dialogues

log = logging.getLogger(__name__)
INPUT_TABLES = ("turns", "items", "item_graph_edges", "item_embeddings", "preference_summaries")


@dataclass(frozen=True)
class DataOptions:
    """What to read. ``None`` for graphs/modalities means every one present in the lake."""

    seed: int = 0
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    graphs: tuple[str, ...] | None = None
    modalities: tuple[str, ...] | None = None
    use_summaries: bool = True


@dataclass
class TrainingData:
    """The inputs of one run."""

    item_ids: tuple[str, ...]
    titles: dict[str, str]
    split: Split
    samples: dict[str, list[Sample]]  # train / valid / test
    graphs: dict[str, ItemGraph]
    features: dict[str, torch.Tensor]  # modality -> (I, d), zeros where an item has none
    input_versions: dict[str, int]
    skipped: dict[str, str] = field(default_factory=dict)  # view or input -> why it is absent

    @property
    def index(self) -> dict[str, int]:
        return {item: i for i, item in enumerate(self.item_ids)}


def _skip(skipped: dict[str, str], name: str, reason: str) -> None:
    skipped[name] = reason
    log.info("skipping %s: %s", name, reason)


def _items(turns: pl.DataFrame, lake: Lake | str | None, version: int | None) -> tuple[tuple[str, ...], dict]:
    mentioned = set(turns["mentioned_item_ids"].explode().drop_nulls().to_list())
    titles: dict[str, str] = {}
    if version is not None:
        items = features.read("items", version=version, columns=["item_id", "title"], lake=lake).collect()
        titles = {i: t for i, t in items.iter_rows() if t}
        mentioned |= set(items["item_id"].to_list())
    return tuple(sorted(mentioned)), titles


def _turn_graph(name: str, train_turns: pl.DataFrame, ids: tuple[str, ...]) -> ItemGraph:
    """A dialogue-derived graph counted by its own builder from the training dialogues alone (the lake's counts
    every dialogue, valid and test included, which would leak their co-mentions into the model and the kNN
    baseline)."""
    builder = registry.graph(name).builder
    assert builder is not None  # every dialogue-derived graph has one
    return graph_from_edges(name, builder(train_turns), item_ids=ids)


def _graphs(
    opts: DataOptions,
    ids: tuple[str, ...],
    lake: Lake | str | None,
    version: int | None,
    skipped: dict[str, str],
    train_turns: pl.DataFrame,
) -> dict[str, ItemGraph]:
    present = available_graphs(lake, version=version) if version is not None else []
    wanted = opts.graphs if opts.graphs is not None else tuple(present)
    out: dict[str, ItemGraph] = {}
    from_turns = registry.turn_graphs()  # rebuilt from the training split only
    for name in wanted:
        if name not in present:
            _skip(skipped, f"graph:{name}", "no edges in item_graph_edges")
            continue
        if name in from_turns:
            graph = _turn_graph(name, train_turns, ids)
        else:
            graph = load_graph(name, lake=lake, version=version, item_ids=ids)
        if graph.num_edges == 0:
            _skip(skipped, f"graph:{name}", "no edges between the items in this run")
            continue
        out[name] = graph
    return out


def _features(
    opts: DataOptions, ids: tuple[str, ...], lake: Lake | str | None, version: int | None, skipped: dict[str, str]
) -> dict[str, torch.Tensor]:
    frame = (
        features.read("item_embeddings", version=version, lake=lake).collect()
        if version is not None
        else pl.DataFrame(schema={"modality": pl.Utf8})
    )
    present = sorted(set(frame["modality"].to_list()))
    index = {item: i for i, item in enumerate(ids)}
    out: dict[str, torch.Tensor] = {}
    for modality in opts.modalities if opts.modalities is not None else tuple(present):
        rows = frame.filter(pl.col("modality") == modality).sort("model_id", "item_id")
        if rows.is_empty():
            _skip(skipped, f"feat:{modality}", "no vectors in item_embeddings")
            continue
        model_id = rows["model_id"][0]  # one model per modality: the first by name, deterministically
        rows = rows.filter(pl.col("model_id") == model_id)
        vectors = torch.zeros(len(ids), int(rows["dim"][0]))
        for item, vector in rows.select("item_id", "vector").iter_rows():
            if item in index:
                vectors[index[item]] = torch.tensor(vector, dtype=torch.float32)
        out[modality] = vectors
    return out


def one_summary_per_point(summaries: pl.DataFrame) -> pl.DataFrame:
    """The ``preference_summaries`` rows of one model (the first ``model_id``), one per (dialogue_id, upto_turn):
    the latest written where prompts changed. ``prompt_hash`` differs from row to row (it covers each row's own
    history), so it does not name a prompt version."""
    first = summaries.select(pl.col("model_id").min()).item()
    mine = summaries.filter(pl.col("model_id") == first).sort("generated_at")
    return mine.unique(["dialogue_id", "upto_turn"], keep="last", maintain_order=True)


def load_training_data(
    opts: DataOptions,
    *,
    lake: Lake | str | None = None,
    versions: Mapping[str, int] | None = None,
) -> TrainingData:
    """Read the run's inputs at ``versions`` (default: the latest version of each table that exists).

    Absent tables, graphs and modalities are skipped with a reason in ``skipped`` (and the log).
    """
    latest = features.table_versions(list(INPUT_TABLES), lake=lake)
    pinned = {t: v for t, v in (dict(versions) if versions is not None else latest).items() if t in INPUT_TABLES}
    skipped: dict[str, str] = {}
    for table in INPUT_TABLES:
        if table not in pinned:
            _skip(skipped, table, "table not in the lake")
    turns = features.read("turns", version=pinned["turns"], lake=lake).collect()
    ids, titles = _items(turns, lake, pinned.get("items"))
    summaries = None
    if opts.use_summaries and "preference_summaries" in pinned:
        summaries = features.read("preference_summaries", version=pinned["preference_summaries"], lake=lake).collect()
        summaries = one_summary_per_point(summaries)
    elif not opts.use_summaries:
        _skip(skipped, "summaries", "disabled by config")
    samples = build_samples(turns, summaries=summaries, titles=titles)
    split = split_dialogues(turns["dialogue_id"].to_list(), seed=opts.seed, fractions=opts.fractions)
    where = {d: name for name in ("train", "valid", "test") for d in split.of(name)}
    by_split: dict[str, list[Sample]] = {"train": [], "valid": [], "test": []}
    for sample in samples:
        by_split[where[sample.dialogue_id]].append(sample)
    train_turns = turns.filter(pl.col("dialogue_id").is_in(list(split.of("train"))))
    graphs = _graphs(opts, ids, lake, pinned.get("item_graph_edges"), skipped, train_turns)
    feats = _features(opts, ids, lake, pinned.get("item_embeddings"), skipped)
    return TrainingData(ids, titles, split, by_split, graphs, feats, pinned, skipped)


def target_counts(data: TrainingData) -> torch.Tensor:
    """(I,) how often each item is a target in the training split (popularity; the item bias's initial value)."""
    index, counts = data.index, torch.zeros(len(data.item_ids))
    for s in data.samples["train"]:
        if s.target in index:
            counts[index[s.target]] += 1
    return counts


def dialogue_items(samples: Sequence[Sample], index: dict[str, int]) -> dict[str, frozenset[int]]:
    """dialogue_id -> positions of every item its samples mention (contexts and targets): what the dialogue
    put into a co-mention count graph built from these samples' split (items mentioned only after the
    dialogue's last recommender mention are not seen here and stay counted)."""
    out: dict[str, set[int]] = {}
    for s in samples:
        out.setdefault(s.dialogue_id, set()).update(index[i] for i in (*s.context_items, s.target) if i in index)
    return {d: frozenset(items) for d, items in out.items()}
