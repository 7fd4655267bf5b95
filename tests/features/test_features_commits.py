"""Commit metadata: config hashes and the flat ``mmcrs.*`` keys every commit carries."""

from __future__ import annotations

import dataclasses
import json
import re

import pydantic
import pytest

from features import CommitInfo, code_version, config_hash


class _Config(pydantic.BaseModel):
    model: str = "enc-1"
    batch_size: int = 32
    modalities: tuple[str, ...] = ("image", "text")


def test_config_hash_stable_under_key_order() -> None:
    a = {"b": 1, "a": {"y": [1, 2], "x": "s"}, "c": None}
    b = {"c": None, "a": {"x": "s", "y": [1, 2]}, "b": 1}
    assert config_hash(a) == config_hash(b)


def test_config_hash_is_short_hex_and_deterministic() -> None:
    value = config_hash({"k": 1})
    assert re.fullmatch(r"[0-9a-f]{16}", value)
    assert config_hash({"k": 1}) == value


@pytest.mark.parametrize(
    "other",
    [{"k": 2}, {"k": "1"}, {"k": 1, "j": 0}, {"K": 1}, {"k": [1]}],
)
def test_config_hash_changes_with_content(other: dict[str, object]) -> None:
    assert config_hash(other) != config_hash({"k": 1})


def test_config_hash_list_order_matters() -> None:
    assert config_hash({"k": [1, 2]}) != config_hash({"k": [2, 1]})


def test_config_hash_of_pydantic_model_equals_its_json_dump() -> None:
    config = _Config()
    assert config_hash(config) == config_hash(config.model_dump(mode="json"))
    assert config_hash(config) == config_hash({"modalities": ["image", "text"], "batch_size": 32, "model": "enc-1"})
    assert config_hash(_Config(batch_size=64)) != config_hash(config)


def test_config_hash_non_json_values_use_str() -> None:
    from pathlib import Path

    assert config_hash({"p": Path("/a/b")}) == config_hash({"p": "/a/b"})


def test_to_metadata_keys_and_values() -> None:
    info = CommitInfo(
        stage="embed",
        flow_run_id="run-9",
        config_hash="abc123",
        input_versions={"turns": 4, "items": 7},
        code_version="deadbeef",
        extra={"source_file": "x.jsonl", "shard": "3"},
    )
    meta = info.to_metadata()
    assert meta == {
        "mmcrs.stage": "embed",
        "mmcrs.flow_run_id": "run-9",
        "mmcrs.config_hash": "abc123",
        "mmcrs.code_version": "deadbeef",
        "mmcrs.input_versions": '{"items": 7, "turns": 4}',
        "mmcrs.source_file": "x.jsonl",
        "mmcrs.shard": "3",
    }
    assert all(isinstance(v, str) for v in meta.values())
    assert json.loads(meta["mmcrs.input_versions"]) == {"items": 7, "turns": 4}


def test_to_metadata_defaults() -> None:
    meta = CommitInfo(stage="ingest").to_metadata()
    assert set(meta) == {
        "mmcrs.stage",
        "mmcrs.flow_run_id",
        "mmcrs.config_hash",
        "mmcrs.code_version",
        "mmcrs.input_versions",
    }
    assert meta["mmcrs.flow_run_id"] == ""
    assert meta["mmcrs.config_hash"] == ""
    assert meta["mmcrs.input_versions"] == "{}"
    assert meta["mmcrs.code_version"] == code_version()


def test_code_version_is_filled() -> None:
    version = code_version()
    assert version
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?|mmcrs-.+|unknown", version)
    assert CommitInfo(stage="s").code_version == version


def test_commit_info_is_frozen() -> None:
    info = CommitInfo(stage="s")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.stage = "t"  # type: ignore[misc]
