"""The ``mmcrs`` command line. Every command accepts ``--lake``; exit codes: 0 ok, 2 unusable input.

Prefect is configured for offline ephemeral runs (``flows.env``) before anything imports it, so the
flows run with no server to start and no network.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flows import env

app = typer.Typer(add_completion=False, no_args_is_help=True, help="mmcrs: multimodal CRS feature pipeline.")
features_app = typer.Typer(no_args_is_help=True, help="Inspect and pull versioned lake tables.")
app.add_typer(features_app, name="features")
console = Console()
err = Console(stderr=True)

LakeOpt = Annotated[
    str | None,
    typer.Option("--lake", help="Lake root (folder or URI); default MMCRS_LAKE, then mmcrs.toml, then ./lake."),
]


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=2)


def _print_counts(results: dict[str, dict[str, object]]) -> None:
    table = Table(title="ingest")
    for column in ("input", "read", "written", "updated", "unchanged", "quarantined"):
        table.add_column(column, justify="left" if column == "input" else "right")
    for name, s in results.items():
        table.add_row(name, *(str(s[c]) for c in ("read", "written", "updated", "unchanged", "quarantined")))
    console.print(table)
    for name, s in results.items():
        reasons = s.get("quarantine_reasons") or {}
        assert isinstance(reasons, dict)
        for reason, count in sorted(reasons.items()):
            console.print(f"  quarantined ({name}): {reason}: {count}")


def _check_inputs(dialogues: Path | None, dialogue_format: str | None, catalog: Path | None) -> None:
    from tasks.ingest_dialogues import DialogueInputError, detect_format

    for path in (p for p in (dialogues, catalog) if p is not None):
        if not path.is_file():
            raise _fail(f"file not found: {path}")
    if dialogues is not None:
        try:
            detect_format(dialogues, dialogue_format)
        except DialogueInputError as exc:
            raise _fail(str(exc)) from None


@app.command()
def ingest(
    dialogues: Annotated[Path | None, typer.Option(help="ReDial JSONL or INSPIRED TSV file.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Dialogue format: redial | inspired.")] = None,
    catalog: Annotated[Path | None, typer.Option(help="Item catalog: CSV, JSONL or Parquet.")] = None,
    catalog_format: Annotated[str | None, typer.Option(help="Catalog format: csv | jsonl | parquet.")] = None,
    column: Annotated[
        list[str] | None, typer.Option(help="Catalog column mapping THEIRS=OURS, e.g. movie_title=title (repeatable).")
    ] = None,
    lake: LakeOpt = None,
) -> None:
    """Ingest dialogues and/or a catalog into the lake (a Prefect flow run)."""
    if dialogues is None and catalog is None:
        raise _fail("nothing to ingest: pass --dialogues and/or --catalog")
    _check_inputs(dialogues, fmt, catalog)
    mapping = dict(pair.split("=", 1) for pair in column or [] if "=" in pair)
    if len(mapping) != len(column or []):
        raise _fail("--column takes THEIRS=OURS")
    from flows.ingest import ingest_flow
    from tasks.ingest_catalog import CatalogInputError
    from tasks.ingest_dialogues import DialogueInputError

    try:
        results = ingest_flow(
            dialogues=str(dialogues) if dialogues else None, dialogue_format=fmt,
            catalog=str(catalog) if catalog else None, catalog_format=catalog_format, lake=lake,
            catalog_columns=mapping or None,
        )
    except (DialogueInputError, CatalogInputError) as exc:
        raise _fail(str(exc)) from None
    _print_counts(results)


def _print_crawl(summary: dict[str, object]) -> None:
    console.print(
        f"crawl: {summary['urls']} URLs, {summary['already_stored']} already stored, {summary['requested']} "
        f"requested, {summary['stored']} stored, {summary['not_modified']} not modified, "
        f"{summary['failed']} failed ({summary['elapsed_s']} s)"
    )
    reasons = summary.get("quarantine_reasons") or {}
    assert isinstance(reasons, dict)
    for reason, count in sorted(reasons.items()):
        console.print(f"  quarantined (crawl): {reason}: {count}")


@app.command()
def crawl(
    refresh_posters: Annotated[bool, typer.Option(help="Re-check stored posters (ETag / Last-Modified).")] = False,
    allow_host: Annotated[
        list[str] | None, typer.Option(help="Host exempt from the private-address refusal (repeatable).")
    ] = None,
    file_root: Annotated[Path | None, typer.Option(help="Folder local poster/plot paths must lie in.")] = None,
    lake: LakeOpt = None,
) -> None:
    """Fetch the posters and plots the catalog points to that are not stored yet (a Prefect flow run)."""
    from flows.crawl import crawl_flow

    summary = crawl_flow(lake=lake, refresh_posters=refresh_posters, allow_hosts=allow_host or [],
                         file_root=str(file_root.resolve()) if file_root else None)
    _print_crawl(summary)


def _print_embed(summary: dict[str, object]) -> None:
    modalities = summary.get("modalities") or {}
    assert isinstance(modalities, dict)
    table = Table(title="embed")
    for column in ("modality", "model_id", "candidates", "up_to_date", "embedded", "failed", "truncated",
                   "items_per_s"):
        table.add_column(column, justify="left" if column in ("modality", "model_id") else "right")
    for row in modalities.values():
        table.add_row(*(str(row[c]) for c in ("modality", "model_id", "candidates", "up_to_date", "embedded",
                                              "failed", "truncated", "items_per_s")))
    console.print(table)
    for warning in summary.get("warnings") or []:  # type: ignore[union-attr]
        console.print(f"[bold yellow]warning:[/] {warning}")


@app.command()
def embed(
    modality: Annotated[
        list[str] | None, typer.Option(help="image | clip_text | text (repeatable); default all three.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model spec (random:ARCH@SEED, local:PATH, package:MOD/DIR, hub:ID) of the "
                                      "CLIP model, or of the text encoder when only --modality text is given.")
    ] = None,
    text_model: Annotated[str | None, typer.Option(help="Sentence-encoder spec (default: packaged MiniLM).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images / texts per forward pass.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:N (default: CUDA when present).")] = None,
    lake: LakeOpt = None,
) -> None:
    """Embed item posters and texts that have no vector yet for the chosen models (a Prefect flow run)."""
    from flows.embed import embed_flow
    from training.encoders import ModelSpec, ModelSpecError

    unknown = set(modality or []) - {"image", "clip_text", "text"}
    if unknown:
        raise _fail(f"unknown modality: {', '.join(sorted(unknown))} (image | clip_text | text)")
    text_only = modality == ["text"]
    clip_spec, text_spec = (None, model) if text_only else (model, text_model)
    try:
        for spec in (s for s in (clip_spec, text_spec) if s):
            ModelSpec.parse(spec)
    except ModelSpecError as exc:
        raise _fail(str(exc)) from None
    summary = embed_flow(lake=lake, modalities=modality, clip_model=clip_spec, text_model=text_spec,
                         batch_size=batch_size, device=device)
    _print_embed(summary)


def _print_graphs(summary: dict[str, object]) -> None:
    built, skipped = summary.get("built") or {}, summary.get("skipped") or {}
    assert isinstance(built, dict) and isinstance(skipped, dict)
    table = Table(title="graphs")
    columns = ("nodes", "edges", "isolated", "degree_mean", "degree_max", "mean_neighbour_similarity", "seconds")
    table.add_column("graph")
    for column in columns:
        table.add_column(column, justify="right")
    for graph, stats in built.items():
        table.add_row(graph, *(str(stats.get(c, "")) for c in columns))
    console.print(table)
    for graph, why in skipped.items():
        console.print(f"  {graph}: skipped — {why}")


@app.command()
def graphs(
    graph: Annotated[
        list[str] | None,
        typer.Option(help="image_knn | clip_text_knn | text_knn | co_mention | transition (repeatable); default all."),
    ] = None,
    k: Annotated[int | None, typer.Option(help="Neighbours per item in kNN graphs (default 10).")] = None,
    backend: Annotated[str | None, typer.Option(help="kNN backend: torch | faiss | faiss-approx.")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even when inputs and parameters are unchanged.")] = False,
    lake: LakeOpt = None,
) -> None:
    """Build the item graphs whose inputs or parameters changed (a Prefect flow run)."""
    from flows.graphs import graphs_flow
    from tasks.graphs.stage import GRAPHS

    unknown = set(graph or []) - set(GRAPHS)
    if unknown:
        raise _fail(f"unknown graph: {', '.join(sorted(unknown))} ({' | '.join(GRAPHS)})")
    if backend not in (None, "torch", "faiss", "faiss-approx"):
        raise _fail(f"unknown backend {backend!r} (torch | faiss | faiss-approx)")
    if k is not None and k < 1:
        raise _fail("--k must be at least 1")
    _print_graphs(graphs_flow(lake=lake, graphs=graph, k=k, backend=backend, force=force))
def _print_summarize(results: dict[str, object]) -> None:
    for what, summary in results.items():
        assert isinstance(summary, dict)
        console.print(
            f"summarize {what} ({summary['model_id']}): {summary['candidates']} wanted, {summary['cached']} cached, "
            f"{summary['generated']} generated, {summary['written']} written, {summary['quarantined']} quarantined "
            f"({summary['elapsed_s']} s)"
        )
        reasons = summary.get("quarantine_reasons") or {}
        assert isinstance(reasons, dict)
        for reason, count in sorted(reasons.items()):
            console.print(f"  quarantined (summarize {what}): {reason}: {count}")
        if what == "items" and summary["images"] != "used":
            console.print(f"  item images: {summary['images']}")
        if what == "preferences" and summary["dialogues"] != summary["dialogues_total"]:
            console.print(f"  a sample: {summary['dialogues']} of {summary['dialogues_total']} dialogues "
                          "(--limit N sets how many; summarising all of them takes long on a CPU)")


@app.command()
def summarize(
    what: Annotated[str, typer.Option(help="items | preferences | both (items of the dialogues first).")] = "both",
    backend: Annotated[str, typer.Option(help="local (HF model folder) | openai (compatible server).")] = "local",
    limit: Annotated[int | None, typer.Option(help="At most N items (--what items) or N dialogues.")] = None,
    model_dir: Annotated[Path | None, typer.Option(help="Local model folder (default: SmolLM2-135M-Instruct).")] = None,
    base_url: Annotated[str, typer.Option(help="OpenAI-compatible API root.")] = "http://127.0.0.1:8000/v1",
    model: Annotated[str, typer.Option(help="Model name on the server.")] = "default",
    api_key_env: Annotated[str, typer.Option(help="Environment variable holding the API key.")] = "OPENAI_API_KEY",
    api_key_block: Annotated[str | None, typer.Option(help="Prefect Secret block holding the API key.")] = None,
    images: Annotated[bool, typer.Option(help="The server is multimodal: send item posters.")] = False,
    chunk_size: Annotated[int, typer.Option(help="History items per recurrent step.")] = 3,
    max_new_tokens: Annotated[int, typer.Option(help="Cap of one answer.")] = 64,
    batch_size: Annotated[int, typer.Option(help="Prompts per local generate call / per commit.")] = 16,
    lake: LakeOpt = None,
) -> None:
    """LLM item summaries and recurrent user-preference summaries (MLLM-MSR; a Prefect flow run)."""
    if what not in ("items", "preferences", "both") or backend not in ("local", "openai"):
        raise _fail("--what takes items | preferences | both, --backend local | openai")
    from flows.summarize import summarize_flow

    results = summarize_flow(lake=lake, what=what, backend=backend, limit=limit,  # type: ignore[arg-type]
                             model_dir=str(model_dir) if model_dir else None, base_url=base_url, model=model,
                             api_key_env=api_key_env, api_key_block=api_key_block, accepts_images=images,
                             chunk_size=chunk_size, max_new_tokens=max_new_tokens, batch_size=batch_size)
    _print_summarize(results)


@app.command()
def demo(
    lake: LakeOpt = None,
    workdir: Annotated[Path, typer.Option(help="Where demo inputs (catalog, posters) are written.")] = Path(".demo"),
    items: Annotated[int | None, typer.Option(help="Limit the catalog to the first N MovieLens items.")] = None,
    synthetic_dialogues: Annotated[int, typer.Option(help="Synthetic dialogues when ReDial is absent.")] = 500,
    redial: Annotated[bool, typer.Option(help="Use ../shared/data/redial when present.")] = True,
    summarize_dialogues: Annotated[
        int, typer.Option(help="Dialogues to summarise with the LLM (a sample: slow on a CPU; 0 skips).")
    ] = 4,
) -> None:
    """Build the demo catalog and dialogues from packaged real data and run the pipeline on them."""
    from features import resolve_lake
    from flows.demo import demo_flow

    result = demo_flow(lake=lake, workdir=str(workdir), items=items, synthetic_dialogues=synthetic_dialogues,
                       use_redial=redial, summarize_dialogues=summarize_dialogues)
    inputs = result["inputs"]
    assert isinstance(inputs, dict)
    console.print(f"demo catalog: {inputs['n_items']} items ({inputs['n_enriched']} enriched), "
                  f"dialogues: {inputs['dialogue_source']} ({inputs['dialogues']})")
    ingested, crawled, embedded, built = result["ingest"], result["crawl"], result["embed"], result["graphs"]
    assert isinstance(ingested, dict) and isinstance(crawled, dict) and isinstance(embedded, dict)
    assert isinstance(built, dict)
    _print_counts(ingested)
    _print_crawl(crawled)
    _print_embed(embedded)
    _print_graphs(built)
    summarized = result.get("summarize") or {}
    assert isinstance(summarized, dict)
    _print_summarize(summarized)
    root = resolve_lake(lake).root
    console.print(f"\nThe lake is at [bold]{root}[/]. Read it with:")
    console.print(f"  mmcrs features tables --lake {root}")
    console.print(f"  mmcrs features show turns --lake {root} --limit 5")
    console.print(f"  python -c 'import features; print(features.read(\"turns\", lake=\"{root}\").collect())'")


@features_app.command("tables")
def features_tables(lake: LakeOpt = None) -> None:
    """List the lake's tables with version and row count."""
    import features

    frame = features.tables(lake)
    table = Table(title=f"tables in {features.resolve_lake(lake).root}")
    for column in ("table", "exists", "version", "rows", "keys", "description"):
        table.add_column(column, overflow="fold")
    for row in frame.iter_rows(named=True):
        table.add_row(*(str("" if row[c] is None else row[c]) for c in ("table", "exists", "version", "rows", "keys",
                                                                           "description")))
    console.print(table)


