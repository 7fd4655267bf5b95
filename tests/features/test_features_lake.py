"""Lake resolution: explicit argument > MMCRS_LAKE > config file > ./lake; storage options; URIs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import features
from features import Lake, resolve_lake


def _write_config(path: Path, root: str, options: dict[str, object] | None = None) -> Path:
    lines = ["[lake]", f'root = "{root}"']
    if options:
        lines.append("[lake.storage_options]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in options.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_default_is_lake_folder_in_cwd(isolated: Path) -> None:
    resolved = resolve_lake()
    assert resolved.root == str((isolated / "lake").resolve())
    assert resolved.storage_options == {}
    assert resolved.is_local


def test_explicit_argument_beats_env_and_config(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMCRS_LAKE", str(isolated / "from-env"))
    monkeypatch.setenv("MMCRS_CONFIG", str(_write_config(isolated / "cfg.toml", str(isolated / "from-config"))))
    assert resolve_lake(isolated / "from-arg").root == str(isolated / "from-arg")
    assert resolve_lake(str(isolated / "from-arg")).root == str(isolated / "from-arg")


def test_env_beats_config(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMCRS_LAKE", str(isolated / "from-env"))
    monkeypatch.setenv("MMCRS_CONFIG", str(_write_config(isolated / "cfg.toml", str(isolated / "from-config"))))
    assert resolve_lake().root == str(isolated / "from-env")


def test_config_beats_default(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMCRS_CONFIG", str(_write_config(isolated / "cfg.toml", str(isolated / "from-config"))))
    assert resolve_lake().root == str(isolated / "from-config")


def test_empty_env_var_is_ignored(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMCRS_LAKE", "")
    monkeypatch.setenv("MMCRS_CONFIG", str(_write_config(isolated / "cfg.toml", str(isolated / "from-config"))))
    assert resolve_lake().root == str(isolated / "from-config")


def test_mmcrs_toml_in_cwd_is_the_default_config(isolated: Path) -> None:
    _write_config(isolated / "mmcrs.toml", "s3://bucket/from-cwd-config")
    assert resolve_lake().root == "s3://bucket/from-cwd-config"


def test_missing_config_file_falls_back_to_default(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMCRS_CONFIG", str(isolated / "does-not-exist.toml"))
    assert resolve_lake().root == str((isolated / "lake").resolve())


def test_config_without_lake_section_falls_back_to_default(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = isolated / "cfg.toml"
    cfg.write_text("[other]\nroot = 'nope'\n")
    monkeypatch.setenv("MMCRS_CONFIG", str(cfg))
    assert resolve_lake().root == str((isolated / "lake").resolve())


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("s3://bucket/x", "s3://bucket/x"),
        ("s3://bucket/x/", "s3://bucket/x"),
        ("gs://bucket/deep/prefix", "gs://bucket/deep/prefix"),
        ("az://container/lake/", "az://container/lake"),
    ],
)
def test_object_store_uris_are_kept(given: str, expected: str) -> None:
    resolved = resolve_lake(given)
    assert resolved.root == expected
    assert not resolved.is_local
    assert resolved.table_uri("items") == f"{expected}/items"


def test_relative_local_paths_become_absolute(isolated: Path) -> None:
    resolved = resolve_lake("some/rel/lake/")
    assert Path(resolved.root).is_absolute()
    assert resolved.root == str((isolated / "some" / "rel" / "lake").resolve())
    assert resolved.is_local


def test_relative_env_path_becomes_absolute(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMCRS_LAKE", "env-rel")
    assert resolve_lake().root == str((isolated / "env-rel").resolve())


def test_file_uri_becomes_local_path(tmp_path: Path) -> None:
    resolved = resolve_lake(f"file://{tmp_path}/lake/")
    assert resolved.root == str(tmp_path / "lake")
    assert resolved.is_local


def test_lake_instance_passes_through() -> None:
    given = Lake(root="s3://b/p", storage_options={"k": "v"})
    assert resolve_lake(given) is given


def test_storage_options_from_config(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _write_config(isolated / "cfg.toml", "s3://bucket/p", {"AWS_REGION": "eu-west-1", "timeout": 30})
    monkeypatch.setenv("MMCRS_CONFIG", str(cfg))
    resolved = resolve_lake()
    assert resolved.storage_options == {"AWS_REGION": "eu-west-1", "timeout": "30"}  # values become strings
    assert resolved.options() == {"AWS_REGION": "eu-west-1", "timeout": "30"}


def test_storage_options_env_json_overrides_config(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _write_config(isolated / "cfg.toml", "s3://bucket/p", {"AWS_REGION": "eu-west-1", "timeout": 30})
    monkeypatch.setenv("MMCRS_CONFIG", str(cfg))
    monkeypatch.setenv("MMCRS_STORAGE_OPTIONS", json.dumps({"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://x"}))
    assert resolve_lake().storage_options == {
        "AWS_REGION": "us-east-1",
        "timeout": "30",
        "AWS_ENDPOINT_URL": "http://x",
    }


def test_storage_options_env_apply_with_explicit_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMCRS_STORAGE_OPTIONS", '{"AWS_ALLOW_HTTP": true, "retries": 3}')
    resolved = resolve_lake("s3://bucket/p")
    assert resolved.storage_options["retries"] == "3"
    assert resolved.storage_options["AWS_ALLOW_HTTP"].lower() == "true"  # object stores parse this case-blind


def test_local_lake_has_no_storage_options(tmp_path: Path) -> None:
    resolved = resolve_lake(tmp_path)
    assert resolved.options() is None


def test_lake_paths() -> None:
    resolved = Lake(root="s3://bucket/lake")
    assert resolved.table_uri("turns") == "s3://bucket/lake/turns"
    assert resolved.path("blobs", "ab", "abcd") == "s3://bucket/lake/blobs/ab/abcd"


def test_writes_and_reads_follow_the_env_lake(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, make_items, commit
) -> None:
    monkeypatch.setenv("MMCRS_LAKE", "env-lake")
    features.upsert("items", make_items(["a", "b"]), commit=commit)
    assert (isolated / "env-lake" / "items" / "_delta_log").is_dir()
    assert not (isolated / "lake").exists()
    assert features.read("items").collect().height == 2
