"""Benchmark: preference-summary generation with SmolLM2-135M-Instruct, side by side in one run.

    .venv/bin/python -m bench.summarize [--dialogues 64] [--chain-dialogues 64] [--rounds 2]
                                        [--max-new-tokens 40] [--batch 32] [--template preference_v2]

The ReDial test split (``../shared/data/redial/redial_test.jsonl``) is ingested into a temporary lake.

Workload 1, first steps (``--dialogues``; 0 skips it): for each of the first dialogues with a recommendation, the
summarizer's first recurrent step prompt for its last recommendation point (the real template and history).
Contenders: ``batched`` (the local backend as configured by default: transformers fp32, greedy, ``--batch``
prompts per call, the shared prompt prefix computed once, unpadded prefill in small groups, finished rows leaving
the decode batch), ``batched_plain`` (the same model and batch with none of those three: one padded prefill of the
whole batch, every row decoded to the end of the longest answer; the engine before they were added),
``one_at_a_time`` (the default backend, one prompt per call), ``llama_cpp`` (llama.cpp in-process, the same GGUF,
one prompt per call).

Workload 2, recurrent chains (``--chain-dialogues``; 0 skips it): whole dialogues, every recommendation point's
chain, every step, with the conversational template: step k+1 is step k's chat + its answer + the next chunk. As
in the summarizer, a step that chains of one dialogue share (the same chunks so far) is generated once, by every
contender; a summary is one generated step.
Contenders: ``chains_batched_full`` (the local backend, the chains' steps batched level by level, every prompt
computed in full, by the plain engine as ``batched_plain``), ``chains_batched_reuse`` (the default backend:
KV-cache reuse, a step computes only the previous answer and the new chunk, first steps share the prompt prefix),
``chains_reuse_one_at_a_time`` (KV reuse, one prompt per call), ``chains_llama_cpp`` (llama.cpp in-process; chains
run one after another, so its own prefix cache, which keeps the longest common token prefix of consecutive calls,
gives it the same reuse within a chain). Every contender continues its own answers; the local contenders must agree
(reuse changes what is computed, not the text): the run counts how many step answers are identical to
``chains_batched_full``'s.

Contenders are alternated round by round (each round takes the next slice, every contender runs it, in rotated
order). Reports summaries/s (one summary = one generated step), rows/s (finished chains) for chains, prompt
tokens (nominal, and those actually computed by the local backend), new tokens/s, the process's peak RSS while
each contender ran, and the peak memory held by stored KV states.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import torch

from tasks.ingest.dialogues import ingest_dialogues
from tasks.summarize.backends import ChatPrompt
from tasks.summarize.backends.factory import SMOLLM2
from tasks.summarize.backends.local import CPU_PREFILL_ROWS, LocalBackend
from tasks.summarize.history import Chunk, history_chunks, recommendation_points
from tasks.summarize.preferences import NO_SUMMARY, _titles, select_dialogues, step_fields
from tasks.summarize.prompts import load_template, render

REDIAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "redial" / "redial_test.jsonl"


@dataclass
class Tally:
    seconds: float = 0.0
    summaries: int = 0
    rows: int = 0  # finished chains (workload 2)
    new_tokens: int = 0
    prompt_tokens: int = 0  # nominal: every prompt's full length
    computed_tokens: int = -1  # prompt tokens actually computed (local backend); -1: not known
    peak_rss: int = 0
    peak_kv_bytes: int = 0
    samples: list[str] = field(default_factory=list)
    texts: dict[object, str] = field(default_factory=dict)  # (chain, step) or first-step prompt -> answer


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


def _lake_dialogues(n_dialogues: int, workdir: Path) -> tuple[list[list[dict]], dict[str, str]]:
    import features

    lake = str(workdir / "lake")
    if features.table_version("turns", lake=lake) is None:  # ingested once per run
        ingest_dialogues(REDIAL, lake=lake)
    turns = features.read("turns", lake=lake).collect()
    chosen, _ = select_dialogues(turns, limit=n_dialogues)
    by_id = {
        rows["dialogue_id"][0]: rows.to_dicts()
        for rows in turns.filter(turns["dialogue_id"].is_in(chosen)).partition_by("dialogue_id")
    }
    return [by_id[d] for d in chosen], _titles(features.resolve_lake(lake))


def build_prompts(n_dialogues: int, workdir: Path, template_name: str) -> list[ChatPrompt]:
    """The first recurrent step of the last recommendation point of ``n_dialogues`` ReDial dialogues."""
    dialogues, titles = _lake_dialogues(n_dialogues, workdir)
    template, prompts = load_template(template_name), []
    for dialogue in dialogues:
        last = recommendation_points(sorted(dialogue, key=lambda t: t["turn_idx"]))[-1]
        chunks = history_chunks(dialogue, last, titles=titles)
        if chunks:
            prompts.append(render(template, step_fields(chunks[0], NO_SUMMARY)))
    return sorted(prompts, key=lambda p: p.user)[:n_dialogues]


def build_chains(n_dialogues: int, workdir: Path) -> list[list[list[Chunk]]]:
    """Per dialogue, the chunked history of every recommendation point (what the summarizer's chains read)."""
    dialogues, titles = _lake_dialogues(n_dialogues, workdir)
    out = []
    for dialogue in dialogues:
        points = recommendation_points(sorted(dialogue, key=lambda t: t["turn_idx"]))
        chains = [history_chunks(dialogue, p, titles=titles) for p in points]
        out.append([c for c in chains if c])
    return out


def configure(backend: LocalBackend, *, batch: int, plain: bool = False, reuse: bool = True) -> None:
    """Set the backend up for one contender, starting with no stored state: ``plain`` turns off shared prefixes,
    grouped unpadded prefill and decode-batch compaction (the engine without them)."""
    backend.release_cache()
    backend.batch_size, backend.reuse_cache, backend.share_prefix = batch, reuse, not plain
    backend._decoder.prefill_rows = batch if plain else CPU_PREFILL_ROWS
    backend._decoder.compact = not plain


def run_local(
    backend: LocalBackend,
    prompts: list[ChatPrompt],
    *,
    batch: int,
    max_new_tokens: int,
    tally: Tally,
    plain: bool = False,
) -> None:
    configure(backend, batch=batch, plain=plain)
    before = backend.prefilled_tokens
    with _PeakRss() as rss:
        start = time.perf_counter()
        out = backend.generate(prompts, max_new_tokens=max_new_tokens)
        tally.seconds += time.perf_counter() - start
    tally.peak_rss = max(tally.peak_rss, rss.peak)
    tally.summaries += len(out)
    tally.new_tokens += sum(g.new_tokens for g in out)
    tally.prompt_tokens += sum(backend.count_tokens(p) for p in prompts)
    tally.computed_tokens = max(tally.computed_tokens, 0) + backend.prefilled_tokens - before
    tally.samples += [g.text for g in out[:1]]
    tally.texts.update((p.user, g.text) for p, g in zip(prompts, out, strict=True))


def run_llama_cpp(llm: object, prompts: list[ChatPrompt], *, max_new_tokens: int, tally: Tally) -> None:
    with _PeakRss() as rss:
        start = time.perf_counter()
        for p in prompts:
            out = llm.create_chat_completion(  # type: ignore[attr-defined]
                messages=[{"role": "system", "content": p.system}, {"role": "user", "content": p.user}],
                max_tokens=max_new_tokens,
                temperature=0.0,
            )
            tally.new_tokens += out["usage"]["completion_tokens"]
            tally.prompt_tokens += out["usage"]["prompt_tokens"]
            text = (out["choices"][0]["message"]["content"] or "").strip()
            tally.texts[p.user] = text
            if len(tally.samples) < 2:
                tally.samples.append(text)
        tally.seconds += time.perf_counter() - start
    tally.peak_rss = max(tally.peak_rss, rss.peak)
    tally.summaries += len(prompts)


def step_key(dialogue: int, chunks: list[Chunk], step: int) -> str:
    """A chain step's identity, as the summarizer's: its dialogue and every chunk up to it (the chat so far)."""
    digest = hashlib.sha256(json.dumps([c.inputs() for c in chunks[: step + 1]], sort_keys=True).encode())
    return f"{dialogue}|{digest.hexdigest()[:16]}"


def run_chains_local(
    backend: LocalBackend,
    chains: list[tuple[int, list[Chunk]]],
    *,
    batch: int,
    reuse: bool,
    max_new_tokens: int,
    template_name: str,
    tally: Tally,
) -> None:
    """All chains level by level (step 1 of every chain in one call, then step 2, ...), as the summarizer does:
    a step shared by chains of one dialogue (same chunks so far) is generated once."""
    template = load_template(template_name)
    configure(backend, batch=batch, plain=not reuse, reuse=reuse)
    history: list[tuple[tuple[str, str], ...]] = [() for _ in chains]
    answers: dict[str, str] = {}
    before, sent = backend.prefilled_tokens, []
    with _PeakRss() as rss:
        start = time.perf_counter()
        for step in range(max(len(c) for _, c in chains)):
            live = [(i, d, c) for i, (d, c) in enumerate(chains) if step < len(c)]
            prompts = {
                i: render(
                    template,
                    step_fields(c[step], NO_SUMMARY),
                    history=history[i],
                    cache_from=step_key(d, c, step - 1) if step else None,
                    cache_as=step_key(d, c, step),
                )
                for i, d, c in live
            }
            pending = {p.cache_as: p for p in prompts.values() if p.cache_as not in answers}
            out = backend.generate(list(pending.values()), max_new_tokens=max_new_tokens)
            answers.update((key, g.text) for key, g in zip(pending, out, strict=True))
            tally.peak_kv_bytes = max(tally.peak_kv_bytes, backend.cached_bytes())
            backend.release_cache(
                [step_key(d, c, step - 1) for _, d, c in live if step]
                + [step_key(d, c, step) for _, d, c in live if step == len(c) - 1]
            )
            for i, _, _ in live:
                history[i] = (*history[i], (prompts[i].user, answers[prompts[i].cache_as]))  # type: ignore[index]
            sent += pending.values()
            tally.summaries += len(out)
            tally.new_tokens += sum(g.new_tokens for g in out)
        tally.seconds += time.perf_counter() - start
    tally.peak_rss = max(tally.peak_rss, rss.peak)
    tally.rows += len(chains)
    tally.texts.update(answers)
    tally.prompt_tokens += sum(backend.count_tokens(p) for p in sent)  # counted outside the timed part
    tally.computed_tokens = max(tally.computed_tokens, 0) + backend.prefilled_tokens - before
    tally.samples += [history[0][-1][1]]
    backend.release_cache()


def run_chains_llama_cpp(
    llm: object, chains: list[tuple[int, list[Chunk]]], *, max_new_tokens: int, template_name: str, tally: Tally
) -> None:
    """Chains one after another, each step sending the whole conversation (llama.cpp reuses its common prefix);
    a step already answered for an earlier chain of the same dialogue is not sent again."""
    template = load_template(template_name)
    answers: dict[str, str] = {}
    with _PeakRss() as rss:
        start = time.perf_counter()
        for d, chunks in chains:
            history: tuple[tuple[str, str], ...] = ()
            for step, chunk in enumerate(chunks):
                prompt = render(template, step_fields(chunk, NO_SUMMARY), history=history)
                key = step_key(d, chunks, step)
                if key not in answers:
                    out = llm.create_chat_completion(  # type: ignore[attr-defined]
                        messages=prompt.messages(), max_tokens=max_new_tokens, temperature=0.0
                    )
                    answers[key] = (out["choices"][0]["message"]["content"] or "").strip()
                    tally.new_tokens += out["usage"]["completion_tokens"]
                    tally.prompt_tokens += out["usage"]["prompt_tokens"]
                    tally.summaries += 1
                history = (*history, (prompt.user, answers[key]))
            if len(tally.samples) < 1:
                tally.samples.append(history[-1][1])
        tally.seconds += time.perf_counter() - start
    tally.peak_rss = max(tally.peak_rss, rss.peak)
    tally.rows += len(chains)
    tally.texts.update(answers)


def _rounds(contenders: list[str], parts: list[list], run: object) -> dict[str, Tally]:
    tallies = {c: Tally() for c in contenders}
    for r, part in enumerate(parts):
        order = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
        for name in order:
            run(name, part, tallies[name])  # type: ignore[operator]
            t = tallies[name]
            print(
                f"round {r + 1}/{len(parts)} {name}: {len(part)} units, so far {t.summaries / t.seconds:.3f} "
                f"summaries/s",
                flush=True,
            )
    return tallies


def _slices(items: list, rounds: int) -> list[list]:
    size = -(-len(items) // rounds)
    return [items[r * size : (r + 1) * size] for r in range(rounds) if items[r * size : (r + 1) * size]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialogues", type=int, default=64, help="first-step workload size (0: skip)")
    parser.add_argument("--chain-dialogues", type=int, default=64, help="recurrent-chain workload size (0: skip)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--template", default="preference_v2")
    parser.add_argument("--no-one-at-a-time", action="store_true", help="skip the first-step one-at-a-time contender")
    parser.add_argument(
        "--chain-one-at-a-time",
        action="store_true",
        help="add chains_reuse_one_at_a_time (KV reuse, one prompt per call)",
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch and llama.cpp threads")
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="a local model folder instead of SmolLM2 (smoke runs; llama.cpp is then skipped)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/out/summarize.json"))
    return parser


def _workloads(args: argparse.Namespace) -> tuple[list[ChatPrompt], list[list[list[Chunk]]]]:
    """Both workloads' inputs, from a temporary lake (empty where a workload is skipped)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        prompts = build_prompts(args.dialogues, Path(tmp), args.template) if args.dialogues else []
        dialogues = build_chains(args.chain_dialogues, Path(tmp)) if args.chain_dialogues else []
    print(f"workloads built in {time.perf_counter() - started:.0f} s", flush=True)
    return prompts, dialogues


def _engines(args: argparse.Namespace) -> tuple[LocalBackend, object | None]:
    """The local backend, and llama.cpp on the same GGUF (None when not installed or with ``--model-dir``)."""
    torch.set_num_threads(args.threads)
    backend = LocalBackend(args.model_dir) if args.model_dir else LocalBackend.smollm2()
    llm = None
    try:
        from llama_cpp import Llama

        if args.model_dir is None:
            llm = Llama(model_path=str(SMOLLM2.path()), n_ctx=4096, n_threads=args.threads, verbose=False)
    except ImportError:
        print("llama-cpp-python not installed: the llama_cpp contenders are skipped")
    return backend, llm


def first_steps(
    args: argparse.Namespace, prompts: list[ChatPrompt], backend: LocalBackend, llm: object | None
) -> dict[str, dict[str, object]]:
    """Workload 1: every contender on the first-step prompts, round by round; the report's rows."""
    contenders = (
        ["batched", "batched_plain"]
        + ([] if args.no_one_at_a_time else ["one_at_a_time"])
        + (["llama_cpp"] if llm else [])
    )

    def first(name: str, part: list[ChatPrompt], tally: Tally) -> None:
        if name == "llama_cpp":
            run_llama_cpp(llm, part, max_new_tokens=args.max_new_tokens, tally=tally)
        else:
            run_local(
                backend,
                part,
                batch=1 if name == "one_at_a_time" else args.batch,
                max_new_tokens=args.max_new_tokens,
                tally=tally,
                plain=name == "batched_plain",
            )

    tallies = _rounds(contenders, _slices(prompts, args.rounds), first)
    rows = report(f"Workload 1: first steps, {len(prompts)} prompts", tallies, args)
    _agreement(rows, tallies, "batched_plain")
    return rows


def recurrent_chains(
    args: argparse.Namespace, dialogues: list[list[list[Chunk]]], backend: LocalBackend, llm: object | None
) -> dict[str, dict[str, object]]:
    """Workload 2: every contender on whole dialogues' chains, round by round; the report's rows."""
    chains = [(d, c) for d, dialogue_chains in enumerate(dialogues) for c in dialogue_chains]
    by_dialogue = [[(d, c) for d, c in chains if d == k] for k in range(len(dialogues))]
    parts = [[x for group in part for x in group] for part in _slices(by_dialogue, args.rounds)]
    contenders = (
        ["chains_batched_full", "chains_batched_reuse"]
        + (["chains_reuse_one_at_a_time"] if args.chain_one_at_a_time else [])
        + (["chains_llama_cpp"] if llm else [])
    )

    def chain(name: str, part: list[tuple[int, list[Chunk]]], tally: Tally) -> None:
        if name == "chains_llama_cpp":
            run_chains_llama_cpp(
                llm, part, max_new_tokens=args.max_new_tokens, template_name=args.template, tally=tally
            )
        else:
            run_chains_local(
                backend,
                part,
                batch=1 if name.endswith("one_at_a_time") else args.batch,
                reuse="reuse" in name,
                max_new_tokens=args.max_new_tokens,
                template_name=args.template,
                tally=tally,
            )

    steps = sum(len(c) for _, c in chains)
    unique = len({step_key(d, c, k) for d, c in chains for k in range(len(c))})
    tallies = _rounds(contenders, parts, chain)
    rows = report(
        f"Workload 2: recurrent chains, {len(dialogues)} dialogues, {len(chains)} chains, "
        f"{steps} chain steps, {unique} distinct (generated)",
        tallies,
        args,
    )
    _agreement(rows, tallies, "chains_batched_full")
    return rows


def main() -> None:
    """Command line entry point: build the workloads, run the contenders, write ``--out``."""
    args = _parser().parse_args()
    prompts, dialogues = _workloads(args)
    backend, llm = _engines(args)
    results: dict[str, object] = {"args": {k: str(v) for k, v in vars(args).items()}}
    if prompts:
        results["first_steps"] = first_steps(args, prompts, backend, llm)
    if dialogues:
        results["chains"] = recurrent_chains(args, dialogues, backend, llm)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


def _agreement(rows: dict[str, dict[str, object]], tallies: dict[str, Tally], reference: str) -> None:
    """How many answers of each contender are identical to ``reference``'s (printed and recorded)."""
    ref = tallies[reference].texts
    for name, t in tallies.items():
        if t.texts:
            same = sum(t.texts.get(k) == v for k, v in ref.items())
            print(f"{name}: {same}/{len(ref)} answers identical to {reference}")
            rows[name]["identical_to_" + reference] = f"{same}/{len(ref)}"


def report(title: str, tallies: dict[str, Tally], args: argparse.Namespace) -> dict[str, dict[str, object]]:
    base_name = next((n for n in tallies if "llama_cpp" in n), next(iter(tallies)))
    base = tallies[base_name]
    rows: dict[str, dict[str, object]] = {}
    machine = platform.processor() or platform.machine()
    print(f"\n{title}, max_new_tokens {args.max_new_tokens}, batch {args.batch}, {machine}, {os.cpu_count()} cores")
    print(
        f"| contender | summaries/s | rows/s | prompt tok/s (computed) | new tok/s | avg new tok | peak RSS | "
        f"peak KV states | vs {base_name} |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, t in tallies.items():
        rate = t.summaries / t.seconds
        computed = t.computed_tokens / t.seconds if t.computed_tokens >= 0 else None
        rows[name] = {
            "summaries_per_s": rate,
            "rows_per_s": t.rows / t.seconds if t.rows else None,
            "prompt_tokens_per_s": t.prompt_tokens / t.seconds,
            "computed_prompt_tokens_per_s": computed,
            "new_tokens_per_s": t.new_tokens / t.seconds,
            "summaries": t.summaries,
            "rows": t.rows,
            "avg_prompt_tokens": t.prompt_tokens / t.summaries,
            "avg_new_tokens": t.new_tokens / t.summaries,
            "peak_rss_mib": t.peak_rss / 2**20,
            "peak_kv_state_mib": t.peak_kv_bytes / 2**20,
            "seconds": t.seconds,
            "samples": t.samples[:2],
        }
        row = rows[name]
        shown = f"{row['prompt_tokens_per_s']:.0f}" + (f" ({computed:.0f})" if computed is not None else "")
        print(
            f"| {name} | {rate:.3f} | {(t.rows / t.seconds) if t.rows else 0:.3f} | {shown} | "
            f"{row['new_tokens_per_s']:.1f} | {row['avg_new_tokens']:.1f} | {row['peak_rss_mib']:.0f} MiB | "
            f"{row['peak_kv_state_mib']:.0f} MiB | {rate / (base.summaries / base.seconds):.2f}x |"
        )
    for name, t in tallies.items():
        print(f"sample ({name}): {t.samples[0] if t.samples else ''}")
    return rows


if __name__ == "__main__":
    main()
