"""Recurrent preference summarizer (MLLM-MSR): per recommendation point, the seeker's past in chunks, each
step's prompt carrying the previous step's summary forward.

All chains of a batch of dialogues advance in lockstep (step 1 of every chain in one backend call, then step
2, ...). A step prompt answered once in a run is not sent again: the chains of one dialogue share their
earlier steps. A row's ``prompt_hash`` covers the template and the whole chunked history it summarises, so it
is known before anything is generated and a re-run skips the row without touching the backend.

With a conversational template (``preference_v2``, the default) a chain is one chat: step k+1 sends step k's
messages, step k's answer as the assistant turn and the next chunk. Each step asks the backend to keep its KV
state under a key scoped to the dialogue (``<dialogue_id>|<step hash>``) and the next step of the same chain
to start from it; a state is released as soon as no active chain of the batch needs it, and all of them when
the batch ends, so memory is bounded by one batch of dialogues.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import polars as pl

import features
from features import Lake, QuarantineRecord
from tasks.summarize.backends import Backend, CachingBackend, ChatPrompt
from tasks.summarize.batches import SummarizeRun, batch_result, generate_counted
from tasks.summarize.checks import Checked
from tasks.summarize.history import Chunk, history_chunks, recommendation_points
from tasks.summarize.prompts import Template, load_template, prompt_hash, render
from tasks.summarize.stage import BackendIdentity, BatchResult, RunOptions, SummarizeConfig, SummarizeSummary

SOURCE = "summarize:preference"
NO_SUMMARY = "(none yet)"  # the previous summary of a chain's first step
_TURN_COLUMNS = ["dialogue_id", "turn_idx", "role", "text", "mentioned_item_ids", "liked", "seen"]


@dataclass
class _Chain:
    """The recurrent steps towards one row."""

    dialogue_id: str
    upto_turn: int
    digest: str
    chunks: list[Chunk]
    previous: str = NO_SUMMARY
    step: int = 0
    failure: str | None = None
    last_text: str = ""
    step_hashes: list[str] = field(default_factory=list)
    history: tuple[tuple[str, str], ...] = ()  # conversational templates: the (user, answer) steps so far

    def cache_key(self, step: int) -> str | None:
        """The backend cache key of step ``step`` (0-based) of this chain: scoped to the dialogue."""
        return f"{self.dialogue_id}|{self.step_hashes[step]}" if 0 <= step < len(self.step_hashes) else None

    @property
    def active(self) -> bool:
        return self.failure is None and self.step < len(self.chunks)


def _key(dialogue_id: str, upto_turn: int, model_id: str, digest: str) -> str:
    return f"{dialogue_id}@{upto_turn}|{model_id}|{digest}"


def step_fields(chunk: Chunk, previous: str) -> dict[str, str]:
    """The template fields of one recurrent step."""
    items = "\n".join(i.describe() for i in chunk.items) or "(none)"
    words = "\n".join(f'- "{w}"' for w in chunk.words) or "(nothing)"
    return {"previous": previous, "items": items, "words": words}


def _item_summaries(model_id: str, lake: Lake) -> dict[str, str]:
    columns = ["item_id", "model_id", "summary", "generated_at"]
    rows = features.read("item_summaries", columns=columns, missing="empty", lake=lake).collect()
    latest = rows.filter(pl.col("model_id") == model_id).sort("generated_at").unique("item_id", keep="last")
    return dict(zip(latest["item_id"], latest["summary"], strict=True))


def _titles(lake: Lake) -> dict[str, str]:
    items = (
        features.read("items", columns=["item_id", "title"], missing="empty", lake=lake).collect().drop_nulls("title")
    )
    return dict(zip(items["item_id"], items["title"], strict=True))


def select_dialogues(
    turns: pl.DataFrame, *, limit: int | None, dialogue_ids: Sequence[str] | None = None
) -> tuple[list[str], int]:
    """(chosen dialogue ids, how many have a recommendation point): the first ``limit`` by id."""
    points = turns.filter((pl.col("role") == "recommender") & (pl.col("mentioned_item_ids").list.len() > 0))
    ids = sorted(set(points["dialogue_id"]))
    if dialogue_ids is not None:
        wanted = set(dialogue_ids)
        ids = [d for d in ids if d in wanted]
    return (ids if limit is None else ids[:limit]), len(ids)


@dataclass
class PreferenceJob:
    """One batch of dialogues: the recurrent chains still to generate (planned, with their history chunks)."""

    index: int
    chains: list[_Chain]
    dialogues: int


def advance_preference_batch(
    job: PreferenceJob, *, backend: Backend, config: SummarizeConfig, model_loads: int = 0
) -> BatchResult:
    """Run one batch's chains to their ends (all in lockstep) and return the rows; writes nothing."""
    template, counts = load_template(config.preference_template), SummarizeSummary("preferences", backend.model_id)
    _advance(job.chains, template, backend, config, counts)
    rows, failures = _rows(job.chains, backend.model_id)
    return batch_result(job.index, rows, failures, size=job.dialogues, counts=counts, model_loads=model_loads)


