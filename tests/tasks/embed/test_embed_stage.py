"""The embedding stage on a real lake: incremental, model change, resume after a crash, corrupt posters."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image

import features
from features import CommitInfo
from features.blobs import poster_store
from tasks.embed import stage
from tasks.embed.config import EmbedConfig
from tasks.embed.stage import embed
from training.modalities import Encoder

TINY = EmbedConfig(
    modalities=("image", "clip_text"), clip_model="random:mmcrs-tiny@0", batch_size=1, shard_size=3, num_workers=0
)


def _png(i: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 60), (30 * i % 256, 90, 200 - 20 * i % 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def _lake(tmp_path: Path, n: int = 7, *, corrupt: set[int] = frozenset()) -> Path:  # type: ignore[assignment]
    """``n`` items with posters in the blob store (``corrupt`` ones hold bytes that are no image) and texts."""
    lake = tmp_path / "lake"
    store = poster_store(features.resolve_lake(lake))
    shas = [store.put(b"\x89PNG\r\n\x1a\n garbage" + bytes([i]) if i in corrupt else _png(i)) for i in range(n)]
    items = pl.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(n)],
            "source": "test",
            "title": [f"Movie {i}" for i in range(n)],
            "text": [f"Movie {i}: a story about number {i}." for i in range(n)],
            "poster_sha256": shas,
            "content_hash": [str(i) for i in range(n)],
            "ingested_at": datetime.now(UTC),
        }
    )
    features.upsert("items", items, commit=CommitInfo(stage="test"), lake=lake)
    return lake


def _vectors(lake: Path) -> pl.DataFrame:
    return features.read("item_embeddings", lake=lake).collect()


def test_embeds_every_modality_with_unit_vectors_then_nothing(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    first = embed(lake=lake, config=TINY)
    assert {m: s.embedded for m, s in first.modalities.items()} == {"image": 7, "clip_text": 7}
    assert first.modalities["image"].shards == 3 and first.modalities["image"].random_weights
    assert any("RANDOM WEIGHTS" in w for w in first.warnings)
    rows = _vectors(lake)
    assert rows.height == 14 and set(rows["dim"]) == {64}
    norms = np.linalg.norm(np.stack(rows["vector"].to_list()), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5)

    version = features.table_version("item_embeddings", lake=lake)
    again = embed(lake=lake, config=TINY)
    assert {m: (s.embedded, s.up_to_date) for m, s in again.modalities.items()} == {
        "image": (0, 7),
        "clip_text": (0, 7),
    }
    assert features.table_version("item_embeddings", lake=lake) == version


def test_same_seed_gives_the_same_vectors_in_another_lake(tmp_path: Path) -> None:
    a, b = _lake(tmp_path / "a", 3), _lake(tmp_path / "b", 3)
    embed(lake=a, config=TINY)
    embed(lake=b, config=TINY)
    key = ["item_id", "modality"]
    assert _vectors(a).sort(key)["vector"].to_list() == _vectors(b).sort(key)["vector"].to_list()


def test_a_new_model_re_embeds_everything_for_itself_only(tmp_path: Path) -> None:
    lake = _lake(tmp_path, 4)
    embed(lake=lake, config=TINY)
    before = _vectors(lake)
    other = EmbedConfig(**{**TINY.__dict__, "clip_model": "random:mmcrs-tiny@1"})
    summary = embed(lake=lake, config=other)
    assert summary.modalities["image"].embedded == 4 and summary.modalities["clip_text"].embedded == 4
    after = _vectors(lake)
    assert after["model_id"].n_unique() == 2 and after.height == 16
    old = after.filter(pl.col("model_id") == before["model_id"][0]).sort(["item_id", "modality"])
    assert old["vector"].to_list() == before.sort(["item_id", "modality"])["vector"].to_list()  # untouched


def test_a_changed_text_re_embeds_that_item_only(tmp_path: Path) -> None:
    lake = _lake(tmp_path, 4)
    embed(lake=lake, config=TINY)
    features.update_columns(
        "items",
        pl.DataFrame({"item_id": ["i2"], "text": ["A brand new plot."]}),
        commit=CommitInfo(stage="test"),
        lake=lake,
    )
    summary = embed(lake=lake, config=TINY)
    assert (summary.modalities["clip_text"].embedded, summary.modalities["image"].embedded) == (1, 0)


def test_resume_after_a_crash_between_shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = _lake(tmp_path, 7)
    config = EmbedConfig(**{**TINY.__dict__, "modalities": ("image",)})
    real_write, calls = stage._Embedder._write, []

    def crash_on_the_second_shard(self: stage._Embedder, *args: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while the second shard is being written
        real_write(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(stage._Embedder, "_write", crash_on_the_second_shard)
    with pytest.raises(KeyboardInterrupt):
        embed(lake=lake, config=config)
    assert _vectors(lake).height == 3  # the first shard was committed

    monkeypatch.setattr(stage._Embedder, "_write", real_write)
    resumed = embed(lake=lake, config=config)
    assert (resumed.modalities["image"].up_to_date, resumed.modalities["image"].embedded) == (3, 4)
    rows = _vectors(lake)
    assert rows.height == 7 and rows["item_id"].n_unique() == 7  # nothing missing, nothing twice


def test_a_corrupt_poster_is_quarantined_and_the_rest_lands(tmp_path: Path) -> None:
    lake = _lake(tmp_path, 5, corrupt={3})
    config = EmbedConfig(**{**TINY.__dict__, "modalities": ("image",), "num_workers": 1})
    summary = embed(lake=lake, config=config)
    assert (summary.modalities["image"].embedded, summary.modalities["image"].failed) == (4, 1)
    assert sorted(_vectors(lake)["item_id"]) == ["i0", "i1", "i2", "i4"]
    bad = features.read("quarantine", lake=lake).collect().row(0, named=True)
    assert (bad["source"], bad["record_key"], bad["stage"]) == ("embed:image", "i3", "embed")
    assert "decode failed" in bad["reason"]


def test_a_poster_whose_bytes_were_swapped_is_quarantined_not_embedded(tmp_path: Path) -> None:
    lake = _lake(tmp_path, 4)
    store = poster_store(features.resolve_lake(lake))
    sha = features.read("items", lake=lake).filter(pl.col("item_id") == "i2").collect()["poster_sha256"][0]
    Path(store.root, store.key(sha)).write_bytes(_png(9))  # a valid image, but not the one the item points to
    summary = embed(lake=lake, config=EmbedConfig(**{**TINY.__dict__, "modalities": ("image",)}))
    assert (summary.modalities["image"].embedded, summary.modalities["image"].failed) == (3, 1)
    assert sorted(_vectors(lake)["item_id"]) == ["i0", "i1", "i3"]
    bad = features.read("quarantine", lake=lake).collect().row(0, named=True)
    assert (bad["source"], bad["record_key"]) == ("embed:image", "i2")
    assert "fails its checksum" in bad["reason"]


def test_real_minilm_text_vectors(tmp_path: Path) -> None:
    lake = _lake(tmp_path, 3)
    summary = embed(lake=lake, config=EmbedConfig(modalities=("text",), num_workers=0))
    text = summary.modalities["text"]
    assert text.embedded == 3 and not text.random_weights and text.model_id.startswith("minilm-")
    assert set(_vectors(lake)["dim"]) == {384}


def test_item_summaries_are_embedded_with_the_text_encoder(tmp_path: Path) -> None:
    lake = _lake(tmp_path, 3)
    config = EmbedConfig(modalities=("summary",), num_workers=0)
    assert embed(lake=lake, config=config).modalities["summary"].candidates == 0  # no item_summaries yet
    summaries = pl.DataFrame(
        {
            "item_id": ["i0", "i1", "i1"],
            "model_id": "llm-1",
            "prompt_hash": ["p0", "p1", "p2"],
            "summary": ["A heist film.", "An old take.", "A space opera."],
            "generated_at": [
                datetime(2026, 11, 1, tzinfo=UTC),
                datetime(2026, 11, 1, tzinfo=UTC),
                datetime(2026, 11, 2, tzinfo=UTC),
            ],
        }
    )
    features.upsert("item_summaries", summaries, commit=CommitInfo(stage="summarize"), lake=lake)
    summary = embed(lake=lake, config=config).modalities["summary"]
    assert (summary.embedded, summary.random_weights) == (2, False)
    rows = _vectors(lake).filter(pl.col("modality") == "summary").sort("item_id")
    assert rows["item_id"].to_list() == ["i0", "i1"] and set(rows["dim"]) == {384}
    assert embed(lake=lake, config=config).modalities["summary"].embedded == 0  # unchanged: nothing


def test_a_shard_runner_gives_the_in_process_vectors_and_quarantine(tmp_path: Path) -> None:
    a, b = _lake(tmp_path / "a", 5, corrupt={3}), _lake(tmp_path / "b", 5, corrupt={3})
    embed(lake=a, config=TINY)
    resolved = features.resolve_lake(b)
    jobs: list[stage.ShardJob] = []

    def here(shards: Iterable[stage.ShardJob]) -> Iterator[stage.ShardResult]:
        for job in shards:
            jobs.append(job)
            yield stage.encode_shard(job, config=TINY, lake=resolved)

    summary = embed(lake=b, config=TINY, runner=here, runner_name="test")
    assert {(j.modality, j.encoder) for j in jobs} == {("image", Encoder.CLIP_IMAGE), ("clip_text", Encoder.CLIP_TEXT)}
    assert (summary.modalities["image"].embedded, summary.modalities["image"].failed) == (4, 1)
    assert summary.model_loads <= 1  # the worker cache holds the CLIP model across shards
    key = ["item_id", "modality"]
    assert _vectors(a).sort(key)["vector"].to_list() == _vectors(b).sort(key)["vector"].to_list()
    bad = features.read("quarantine", lake=b).collect().row(0, named=True)
    assert (bad["source"], bad["record_key"]) == ("embed:image", "i3")


def test_without_a_clip_model_the_clip_modalities_are_skipped_with_how_to_configure_them(tmp_path: Path) -> None:
    lake = _lake(tmp_path, 3)
    config = EmbedConfig(modalities=("image", "clip_text"), batch_size=2, num_workers=0)  # no clip_model given
    summary = embed(lake=lake, config=config)
    assert summary.modalities == {}  # nothing encoded, no random weights loaded behind the user's back
    [warning] = summary.warnings
    assert warning.startswith("image, clip_text skipped: no CLIP weights configured") and "clip_model" in warning
    assert features.table_version("item_embeddings", lake=lake) is None
