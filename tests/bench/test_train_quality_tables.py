"""The quality bench's tables: mean ± std over seeds, cold counts, and the issue's target check."""

from __future__ import annotations

from bench.train_quality_tables import ablation_table, cold_table, main_table, render, verdict


def _metrics(r10: float, r50: float, n: int = 100) -> dict:
    one = {"recall@1": 0.01, "recall@10": r10, "recall@50": r50, "mrr@10": 0.05, "ndcg@10": 0.07, "n": n}
    return {"standard": one, "no_repeats": one}


def _run(r10: float, r50: float) -> dict:
    return {"serving": _metrics(r10, r50), "oracle": _metrics(r10, r50), "cold": _metrics(0.0, 0.1, 20)}


def _record(full: tuple[float, float], plain: tuple[float, float]) -> dict:
    baseline = {"ease": _run(0.20, 0.40) | {"params": {}}}
    return {
        "baselines": {"0": baseline, "1": baseline},
        "models": {
            "full": {"0": _run(*full) | {"valid": _metrics(*full)}, "1": _run(*full) | {"valid": _metrics(*full)}},
            "without text metadata": {"0": _run(*plain) | {"valid": _metrics(*plain)}},
        },
    }


def test_target_is_met_only_beyond_the_seed_spread() -> None:
    met = verdict(_record((0.30, 0.50), (0.25, 0.45)))
    assert met[0].endswith("MET") and "NOT" not in met[0] and met[1].endswith("MET")
    assert "text metadata" in met[2] and "without 0.4500" in met[2]
    assert verdict(_record((0.20, 0.40), (0.2, 0.4)))[0].endswith("NOT met")


def test_tables_show_every_contender_with_seed_and_sample_counts() -> None:
    record = _record((0.30, 0.50), (0.25, 0.45))
    main = main_table(record)
    assert "| baseline: ease | serving-time | 2 | 0.0100 ± 0.0000 | 0.2000 ± 0.0000 |" in main
    assert "model: without text metadata" not in main  # ablations have their own table
    assert "| model: full | 20/20 |" in cold_table(record)
    assert "| without text metadata | 1 | 0.2500 ± 0.0000 |" in ablation_table(record)
    assert "sentiment head: not measured" in render(record)