def summarize_preferences(
    *,
    backend: BackendIdentity,
    lake: Lake | str | None = None,
    config: SummarizeConfig | None = None,
    limit: int | None = None,
    dialogue_ids: Sequence[str] | None = None,
    options: RunOptions | None = None,
) -> SummarizeSummary:
    """Write a ``preference_summaries`` row per (dialogue, recommendation turn) not answered by this model yet.

    Args:
        backend: the LLM.
        lake: lake root.
        config: options (default ``SummarizeConfig()``); ``chunk_size`` items per recurrent step.
        limit: summarise only the first ``limit`` dialogues (by id) that have a recommendation point.
        dialogue_ids: only these dialogues.
        options: where the batches run (default: here) and how the run reports; a runner gets a
            ``PreferenceJob`` per batch of dialogues (planned here), to run with ``advance_preference_batch``;
            progress counts dialogues (done, chosen).

    Returns:
        The ``SummarizeSummary``; a re-run over unchanged inputs generates nothing.
    """
    run = SummarizeRun("preferences", backend, lake=lake, config=config, options=options)
    turns = features.read("turns", columns=_TURN_COLUMNS, missing="empty", lake=run.lake).collect()
    chosen, run.summary.dialogues_total = select_dialogues(turns, limit=limit, dialogue_ids=dialogue_ids)
    run.summary.dialogues = len(chosen)
    return run.commit_batches(
        _jobs(run, turns, chosen),
        local=partial(advance_preference_batch, config=run.config),
        table="preference_summaries",
        inputs=["turns", "items", "item_summaries", "preference_summaries"],
        total=len(chosen),
    )


def _jobs(run: SummarizeRun, turns: pl.DataFrame, chosen: list[str]) -> Iterator[PreferenceJob]:
    """The batches of ``chosen`` dialogues with chains left to generate, planned as the runner asks for them;
    a batch with none is counted in ``run.skipped``."""
    by_dialogue = turns.filter(pl.col("dialogue_id").is_in(chosen)).partition_by("dialogue_id", as_dict=True)
    titles, item_summaries = _titles(run.lake), _item_summaries(run.model_id, run.lake)
    done = run.done_keys(
        "preference_summaries",
        SOURCE,
        lambda r: _key(r["dialogue_id"], r["upto_turn"], r["model_id"], r["prompt_hash"]),
    )
    template = load_template(run.config.preference_template)

    def jobs() -> Iterator[PreferenceJob]:
        for n, batch in enumerate(run.batches(chosen)):
            chains = [
                chain
                for dialogue_id in batch
                for chain in _plan(
                    dialogue_id, by_dialogue[(dialogue_id,)].to_dicts(), template, run, titles, item_summaries, done
                )
            ]
            if chains:
                yield PreferenceJob(n, chains, len(batch))
            else:
                run.skipped += len(batch)

    return jobs()


def _plan(
    dialogue_id: str,
    turns: list[dict[str, Any]],
    template: Template,
    run: SummarizeRun,
    titles: Mapping[str, str],
    item_summaries: Mapping[str, str],
    done: set[str],
) -> list[_Chain]:
    """The chains of one dialogue's recommendation points that this model has not answered yet."""
    chains, summary, chunk_size = [], run.summary, run.config.chunk_size
    points = recommendation_points(sorted(turns, key=lambda t: t["turn_idx"]))
    for upto in points if run.config.final_points else points[:-1]:
        chunks = history_chunks(
            turns, upto, chunk_size=chunk_size, titles=titles, summaries=item_summaries, labels=run.config.labels
        )
        if not chunks:
            summary.no_history += 1
            continue
        summary.candidates += 1
        digest = prompt_hash(template, {"chunk_size": chunk_size, "chunks": [c.inputs() for c in chunks]})
        if _key(dialogue_id, upto, run.model_id, digest) in done:
            summary.cached += 1
        else:
            chains.append(_Chain(dialogue_id, upto, digest, chunks))
    return chains


