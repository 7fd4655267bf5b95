"""Models live with their lake: ``<lake>/_artifacts/<model>/<version>/``, lake-relative registry URIs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import features
import training
from training.artifacts import ArtifactError, artifact_uri, fetch, locate, publish
from training.pipeline import train_and_register
from training.registry import protected_versions, resolve

from .conftest import TINY_CONFIG, write_fixture_lake

CONFIG = TINY_CONFIG.model_copy(update={"epochs": 1})
MESSAGES = [{"role": "seeker", "text": "I loved @m2"}]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("lake-artifacts") / "lake")
    write_fixture_lake(root)
    train_and_register(CONFIG, lake=root)
    return root


def test_artifacts_go_under_the_lake_with_a_lake_relative_uri(lake: str) -> None:
    row = resolve("mmcrs-graph-prompt", 1, lake=lake)
    assert row["artifact_uri"] == "_artifacts/mmcrs-graph-prompt/1"
    folder = Path(lake) / "_artifacts" / "mmcrs-graph-prompt" / "1"
    assert set(json.loads((folder / "manifest.json").read_text())["files"]) <= {p.name for p in folder.iterdir()}
    assert training.load("mmcrs-graph-prompt", "production", lake=lake).recommend(MESSAGES, k=3)


def test_a_moved_lake_keeps_its_models(lake: str, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(lake, moved)
    rec = training.load("mmcrs-graph-prompt", 1, lake=str(moved))
    assert rec.version == 1 and rec.recommend(MESSAGES, k=3)


def test_two_lakes_used_from_one_folder_never_share_artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MMCRS_ARTIFACTS", raising=False)
    for name in ("first", "second"):  # a second demo into a fresh lake used to crash on artifacts/<model>/1
        write_fixture_lake(name)
        report = train_and_register(CONFIG, lake=name, artifacts_root=features.Settings.resolve().artifacts_root)
        assert report.version == 1 and report.artifact_dir == str(
            tmp_path.resolve() / name / "_artifacts/mmcrs-graph-prompt/1"
        )
    assert not (tmp_path / "artifacts").exists()


def test_a_missing_artifact_is_a_clear_error(lake: str, tmp_path: Path) -> None:
    moved = tmp_path / "no-models"
    shutil.copytree(lake, moved, ignore=shutil.ignore_patterns("_artifacts"))
    with pytest.raises(ArtifactError, match=r"model mmcrs-graph-prompt v1: artifact .*no-models/_artifacts/"):
        training.load("mmcrs-graph-prompt", "production", lake=str(moved))


def test_an_altered_file_is_refused_with_model_version_and_uri(lake: str, tmp_path: Path) -> None:
    moved = tmp_path / "altered"
    shutil.copytree(lake, moved)
    config = moved / "_artifacts" / "mmcrs-graph-prompt" / "1" / "config.json"
    config.write_text(config.read_text() + " ")
    with pytest.raises(ArtifactError, match=r"v1: artifact .*altered/_artifacts/mmcrs-graph-prompt/1: .*sha256"):
        training.load("mmcrs-graph-prompt", 1, lake=str(moved))


def test_old_rows_with_absolute_paths_still_load(lake: str, tmp_path: Path) -> None:
    from training import registry

    old = tmp_path / "artifacts" / "mmcrs-graph-prompt" / "1"
    shutil.copytree(Path(lake) / "_artifacts" / "mmcrs-graph-prompt" / "1", old)
    other = str(tmp_path / "lake")
    write_fixture_lake(other)
    row = resolve("mmcrs-graph-prompt", 1, lake=lake)
    registry.register(
        "mmcrs-graph-prompt",
        1,
        metrics=json.loads(row["metrics"]),
        config={},
        input_versions={"turns": 0},
        artifact_uri=str(old),
        lake=other,
    )
    assert training.load("mmcrs-graph-prompt", "candidate", lake=other).version == 1


def test_an_explicit_root_is_recorded_as_an_absolute_location(tmp_path: Path) -> None:
    assert artifact_uri("m", 2, artifacts_root=tmp_path) == str(tmp_path.resolve() / "m" / "2")
    assert artifact_uri("m", 2, artifacts_root="s3://b/models/") == "s3://b/models/m/2"
    lake = features.resolve_lake(tmp_path / "lake")
    assert locate("_artifacts/m/2", lake=lake) == f"{lake.root}/_artifacts/m/2"
    assert locate("/abs/m/2", lake=lake) == "/abs/m/2"


def test_publish_refuses_an_existing_version_and_fetch_a_missing_one(tmp_path: Path) -> None:
    lake = features.resolve_lake(tmp_path / "lake")
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "manifest.json").write_text('{"files": {}}')
    target = locate(artifact_uri("m", 1), lake=lake)
    publish(staging, target, lake=lake)
    assert fetch(target, lake=lake) == Path(target)
    with pytest.raises(FileExistsError):
        publish(staging, target, lake=lake)
    with pytest.raises(FileNotFoundError):
        fetch(locate(artifact_uri("m", 2), lake=lake), lake=lake)


def test_vacuum_protects_what_manifests_under_the_lake_need(lake: str, tmp_path: Path) -> None:
    moved = tmp_path / "unregistered"
    shutil.copytree(lake, moved, ignore=shutil.ignore_patterns("model_registry"))  # exported, never registered
    assert protected_versions(lake=str(moved)) == {t: {0} for t in json.loads(_manifest(moved))["inputs"]["tables"]}


def _manifest(lake: Path) -> str:
    return (lake / "_artifacts" / "mmcrs-graph-prompt" / "1" / "manifest.json").read_text()
