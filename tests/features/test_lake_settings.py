"""The stage settings stored in a lake: written, read back, merged under what a run passes, refused when broken."""

from __future__ import annotations

from pathlib import Path

import pytest

import features
from features.lake_settings import SETTINGS_PATH, merge, read_stage_settings, to_toml, write_stage_settings

SETTINGS = {
    "crawl": {"allow_hosts": ["127.0.0.1"], "refresh_posters": False},
    "summarize": {"limit": 4, "model_dir": None},
    "train": {"config": {"epochs": 2, "lr": 0.003, "model": {"id_dim": 8}}, "model_name": 'a "quoted" name'},
}


def test_settings_round_trip_through_the_lake(tmp_path: Path) -> None:
    lake = features.resolve_lake(tmp_path / "lake")
    assert read_stage_settings(lake) == {}  # none stored: defaults
    where = write_stage_settings(lake, SETTINGS)
    assert where.endswith("/".join(SETTINGS_PATH)) and Path(where).is_file()
    assert read_stage_settings(lake) == merge({}, SETTINGS)  # None values are left out, the rest is exact
    assert "model_dir" not in to_toml(SETTINGS)


def test_what_a_run_passes_goes_on_top_of_the_stored_settings() -> None:
    merged = merge(SETTINGS, {"train": {"config": {"epochs": 5}}, "summarize": {"limit": None}})
    assert merged["train"]["config"] == {"epochs": 5, "lr": 0.003, "model": {"id_dim": 8}}
    assert merged["summarize"]["limit"] == 4  # None never erases a stored value


def test_a_broken_settings_file_is_a_lake_error_naming_it(tmp_path: Path) -> None:
    lake = features.resolve_lake(tmp_path / "lake")
    path = Path(lake.root, *SETTINGS_PATH)
    path.parent.mkdir(parents=True)
    path.write_text("[embed\nclip_model = 1")
    with pytest.raises(features.LakeError, match=r"mmcrs\.toml is unreadable"):
        read_stage_settings(lake)
    path.write_text('embed = "not a table"')
    with pytest.raises(features.LakeError, match="expected a table per stage"):
        read_stage_settings(lake)