@features_app.command("history")
def features_history(table: str, lake: LakeOpt = None) -> None:
    """Versions of one table, newest first, with the stage and run that wrote each."""
    import features

    try:
        frame = features.history(table, lake)
    except features.LakeError as exc:
        raise _fail(str(exc)) from None
    out = Table(title=f"history of {table}")
    columns = ("version", "timestamp", "operation", "stage", "flow_run_id", "input_versions")
    for column in columns:
        out.add_column(column, overflow="fold")
    for row in frame.iter_rows(named=True):
        out.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
    console.print(out)


@features_app.command("show")
def features_show(
    table: str,
    version: Annotated[int | None, typer.Option(help="Delta version to read.")] = None,
    as_of: Annotated[datetime | None, typer.Option("--as-of", help="Version current at this time (UTC).")] = None,
    limit: Annotated[int, typer.Option(help="Rows to print.")] = 10,
    out: Annotated[Path | None, typer.Option(help="Write the whole table (at that version) to a Parquet file.")] = None,
    lake: LakeOpt = None,
) -> None:
    """Print (or pull to Parquet) a table at its latest version, a version, or a point in time."""
    import polars as pl

    import features

    try:
        frame = features.read(table, version=version, as_of=as_of, lake=lake)
    except (features.LakeError, KeyError) as exc:
        raise _fail(str(exc)) from None
    if out is not None:
        frame.sink_parquet(out)
        console.print(f"wrote {out}")
        return
    with pl.Config(tbl_rows=limit, fmt_str_lengths=60, tbl_width_chars=160):
        console.print(frame.head(limit).collect())


def main() -> None:
    """Console entry point."""
    env.configure()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
