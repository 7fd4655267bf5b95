"""``bench.scale`` end to end at a tiny size: every stage runs for real and the JSON has the promised shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import scale

STAGES = ("catalog_ingest", "dialogue_ingest", "crawl", "text_embed", "graphs", "nightly_noop")


@pytest.mark.slow  # a dozen stage processes, each starting Prefect: a few minutes on two cores
def test_scale_runs_every_stage_and_writes_the_json(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    argv = ["--sizes", "50", "--poster-max", "50", "--latency-ms", "1", "--delta", "--minilm-sample", "0", "--keep"]
    scale.main([*argv, "--out", str(out), "--workdir", str(tmp_path / "work")])
    result = json.loads(out.read_text())
    stages = result["sizes"]["50"]["stages"]
    assert set(STAGES) <= set(stages)
    for stats in stages.values():
        assert {"seconds", "items_per_s", "peak_rss_mib"} <= set(stats) and stats["peak_rss_mib"] > 0
    assert set(result["cost_ratio_largest_vs_smallest"]) == set(stages)
    assert "skip" in " ".join(stages["nightly_noop"]["output"])
    delta = result["delta"]
    assert delta["items_added"] == 1 and delta["embedded_rows"] == 1  # only the new item is embedded
    assert set(delta["share_of_full_per_stage"]) == set(delta["stages"])
    # another 1 % on the kept lake: new ids, only they are embedded, the crawl fetches only their posters
    scale.main(["--delta-again", str(out), "--workdir", str(tmp_path / "work"), "--latency-ms", "1", "--out", str(out)])
    again = json.loads(out.read_text())["delta_again"]
    assert len(again) == 1 and again[0]["embedded_rows"] == 1 and again[0]["stages"]["crawl"]["status"] == "ok"
    assert again[0]["stages"]["graphs"]["summary"]["built"]["clip_text_knn"]["mode"] == "incremental"


def test_cost_ratio_is_per_item_seconds_largest_over_smallest() -> None:
    sizes = {
        "10": {"items": 10, "stages": {"a": {"seconds": 1.0}, "b": {"seconds": 2.0}}},
        "100": {"items": 100, "stages": {"a": {"seconds": 20.0}}},
    }
    assert scale.cost_ratios(sizes) == {"a": 2.0, "b": None}
