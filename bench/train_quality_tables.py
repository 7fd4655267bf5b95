"""Markdown tables of ``bench/out/train_quality.json`` (written by ``bench.train_quality``).

    .venv/bin/python -m bench.train_quality_tables [bench/out/train_quality.json]

Every cell is mean ± population std over the seeds that ran; a contender or variant is only compared on the
seeds it ran on.
"""

from __future__ import annotations

import sys
from pathlib import Path

from training.metrics import PROTOCOLS, mean_std

METRICS = ("recall@1", "recall@10", "recall@50", "mrr@10", "ndcg@10")
HEADS = ("R@1", "R@10", "R@50", "MRR@10", "NDCG@10")
LABELS = {"serving": "serving-time", "oracle": "oracle labels"}


def _cell(runs: list[dict], path: tuple[str, ...]) -> str:
    values = [_get(run, path) for run in runs]
    mean, std = mean_std(values)
    return f"{mean:.4f} ± {std:.4f}"


def _get(run: dict, path: tuple[str, ...]) -> float:
    for key in path:
        run = run[key]
    return float(run)  # type: ignore[arg-type]


def contenders(record: dict) -> dict[str, list[dict]]:
    """Contender name -> its per-seed results: the baselines, then the model's variants."""
    out: dict[str, list[dict]] = {}
    for per_name in record["baselines"].values():
        for name, result in per_name.items():
            out.setdefault(f"baseline: {name}", []).append(result)
    for variant, per_seed in record["models"].items():
        out[f"model: {variant}"] = list(per_seed.values())
    return out


def main_table(record: dict) -> str:
    """Contenders x {serving-time, oracle labels} x {standard, no-repeats} x R@1/10/50, MRR@10, NDCG@10."""
    head = "| contender | labels | seeds | " + " | ".join(f"{p} {m}" for p in ("std", "no-rep") for m in HEADS) + " |"
    rows = [head, "|---" * (3 + 2 * len(HEADS)) + "|"]
    for name, runs in contenders(record).items():
        if name.startswith("model:") and name != "model: full":
            continue
        for labels, shown in LABELS.items():
            cells = [_cell(runs, (labels, p, m)) for p in PROTOCOLS for m in METRICS]
            rows.append(f"| {name} | {shown} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def cold_table(record: dict) -> str:
    """Cold-target recall (serving-time) per contender, with the cold test samples' count."""
    rows = [
        "| contender | cold samples (per seed) | std R@10 | std R@50 | no-rep R@10 | no-rep R@50 |",
        "|---" * 6 + "|",
    ]
    for name, runs in contenders(record).items():
        counts = "/".join(str(int(r["cold"]["standard"]["n"])) for r in runs)
        cells = [_cell(runs, ("cold", p, m)) for p in PROTOCOLS for m in ("recall@10", "recall@50")]
        rows.append(f"| {name} | {counts} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def ablation_table(record: dict) -> str:
    """Every model variant, serving-time: test no-repeats / standard recall, cold R@50, valid selection inputs."""
    head = "| variant | seeds | no-rep R@10 | no-rep R@50 | std R@10 | std R@50 | cold no-rep R@50 "
    head += "| valid no-rep R@10 | valid std R@10 |"
    rows = [head, "|---" * 9 + "|"]
    for variant, per_seed in record["models"].items():
        runs = list(per_seed.values())
        paths = [("serving", "no_repeats", "recall@10"), ("serving", "no_repeats", "recall@50")]
        paths += [("serving", "standard", "recall@10"), ("serving", "standard", "recall@50")]
        paths += [("cold", "no_repeats", "recall@50"), ("valid", "no_repeats", "recall@10")]
        paths += [("valid", "standard", "recall@10")]
        rows.append(f"| {variant} | {len(runs)} | " + " | ".join(_cell(runs, p) for p in paths) + " |")
    return "\n".join(rows)


def sentiment_line(record: dict) -> str:
    """The sentiment head's test accuracy against the majority label's share."""
    with_head = [
        v
        for v in ("full", "with sentiment head")
        if any(r.get("sentiment") for r in record["models"].get(v, {}).values())
    ]
    if not with_head:
        return "sentiment head: not measured"
    runs = [r for r in record["models"][with_head[0]].values() if r.get("sentiment")]
    acc, majority = _cell(runs, ("sentiment", "accuracy")), _cell(runs, ("sentiment", "majority"))
    counts = "/".join(str(int(r["sentiment"]["n"])) for r in runs)
    return f"sentiment head, test context items (n per seed {counts}): accuracy {acc}, majority label {majority}"


def verdict(record: dict) -> list[str]:
    """The issue's targets, checked: full model vs the best baseline on serving-time no-repeats R@10 and R@50
    (by more than the larger of the two seed stds), and text metadata's effect on recall."""
    named = contenders(record)
    full = named.get("model: full")
    if not full:
        return ["no full-model runs: targets not checked"]
    lines = []
    for metric in ("recall@10", "recall@50"):
        path = ("serving", "no_repeats", metric)
        baselines = {n: mean_std([_get(r, path) for r in runs]) for n, runs in named.items() if "baseline" in n}
        best = max(baselines, key=lambda n: baselines[n][0])
        (m, s), (b, bs) = mean_std([_get(r, path) for r in full]), baselines[best]
        met = m - b > max(s, bs)
        lines.append(
            f"no-rep {metric}: full {m:.4f} ± {s:.4f} vs {best} {b:.4f} ± {bs:.4f}: {'MET' if met else 'NOT met'}"
        )
    plain = named.get("model: without text metadata")
    for path in (("serving", "no_repeats", "recall@50"), ("cold", "no_repeats", "recall@50")) if plain else ():
        (m, s), (p, ps) = mean_std([_get(r, path) for r in full]), mean_std([_get(r, path) for r in plain])
        lines.append(f"text metadata, {'/'.join(path)}: with {m:.4f} ± {s:.4f}, without {p:.4f} ± {ps:.4f}")
    return lines


def render(record: dict) -> str:
    """Every table and the verdict as one markdown text."""
    parts = [main_table(record), cold_table(record), ablation_table(record), sentiment_line(record)]
    return "\n\n".join([*parts, "\n".join(f"- {line}" for line in verdict(record))])


if __name__ == "__main__":
    import json

    source = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/out/train_quality.json")
    print(render(json.loads(source.read_text())))
