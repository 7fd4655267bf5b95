"""Vacuum: files of old versions go, the versions a registered model was trained on stay readable."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

import features
from features import CommitInfo
from features.retention import vacuum_lake
from training.registry import protected_versions, register


def _items(text: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "item_id": ["a", "b"],
            "source": "t",
            "title": ["A", "B"],
            "text": [text, text],
            "content_hash": [text, text],
            "ingested_at": datetime.now(UTC),
        }
    )


def _three_versions(lake: Path) -> dict[int, pl.DataFrame]:
    snapshots = {}
    for text in ("one", "two", "three"):  # each upsert rewrites both rows: the old file leaves the table
        features.upsert("items", _items(text), commit=CommitInfo(stage="test"), lake=lake)
        version = features.table_version("items", lake=lake)
        assert version is not None
        snapshots[version] = features.read("items", version=version, lake=lake).collect()
    return snapshots


def test_vacuum_keeps_protected_versions_readable_and_deletes_the_rest(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    snapshots = _three_versions(lake)
    first, middle, latest = sorted(snapshots)
    dry = vacuum_lake(lake, retain_hours=0, protect={"items": {middle}}, dry_run=True)["items"]
    assert dry.deleted == 0 and dry.kept >= 1 and dry.candidates > len(dry.files)
    assert features.read("items", version=first, lake=lake).collect().height == 2  # dry run deleted nothing

    done = vacuum_lake(lake, retain_hours=0, protect={"items": {middle}})["items"]
    assert done.deleted == len(dry.files) > 0
    assert features.read("items", version=latest, lake=lake).collect().equals(snapshots[latest])
    assert features.read("items", version=middle, lake=lake).collect().equals(snapshots[middle])
    with pytest.raises(Exception):  # noqa: B017 - the unprotected old version's files are gone
        features.read("items", version=first, lake=lake).collect()


def test_retention_window_keeps_recent_versions(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    snapshots = _three_versions(lake)
    result = vacuum_lake(lake, retain_hours=24)["items"]
    assert result.deleted == 0  # everything was removed minutes ago, inside the window
    for version, frame in snapshots.items():
        assert features.read("items", version=version, lake=lake).collect().equals(frame)


def test_protected_versions_come_from_the_registry_and_manifests(tmp_path: Path) -> None:
    lake, artifacts = tmp_path / "lake", tmp_path / "artifacts"
    _three_versions(lake)
    register("m", 1, metrics={}, config={}, input_versions={"items": 1, "turns": 4}, artifact_uri="x", lake=lake)
    folder = artifacts / "m" / "2"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"inputs": {"lake": str(lake), "tables": {"items": 0}}}))
    other = artifacts / "m" / "3"
    other.mkdir(parents=True)
    (other / "manifest.json").write_text(
        json.dumps({"inputs": {"lake": str(tmp_path / "elsewhere"), "tables": {"items": 2}}})
    )
    assert protected_versions(lake=lake, artifacts_root=str(artifacts)) == {"items": {0, 1}, "turns": {4}}
