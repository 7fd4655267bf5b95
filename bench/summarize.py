"""Benchmark: preference-summary generation with SmolLM2-135M-Instruct, three ways, side by side in one run.

    .venv/bin/python -m bench.summarize [--dialogues 64] [--rounds 2] [--max-new-tokens 40] [--batch 32]

Prompts: the ReDial test split (``../shared/data/redial/redial_test.jsonl``) is ingested into a temporary lake;
for each of the first ``--dialogues`` dialogues with a recommendation, the summarizer's first recurrent step
prompt for its last recommendation point (the real template and history). Contenders, alternated round by round
(each round takes the next slice of prompts, every contender runs it, in rotated order):
- ``batched``: the local backend (transformers, fp32, greedy, left padding), ``--batch`` prompts per call;
- ``one_at_a_time``: the same backend, one prompt per call;
- ``llama_cpp``: llama.cpp in-process (``llama-cpp-python``, the same GGUF), one prompt per call.
Reports summaries/s, prompt + new tokens/s, and the process's peak RSS while each contender ran.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tasks.ingest_dialogues import ingest_dialogues
from tasks.summarize.backends import ChatPrompt
from tasks.summarize.backends.local import LocalBackend, smollm2_gguf
from tasks.summarize.history import history_chunks, recommendation_points
from tasks.summarize.preferences import _titles, select_dialogues, step_fields
from tasks.summarize.prompts import load_template, render
from tasks.summarize.stage import NO_SUMMARY

REDIAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "redial" / "redial_test.jsonl"


@dataclass
class Tally:
    seconds: float = 0.0
    summaries: int = 0
    new_tokens: int = 0
    prompt_tokens: int = 0
    peak_rss: int = 0
    samples: list[str] = field(default_factory=list)


class _PeakRss:
    """Samples this process's RSS every 50 ms while active."""

    def __init__(self) -> None:
        self.proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()

    def __enter__(self) -> _PeakRss:
        self.peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def build_prompts(n_dialogues: int, workdir: Path) -> list[ChatPrompt]:
    """The first recurrent step of the last recommendation point of ``n_dialogues`` ReDial dialogues."""
    import features

    lake = str(workdir / "lake")
    ingest_dialogues(REDIAL, lake=lake)
    turns = features.read("turns", lake=lake).collect()
    chosen, _ = select_dialogues(turns, limit=n_dialogues)
    titles, template, prompts = _titles(features.resolve_lake(lake)), load_template("preference_v1"), []
    for rows in turns.filter(turns["dialogue_id"].is_in(chosen)).partition_by("dialogue_id"):
        dialogue = rows.to_dicts()
        last = recommendation_points(sorted(dialogue, key=lambda t: t["turn_idx"]))[-1]
        chunks = history_chunks(dialogue, last, titles=titles)
        if chunks:
            prompts.append(render(template, step_fields(chunks[0], NO_SUMMARY)))
    return sorted(prompts, key=lambda p: p.user)[:n_dialogues]


def run_local(backend: LocalBackend, prompts: list[ChatPrompt], *, batch: int, max_new_tokens: int,
              tally: Tally) -> None:
    backend.batch_size = batch
    with _PeakRss() as rss:
        start = time.perf_counter()
        out = backend.generate(prompts, max_new_tokens=max_new_tokens)
        tally.seconds += time.perf_counter() - start
    tally.peak_rss = max(tally.peak_rss, rss.peak)
    tally.summaries += len(out)
    tally.new_tokens += sum(g.new_tokens for g in out)
    tally.prompt_tokens += sum(backend.count_tokens(p) for p in prompts)
    tally.samples += [g.text for g in out[:1]]


def run_llama_cpp(llm: object, prompts: list[ChatPrompt], *, max_new_tokens: int, tally: Tally) -> None:
    with _PeakRss() as rss:
        start = time.perf_counter()
        for p in prompts:
            out = llm.create_chat_completion(  # type: ignore[attr-defined]
                messages=[{"role": "system", "content": p.system}, {"role": "user", "content": p.user}],
                max_tokens=max_new_tokens, temperature=0.0)
            tally.new_tokens += out["usage"]["completion_tokens"]
            tally.prompt_tokens += out["usage"]["prompt_tokens"]
            if len(tally.samples) < 2:
                tally.samples.append(out["choices"][0]["message"]["content"])
        tally.seconds += time.perf_counter() - start
    tally.peak_rss = max(tally.peak_rss, rss.peak)
    tally.summaries += len(prompts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialogues", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("bench/out/summarize.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        prompts = build_prompts(args.dialogues, Path(tmp))
    backend = LocalBackend.smollm2()
    contenders = ["batched", "one_at_a_time"]
    llm = None
    try:
        from llama_cpp import Llama

        llm = Llama(model_path=str(smollm2_gguf()), n_ctx=2048, n_threads=os.cpu_count(), verbose=False)
        contenders.append("llama_cpp")
    except ImportError:
        print("llama-cpp-python not installed: the llama_cpp contender is skipped")
    tallies = {c: Tally() for c in contenders}
    size = -(-len(prompts) // args.rounds)
    for r in range(args.rounds):
        part = prompts[r * size : (r + 1) * size]
        order = contenders[r % len(contenders):] + contenders[: r % len(contenders)]
        for name in order:
            if name == "llama_cpp":
                run_llama_cpp(llm, part, max_new_tokens=args.max_new_tokens, tally=tallies[name])
            else:
                batch = args.batch if name == "batched" else 1
                run_local(backend, part, batch=batch, max_new_tokens=args.max_new_tokens, tally=tallies[name])
            t = tallies[name]
            rate = t.summaries / t.seconds
            print(f"round {r + 1}/{args.rounds} {name}: {len(part)} prompts, so far {rate:.3f}/s", flush=True)
    report(tallies, prompts, args)


def report(tallies: dict[str, Tally], prompts: list[ChatPrompt], args: argparse.Namespace) -> None:
    base = tallies.get("llama_cpp") or tallies["one_at_a_time"]
    rows = {}
    machine = platform.processor() or platform.machine()
    print(f"\n{len(prompts)} prompts, max_new_tokens {args.max_new_tokens}, {machine}, {os.cpu_count()} cores")
    print("| contender | summaries/s | prompt tok/s | new tok/s | avg prompt tok | avg new tok | peak RSS | vs base |")
    print("|---|---|---|---|---|---|---|---|")
    for name, t in tallies.items():
        rate = t.summaries / t.seconds
        rows[name] = {"summaries_per_s": rate, "prompt_tokens_per_s": t.prompt_tokens / t.seconds,
                      "new_tokens_per_s": t.new_tokens / t.seconds,
                      "avg_prompt_tokens": t.prompt_tokens / t.summaries,
                      "avg_new_tokens": t.new_tokens / t.summaries, "peak_rss_mib": t.peak_rss / 2**20,
                      "seconds": t.seconds, "samples": t.samples[:2]}
        row = rows[name]
        print(f"| {name} | {rate:.3f} | {row['prompt_tokens_per_s']:.0f} | {row['new_tokens_per_s']:.1f} | "
              f"{row['avg_prompt_tokens']:.0f} | {row['avg_new_tokens']:.1f} | {row['peak_rss_mib']:.0f} MiB | "
              f"{rate / (base.summaries / base.seconds):.2f}x |")
    for name, t in tallies.items():
        print(f"sample ({name}): {t.samples[0] if t.samples else ''}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
