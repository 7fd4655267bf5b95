"""The modality and graph registries: built-in specs, accessors, temporary registration and its checks."""

from __future__ import annotations

import polars as pl
import pytest

from training import modalities as registry
from training.modalities import (
    ITEM_SUMMARIES,
    POSTER,
    Encoder,
    GraphSpec,
    ModalitySpec,
    SourceKind,
    item_columns,
    knn_graph_spec,
    register,
    register_graph,
    register_modality,
)
from training.turn_graphs import co_mention_edges, transition_edges

TITLE = ModalitySpec("title_vec", item_columns("title"), Encoder.SENTENCE, knn_graph="title_vec_knn")


def _self_loops(turns: pl.DataFrame) -> pl.DataFrame:
    items = turns.select(pl.col("mentioned_item_ids").explode().drop_nulls().unique().alias("src"))
    return items.select("src", pl.col("src").alias("dst"), pl.lit(1.0, pl.Float32).alias("weight"))


SELF_LOOPS = GraphSpec("self_loops", _self_loops, derived_from_turns=True)


def test_builtin_modalities_in_declaration_order() -> None:
    assert registry.modality_names() == ("image", "clip_text", "text", "summary")
    assert [m.name for m in registry.modalities()] == list(registry.modality_names())
    image, clip_text, text, summary = registry.modalities()
    assert (image.source, image.encoder) == (POSTER, Encoder.CLIP_IMAGE)
    assert clip_text.source == text.source == item_columns("text", "plot_text", "title")
    assert (clip_text.encoder, text.encoder) == (Encoder.CLIP_TEXT, Encoder.SENTENCE)
    assert (summary.source, summary.encoder, summary.knn_graph) == (ITEM_SUMMARIES, Encoder.SENTENCE, None)
    assert [m.encoder.uses_clip for m in registry.modalities()] == [True, True, False, False]


def test_builtin_graphs_and_their_kinds() -> None:
    assert registry.graph_names() == ("image_knn", "clip_text_knn", "text_knn", "co_mention", "transition")
    assert registry.knn_graphs() == {"image_knn": "image", "clip_text_knn": "clip_text", "text_knn": "text"}
    assert registry.turn_graphs() == ("co_mention", "transition")
    assert registry.cooccurrence_graphs() == ("co_mention",)
    assert registry.text_baseline_modalities() == ("text", "summary", "clip_text")
    assert registry.graph("transition").builder is transition_edges
    assert [g.input_table for g in registry.graphs()] == ["item_embeddings"] * 3 + ["turns"] * 2
    assert all(g.is_knn for g in registry.graphs()[:3]) and not registry.graph("co_mention").is_knn


def test_the_co_mention_builder_takes_its_config_under_its_option_name() -> None:
    turns = pl.DataFrame({"dialogue_id": ["d", "d"], "turn_idx": [0, 1], "mentioned_item_ids": [["a"], ["b"]]})
    spec = registry.graph("co_mention")
    assert spec.options == (("co_mention", "co_mention"),)
    assert spec.builder is not None
    assert spec.builder(turns).equals(co_mention_edges(turns))


def test_unknown_names_raise_naming_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: \\['image'"):
        registry.modality("smell")
    with pytest.raises(KeyError, match="unknown graph 'nope'"):
        registry.graph("nope")


def test_register_adds_specs_until_the_block_ends() -> None:
    with register(TITLE, knn_graph_spec(TITLE)):
        assert registry.modality("title_vec") is TITLE
        assert registry.modality_names()[-1] == "title_vec"
        assert registry.knn_graphs()["title_vec_knn"] == "title_vec"
        assert registry.graph("title_vec_knn").input_table == "item_embeddings"
    assert "title_vec" not in registry.modality_names() and "title_vec_knn" not in registry.graph_names()


def test_register_graph_and_register_modality_return_removable_registrations() -> None:
    graph = register_graph(SELF_LOOPS)
    plain = register_modality(ModalitySpec("plain", item_columns("title"), Encoder.CLIP_TEXT))
    assert registry.turn_graphs()[-1] == "self_loops" and "plain" in registry.modality_names()
    graph.remove()
    plain.remove()
    plain.remove()  # idempotent
    assert "self_loops" not in registry.graph_names() and "plain" not in registry.modality_names()


def test_a_taken_name_is_refused_and_nothing_is_registered() -> None:
    before = (registry.modality_names(), registry.graph_names())
    with pytest.raises(ValueError, match="'text' is already registered"):
        register(SELF_LOOPS, ModalitySpec("text", item_columns("title"), Encoder.SENTENCE))
    assert (registry.modality_names(), registry.graph_names()) == before
    assert registry.modality("text").source == item_columns("text", "plot_text", "title")  # built-in untouched


def test_a_knn_graph_and_its_modality_go_together() -> None:
    before = (registry.modality_names(), registry.graph_names())
    with pytest.raises(ValueError, match="no registered kNN graph"):
        register_modality(TITLE)
    with pytest.raises(ValueError, match="exactly one modality"):
        register_graph(knn_graph_spec(TITLE))
    with pytest.raises(ValueError, match="no registered kNN graph"):
        register(ModalitySpec("loops", item_columns("title"), Encoder.SENTENCE, knn_graph="self_loops"), SELF_LOOPS)
    assert (registry.modality_names(), registry.graph_names()) == before
    with pytest.raises(ValueError, match="declares no kNN graph"):
        knn_graph_spec(registry.modality("summary"))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ModalitySpec("x", POSTER, Encoder.SENTENCE), "only posters"),
        (lambda: ModalitySpec("x", item_columns("title"), Encoder.CLIP_IMAGE), "only posters"),
        (lambda: registry.Source(SourceKind.ITEM_COLUMNS), "names its columns"),
        (lambda: registry.Source(SourceKind.POSTER, ("poster_sha256",)), "names its columns"),
        (lambda: GraphSpec("x", _self_loops), "only a builder"),
        (lambda: GraphSpec("x", derived_from_turns=True), "only a builder"),
        (lambda: GraphSpec("x", options=(("k", "k"),)), "options are a builder's"),
    ],
)
def test_inconsistent_specs_are_refused(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]