def _advance(
    chains: list[_Chain], template: Template, backend: Backend, cfg: SummarizeConfig, summary: SummarizeSummary
) -> None:
    """Run every chain to its end (or its first unusable step), one step level per backend call."""
    answers: dict[tuple[str, str], Checked] = {}  # (dialogue, step hash) -> answer: shared steps generated once
    held: set[str] = set()  # backend cache keys stored by this batch and not released yet
    try:
        while active := [c for c in chains if c.active]:
            pending: dict[tuple[str, str], ChatPrompt] = {}
            users: dict[int, str] = {}  # id(chain) -> this step's user message
            for chain in active:
                fields = step_fields(chain.chunks[chain.step], chain.previous)
                if template.conversational:  # the step's hash covers the whole chat so far
                    parent = chain.step_hashes[-1] if chain.step_hashes else None
                    digest = prompt_hash(template, {**fields, "parent": parent})
                else:
                    digest = prompt_hash(template, fields)
                chain.step_hashes.append(digest)
                prompt = _step_prompt(chain, template, fields)
                users[id(chain)] = prompt.user
                if (chain.dialogue_id, digest) not in answers:
                    pending.setdefault((chain.dialogue_id, digest), prompt)
            results = (
                generate_counted(backend, list(pending.values()), cfg.preference_checks, cfg, summary)
                if pending
                else []
            )
            answers.update(zip(pending, results, strict=True))
            held.update(p.cache_as for p in pending.values() if p.cache_as)
            for chain in active:
                answer = answers[(chain.dialogue_id, chain.step_hashes[-1])]
                chain.last_text = answer.text
                if answer.reason:
                    chain.failure = f"{answer.reason} (step {chain.step + 1}/{len(chain.chunks)})"
                if template.conversational:
                    chain.history = (*chain.history, (users[id(chain)], answer.text))
                chain.previous, chain.step = answer.text, chain.step + 1
            needed = {c.cache_key(c.step - 1) for c in chains if c.active}
            _release(backend, held - needed)
            held &= needed
    finally:
        _release(backend, held)


def _step_prompt(chain: _Chain, template: Template, fields: dict[str, str]) -> ChatPrompt:
    if not template.conversational:
        return render(template, fields)
    return render(
        template,
        fields,
        history=chain.history,
        cache_from=chain.cache_key(chain.step - 1),
        cache_as=chain.cache_key(chain.step),
    )


def _release(backend: Backend, keys: Iterable[str | None]) -> None:
    wanted = [k for k in keys if k]
    if wanted and isinstance(backend, CachingBackend):
        backend.release_cache(wanted)


def _rows(chains: list[_Chain], model_id: str) -> tuple[list[dict[str, object]], list[QuarantineRecord]]:
    rows: list[dict[str, object]] = []
    failures: list[QuarantineRecord] = []
    for c in chains:
        if c.failure:
            key = _key(c.dialogue_id, c.upto_turn, model_id, c.digest)
            failures.append(QuarantineRecord(SOURCE, key, c.failure, c.last_text))
        else:
            rows.append(
                {
                    "dialogue_id": c.dialogue_id,
                    "upto_turn": c.upto_turn,
                    "model_id": model_id,
                    "prompt_hash": c.digest,
                    "summary": c.previous,
                }
            )
    return rows, failures


def dialogue_sample(*, lake: Lake | str | None = None, limit: int | None = None) -> dict[str, object]:
    """The dialogues a run with ``limit`` summarises, the items they mention (for the item summarizer to
    cover first), and how many dialogues have a recommendation point in all."""
    resolved = features.resolve_lake(lake)
    columns = ["dialogue_id", "turn_idx", "role", "mentioned_item_ids"]
    turns = features.read("turns", columns=columns, missing="empty", lake=resolved).collect()
    chosen, total = select_dialogues(turns, limit=limit)
    mentioned = turns.filter(pl.col("dialogue_id").is_in(chosen))["mentioned_item_ids"].explode().drop_nulls()
    return {"dialogue_ids": chosen, "item_ids": sorted(set(mentioned)), "dialogues_total": total}


__all__ = [
    "SOURCE",
    "PreferenceJob",
    "advance_preference_batch",
    "dialogue_sample",
    "select_dialogues",
    "step_fields",
    "summarize_preferences",
]
