"""Item summarizer (MLLM-MSR): an item's text, and its poster when the backend takes images, to a short description."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import polars as pl

import features
from features import Lake, QuarantineRecord
from features.blobs import poster_store
from tasks.summarize.backends import Backend
from tasks.summarize.batches import SummarizeRun, batch_result, generate_counted
from tasks.summarize.prompts import Template, load_template, prompt_hash, render
from tasks.summarize.stage import STAGE, BackendIdentity, BatchResult, RunOptions, SummarizeConfig, SummarizeSummary

SOURCE = "summarize:item"
_COLUMNS = ["item_id", "title", "year", "text", "plot_text", "attributes", "poster_sha256"]


def _details(row: dict[str, object]) -> str:
    text = str(row.get("text") or row.get("plot_text") or "")[:600]
    attributes = json.loads(str(row["attributes"])) if row.get("attributes") else {}
    facts = "; ".join(f"{k}: {v}" for k, v in attributes.items() if v not in (None, "", []))[:300]
    return "\n".join(part for part in (facts, text) if part)


def _inputs(row: dict[str, object], *, with_image: bool) -> dict[str, object]:
    return {
        "title": row["title"] or row["item_id"],
        "year": row["year"],
        "details": _details(row),
        "poster_sha256": row["poster_sha256"] if with_image else None,
    }


def _fields(inputs: dict[str, object]) -> dict[str, str]:
    year = f" ({inputs['year']})" if inputs["year"] else ""
    note = "\nThe movie's poster is attached." if inputs["poster_sha256"] else ""
    return {"title": str(inputs["title"]), "year": year, "details": str(inputs["details"]), "image_note": note}


def _key(item_id: str, model_id: str, digest: str) -> str:
    return f"{item_id}|{model_id}|{digest}"


@dataclass(frozen=True)
class ItemJob:
    """One batch of items to summarise: ``(item_id, prompt_hash, prompt inputs)`` each."""

    index: int
    entries: list[tuple[str, str, dict[str, object]]]


def generate_item_batch(
    job: ItemJob, *, backend: Backend, config: SummarizeConfig, lake: Lake, model_loads: int = 0
) -> BatchResult:
    """Render, generate and check one batch of item prompts; writes nothing (the caller commits the result).

    ``lake`` (root URI and storage options) is where the posters are read when the backend takes images.
    """
    template, counts = load_template(config.item_template), SummarizeSummary("items", backend.model_id)
    blobs = poster_store(lake) if backend.accepts_images else None
    prompts = [
        render(
            template,
            _fields(inputs),
            images=(blobs.get(str(inputs["poster_sha256"])),) if blobs and inputs["poster_sha256"] else (),
        )
        for _, _, inputs in job.entries
    ]
    rows: list[dict[str, object]] = []
    failures: list[QuarantineRecord] = []
    for (item_id, digest, _), result in zip(
        job.entries, generate_counted(backend, prompts, config.item_checks, config, counts), strict=True
    ):
        if result.reason:
            failures.append(
                QuarantineRecord(SOURCE, _key(item_id, backend.model_id, digest), result.reason, result.text)
            )
        else:
            rows.append(
                {"item_id": item_id, "model_id": backend.model_id, "prompt_hash": digest, "summary": result.text}
            )
    return batch_result(job.index, rows, failures, size=len(job.entries), counts=counts, model_loads=model_loads)


def summarize_items(
    *,
    backend: BackendIdentity,
    lake: Lake | str | None = None,
    config: SummarizeConfig | None = None,
    item_ids: Sequence[str] | None = None,
    limit: int | None = None,
    options: RunOptions | None = None,
) -> SummarizeSummary:
    """Write an ``item_summaries`` row for every (selected) item whose prompt this model has not answered.

    Args:
        backend: the LLM; with ``accepts_images`` the stored poster goes along, otherwise the image is skipped.
            With a ``runner`` its identity is enough (``BackendInfo``): the workers hold the model.
        lake: lake root.
        config: options (default ``SummarizeConfig()``).
        item_ids: only these items (default: the whole catalog).
        limit: at most this many items (the first by item_id).
        options: where the batches run (default: here) and how the run reports; a runner gets an ``ItemJob``
            per batch, to run with ``generate_item_batch``; progress counts items.

    Returns:
        The ``SummarizeSummary``; a re-run over unchanged items generates nothing.
    """
    run = SummarizeRun("items", backend, lake=lake, config=config, options=options)
    items = _select(run.lake, item_ids=item_ids, limit=limit)
    run.summary.images = _images(items, with_image=backend.accepts_images)
    todo = _plan(items, load_template(run.config.item_template), run, with_image=backend.accepts_images)
    return run.commit_batches(
        (ItemJob(i, list(batch)) for i, batch in enumerate(run.batches(todo))),
        local=partial(generate_item_batch, config=run.config, lake=run.lake),
        table="item_summaries",
        inputs=["items", "item_summaries"],
        total=len(todo),
    )


def _select(lake: Lake, *, item_ids: Sequence[str] | None, limit: int | None) -> pl.DataFrame:
    """The catalog's items (only ``item_ids`` when given), by item_id, at most ``limit`` of them."""
    items = features.read("items", columns=_COLUMNS, missing="empty", lake=lake).collect().sort("item_id")
    if item_ids is not None:
        items = items.filter(pl.col("item_id").is_in(list(item_ids)))
    return items.head(limit) if limit is not None else items


def _images(items: pl.DataFrame, *, with_image: bool) -> str:
    """What happens to the items' posters: used, skipped (a text-only backend), or none stored."""
    has_posters = items["poster_sha256"].is_not_null().any()
    if with_image and has_posters:
        return "used"
    return "skipped: the backend takes no images" if has_posters else "none stored"


def _plan(
    items: pl.DataFrame, template: Template, run: SummarizeRun, *, with_image: bool
) -> list[tuple[str, str, dict[str, object]]]:
    """(item_id, prompt_hash, inputs) of the items this model has not answered yet."""
    done = run.done_keys("item_summaries", SOURCE, lambda r: _key(r["item_id"], r["model_id"], r["prompt_hash"]))
    todo = []
    for row in items.iter_rows(named=True):
        inputs = _inputs(row, with_image=with_image)
        digest = prompt_hash(template, inputs)
        run.summary.candidates += 1
        if _key(row["item_id"], run.model_id, digest) in done:
            run.summary.cached += 1
        else:
            todo.append((row["item_id"], digest, inputs))
    return todo


__all__ = ["SOURCE", "STAGE", "ItemJob", "generate_item_batch", "summarize_items"]
