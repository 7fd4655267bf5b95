"""``mmcrs`` stage commands: ingest, crawl, summarize, embed, graphs, train, and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flows.cli.app import DEFAULT_MODEL, LakeOpt, app, console
from flows.cli.app import fail as _fail
from flows.cli.ops import print_stages

TaskRunnerOpt = Annotated[str, typer.Option(help="default (in this process) | dask (shards on Dask workers).")]
DaskAddressOpt = Annotated[
    str | None, typer.Option(help="Dask scheduler (tcp://host:8786); default: a local cluster (--task-runner dask).")
]
DaskWorkersOpt = Annotated[int, typer.Option(help="Local Dask worker processes (--task-runner dask).")]


def _check_runner(task_runner: str, dask_address: str | None, dask_workers: int) -> None:
    from flows.runners import check_task_runner

    try:
        check_task_runner(task_runner, dask_address, dask_workers)
    except ValueError as exc:
        raise _fail(str(exc)) from None


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
    from tasks.ingest.dialogues import DialogueInputError, detect_format

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
    from tasks.ingest.catalog import CatalogInputError
    from tasks.ingest.dialogues import DialogueInputError

    try:
        results = ingest_flow(
            dialogues=str(dialogues) if dialogues else None,
            dialogue_format=fmt,
            catalog=str(catalog) if catalog else None,
            catalog_format=catalog_format,
            lake=lake,
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

    summary = crawl_flow(
        lake=lake,
        refresh_posters=refresh_posters,
        allow_hosts=allow_host or [],
        file_root=str(file_root.resolve()) if file_root else None,
    )
    _print_crawl(summary)


def _print_embed(summary: dict[str, object]) -> None:
    modalities = summary.get("modalities") or {}
    assert isinstance(modalities, dict)
    table = Table(title="embed")
    for column in (
        "modality",
        "model_id",
        "candidates",
        "up_to_date",
        "embedded",
        "failed",
        "truncated",
        "items_per_s",
    ):
        table.add_column(column, justify="left" if column in ("modality", "model_id") else "right")
    for row in modalities.values():
        table.add_row(
            *(
                str(row[c])
                for c in (
                    "modality",
                    "model_id",
                    "candidates",
                    "up_to_date",
                    "embedded",
                    "failed",
                    "truncated",
                    "items_per_s",
                )
            )
        )
    console.print(table)
    for warning in summary.get("warnings") or []:  # type: ignore[union-attr]
        console.print(f"[bold yellow]warning:[/] {warning}")


@app.command()
def embed(
    modality: Annotated[
        list[str] | None, typer.Option(help="image | clip_text | text | summary (repeatable); default all.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Model spec (random:ARCH@SEED, local:PATH, package:MOD/DIR, hub:ID) of the "
            "CLIP model, or of the text encoder when only text / summary are given."
        ),
    ] = None,
    text_model: Annotated[str | None, typer.Option(help="Sentence-encoder spec (default: packaged MiniLM).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Images / texts per forward pass.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:N (default: CUDA when present).")] = None,
    lake: LakeOpt = None,
    task_runner: TaskRunnerOpt = "default",
    dask_address: DaskAddressOpt = None,
    dask_workers: DaskWorkersOpt = 2,
) -> None:
    """Embed item posters and texts that have no vector yet for the chosen models (a Prefect flow run)."""
    from flows.embed import embed_flow
    from training.encoders import ModelSpec, ModelSpecError

    unknown = set(modality or []) - {"image", "clip_text", "text", "summary"}
    if unknown:
        raise _fail(f"unknown modality: {', '.join(sorted(unknown))} (image | clip_text | text | summary)")
    text_only = bool(modality) and set(modality or []) <= {"text", "summary"}
    clip_spec, text_spec = (None, model) if text_only else (model, text_model)
    try:
        for spec in (s for s in (clip_spec, text_spec) if s):
            ModelSpec.parse(spec)
    except ModelSpecError as exc:
        raise _fail(str(exc)) from None
    _check_runner(task_runner, dask_address, dask_workers)
    summary = embed_flow(
        lake=lake,
        modalities=modality,
        clip_model=clip_spec,
        text_model=text_spec,
        batch_size=batch_size,
        device=device,
        task_runner=task_runner,  # type: ignore[arg-type]
        dask_address=dask_address,
        dask_workers=dask_workers,
    )
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
            console.print(
                f"  a sample: {summary['dialogues']} of {summary['dialogues_total']} dialogues "
                "(--limit N sets how many; summarising all of them takes long on a CPU)"
            )


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
    task_runner: TaskRunnerOpt = "default",
    dask_address: DaskAddressOpt = None,
    dask_workers: DaskWorkersOpt = 2,
) -> None:
    """LLM item summaries and recurrent user-preference summaries (MLLM-MSR; a Prefect flow run)."""
    if what not in ("items", "preferences", "both") or backend not in ("local", "openai"):
        raise _fail("--what takes items | preferences | both, --backend local | openai")
    _check_runner(task_runner, dask_address, dask_workers)
    from flows.summarize import summarize_flow

    results = summarize_flow(
        lake=lake,
        what=what,
        backend=backend,
        limit=limit,  # type: ignore[arg-type]
        model_dir=str(model_dir) if model_dir else None,
        base_url=base_url,
        model=model,
        api_key_env=api_key_env,
        api_key_block=api_key_block,
        accepts_images=images,
        chunk_size=chunk_size,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        task_runner=task_runner,
        dask_address=dask_address,  # type: ignore[arg-type]
        dask_workers=dask_workers,
    )
    _print_summarize(results)


def _print_results(results: dict[str, dict]) -> None:
    """Each stage that ran, in its own words."""
    printers = {
        "ingest": _print_counts,
        "crawl": _print_crawl,
        "summarize": _print_summarize,
        "embed": _print_embed,
        "graphs": _print_graphs,
        "train": _print_train,
    }
    for name, summary in results.items():
        if isinstance(summary, dict) and summary:
            printers[name](summary)


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

    result = demo_flow(
        lake=lake,
        workdir=str(workdir),
        items=items,
        synthetic_dialogues=synthetic_dialogues,
        use_redial=redial,
        summarize_dialogues=summarize_dialogues,
    )
    inputs = result["inputs"]
    assert isinstance(inputs, dict)
    console.print(
        f"demo catalog: {inputs['n_items']} items ({inputs['n_enriched']} enriched), "
        f"dialogues: {inputs['dialogue_source']} ({inputs['dialogues']})"
    )
    _print_results(result.get("results") or {})  # type: ignore[arg-type]
    print_stages(result)
    root = resolve_lake(lake).root
    console.print(f"\nThe lake is at [bold]{root}[/]. Read it with:")
    console.print(f"  mmcrs features tables --lake {root}")
    console.print(f"  mmcrs features show turns --lake {root} --limit 5")
    console.print(f"  mmcrs models list --lake {root}")
    console.print(f'  python -c \'import features; print(features.read("turns", lake="{root}").collect())\'')


def _print_train(report: dict[str, object]) -> None:
    if "reused_run" in report:
        console.print(f"train: inputs and config unchanged since run {report['reused_run']}: nothing trained")
    console.print(
        f"model {report['model_name']} v{report['version']} at {report['artifact_dir']}; "
        f"promoted: {report['promoted']} ({report['promotion_reason']})"
    )
    metrics, baselines = report["metrics"], report["baselines"]
    assert isinstance(metrics, dict) and isinstance(baselines, dict)
    table = Table(title="test metrics")
    for column in ("contender", "protocol", "R@1", "R@10", "R@50", "MRR@10", "NDCG@10"):
        table.add_column(column)
    for name, per_protocol in {"model": metrics["test"], **baselines}.items():
        for protocol, m in per_protocol.items():
            table.add_row(
                name, protocol, *(f"{m[k]:.4f}" for k in ("recall@1", "recall@10", "recall@50", "mrr@10", "ndcg@10"))
            )
    console.print(table)
    skipped = report.get("skipped") or {}
    assert isinstance(skipped, dict)
    for name, reason in sorted(skipped.items()):
        console.print(f"  skipped {name}: {reason}")


@app.command()
def train(
    model_name: Annotated[str, typer.Option(help="Registered model name.")] = DEFAULT_MODEL,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the split and the training.")] = None,
    lm: Annotated[str | None, typer.Option(help="Frozen LM: package (MiniLM), random, or a local HF folder.")] = None,
    config: Annotated[Path | None, typer.Option(help="JSON file of TrainConfig fields.")] = None,
    artifacts: Annotated[Path | None, typer.Option(help="Artifacts root (default ./artifacts).")] = None,
    promote: Annotated[bool, typer.Option(help="Promote when it beats production on valid Recall@10.")] = True,
    force: Annotated[bool, typer.Option(help="Train even when inputs and config are unchanged.")] = False,
    fail_if_worse: Annotated[bool, typer.Option(help="Exit 1 when the new model is not promoted.")] = False,
    lake: LakeOpt = None,
) -> None:
    """Train, evaluate, export and register a graph-prompt recommender (a Prefect flow run)."""
    import json

    import features

    if features.table_version("turns", lake=lake) is None:
        raise _fail(f"no turns table in {features.resolve_lake(lake).root}: ingest dialogues first")
    from flows.train import train_flow

    overrides: dict[str, object] = json.loads(config.read_text()) if config else {}
    if epochs is not None:
        overrides["epochs"] = epochs
    if seed is not None:
        overrides["seed"] = seed
    if lm in ("package", "random"):
        overrides["lm_kind"] = lm
    elif lm:
        overrides |= {"lm_kind": "local", "lm_path": lm}
    try:
        report = train_flow(
            lake=lake,
            config=overrides,
            model_name=model_name,
            artifacts_root=str(artifacts) if artifacts else None,
            auto_promote=promote,
            force=force,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from None
    _print_train(report)
    if fail_if_worse and not report["promoted"] and "reused_run" not in report:
        raise typer.Exit(code=1)
