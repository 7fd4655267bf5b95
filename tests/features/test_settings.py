"""Settings resolved once at the edge: explicit arguments > environment > config file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from features import Lake, Settings


def test_defaults_are_folders_in_cwd(isolated: Path) -> None:
    isolated = isolated.resolve()
    settings = Settings.resolve()
    assert settings.lake.root == str(isolated / "lake")
    assert settings.artifacts_root is None  # models live with the lake: <lake>/_artifacts
    assert settings.config_file is None


def test_environment_fills_what_the_arguments_leave_open(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolated = isolated.resolve()
    monkeypatch.setenv("MMCRS_LAKE", str(isolated / "env-lake"))
    monkeypatch.setenv("MMCRS_ARTIFACTS", str(isolated / "env-artifacts"))
    settings = Settings.resolve()
    assert (settings.lake.root, settings.artifacts_root) == (str(isolated / "env-lake"), isolated / "env-artifacts")
    explicit = Settings.resolve(lake=isolated / "arg-lake", artifacts_root="arg-artifacts")
    assert explicit.lake.root == str(isolated / "arg-lake")
    assert explicit.artifacts_root == isolated / "arg-artifacts"  # relative roots resolved against cwd, once


def test_the_config_file_is_found_and_feeds_the_lake(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolated = isolated.resolve()
    config = isolated / "conf" / "mmcrs.toml"
    config.parent.mkdir()
    config.write_text('[lake]\nroot = "s3://bucket/lake"\n[lake.storage_options]\naws_region = "eu-west-1"\n')
    monkeypatch.setenv("MMCRS_CONFIG", str(config))
    settings = Settings.resolve()
    assert settings.config_file == config
    assert settings.lake == Lake("s3://bucket/lake", {"aws_region": "eu-west-1"})


def test_mmcrs_toml_in_cwd_is_the_default_config(isolated: Path) -> None:
    isolated = isolated.resolve()
    (isolated / "mmcrs.toml").write_text('[lake]\nroot = "from-config"\n')
    settings = Settings.resolve()
    assert settings.config_file == isolated / "mmcrs.toml"
    assert settings.lake.root == str(isolated / "from-config")


def test_settings_are_frozen() -> None:
    settings = Settings.resolve(lake="/tmp/lake")
    with pytest.raises(AttributeError):
        settings.artifacts_root = Path("/elsewhere")  # type: ignore[misc]
