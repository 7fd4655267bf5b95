"""Registry rows, aliases and the promotion rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.registry import PromotionRule, models, next_version, promote, register, resolve


def _register(lake: str, version: int, recall: float) -> None:
    metrics = {"valid": {"standard": {"recall@10": recall}}, "test": {"no_repeats": {"recall@10": recall}}}
    register(
        "m", version, metrics=metrics, config={}, input_versions={"turns": 0}, artifact_uri=f"/a/{version}", lake=lake
    )


@pytest.fixture
def lake(tmp_path: Path) -> str:
    return str(tmp_path / "lake")


def test_first_version_is_candidate_then_promoted(lake: str) -> None:
    assert next_version("m", lake=lake) == 1
    _register(lake, 1, 0.2)
    assert resolve("m", "candidate", lake=lake)["version"] == 1
    outcome = promote("m", 1, lake=lake)
    assert outcome.promoted and outcome.reason == "no production yet"
    assert resolve("m", "production", lake=lake)["version"] == 1
    assert next_version("m", lake=lake) == 2


def test_worse_candidate_is_not_promoted_unless_forced(lake: str) -> None:
    _register(lake, 1, 0.3)
    promote("m", 1, lake=lake)
    _register(lake, 2, 0.25)
    outcome = promote("m", 2, lake=lake)
    assert not outcome.promoted and "does not beat" in outcome.reason
    assert resolve("m", "production", lake=lake)["version"] == 1
    assert resolve("m", "candidate", lake=lake)["version"] == 2
    assert promote("m", 2, force=True, lake=lake).promoted
    assert resolve("m", "production", lake=lake)["version"] == 2
    assert models(lake=lake, model_name="m").filter(models(lake=lake)["alias"] == "production").height == 1


def test_better_candidate_is_promoted_and_min_delta_applies(lake: str) -> None:
    _register(lake, 1, 0.3)
    promote("m", 1, lake=lake)
    _register(lake, 2, 0.31)
    assert not promote("m", 2, rule=PromotionRule(min_delta=0.05), lake=lake).promoted
    assert promote("m", 2, lake=lake).promoted
    assert resolve("m", "1", lake=lake)["alias"] is None


def test_unknown_alias_raises(lake: str) -> None:
    _register(lake, 1, 0.1)
    with pytest.raises(LookupError):
        resolve("m", "production", lake=lake)
