"""``mmcrs`` stage commands: ingest, crawl, summarize, embed, graphs, train, and the demo.

Each runs its stage through the same runner as ``mmcrs run <stage>`` (lake lock, skip rule, a
``pipeline_runs`` row) and prints the stage's summary; options are checked before anything starts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.app import ArtifactsOpt, LakeOpt, app, console, print_stages, print_summary, run_stage_command
from flows.cli.app import fail as _fail
from tasks.train.config import DEFAULT_MODEL_NAME as DEFAULT_MODEL
from training.modalities import graph_names, modality_names

TaskRunnerOpt = Annotated[
    str | None, typer.Option(help="default (in this process) | dask (shards on Dask workers); default: default.")
]
DaskAddressOpt = Annotated[
    str | None, typer.Option(help="Dask scheduler (tcp://host:8786); default: a local cluster (--task-runner dask).")
]
DaskWorkersOpt = Annotated[
    int | None, typer.Option(help="Local Dask worker processes (--task-runner dask; default 2).")
]


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
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="Dialogue format: redial | inspired (the catalog's, with --catalog alone)."),
    ] = None,
    catalog: Annotated[Path | None, typer.Option(help="Item catalog: CSV, JSONL or Parquet.")] = None,
    catalog_format: Annotated[
        str | None, typer.Option(help="Catalog format: csv | jsonl | parquet | redial-movies.")
    ] = None,
    enrich_with: Annotated[
        str | None, typer.Option(help="Item metadata source: bokeh-movies, or a local CSV/Parquet/sqlite table.")
    ] = None,
    column: Annotated[
        list[str] | None, typer.Option(help="Catalog column mapping THEIRS=OURS, e.g. movie_title=title (repeatable).")
    ] = None,
    lake: LakeOpt = None,
) -> None:
    """Ingest dialogues and/or a catalog into the lake."""
    if dialogues is None and catalog is None:
        raise _fail("nothing to ingest: pass --dialogues and/or --catalog")
    if dialogues is None and catalog_format is None:
        fmt, catalog_format = None, fmt  # --catalog alone: --format names the catalog's format
    _check_inputs(dialogues, fmt, catalog)
    mapping = dict(pair.split("=", 1) for pair in column or [] if "=" in pair)
    if len(mapping) != len(column or []):
        raise _fail("--column takes THEIRS=OURS")
    values = {"dialogues": dialogues, "dialogue_format": fmt, "catalog": catalog, "catalog_format": catalog_format}
    values["enrich_with"] = enrich_with
    given = {k: str(v) for k, v in values.items() if v is not None}
    run_stage_command("ingest", given | ({"catalog_columns": mapping} if mapping else {}), lake=lake)


@app.command()
def crawl(
    refresh_posters: Annotated[
        bool | None, typer.Option("--refresh-posters/--no-refresh-posters", help="Re-check stored posters (ETag).")
    ] = None,
    allow_host: Annotated[
        list[str] | None, typer.Option(help="Host exempt from the private-address refusal (repeatable).")
    ] = None,
    file_root: Annotated[Path | None, typer.Option(help="Folder local poster/plot paths must lie in.")] = None,
    lake: LakeOpt = None,
) -> None:
    """Fetch the posters and plots the catalog points to that are not stored yet."""
    values = {"refresh_posters": refresh_posters, "allow_hosts": list(allow_host) if allow_host else None}
    values["file_root"] = str(file_root.resolve()) if file_root else None
    run_stage_command("crawl", values, lake=lake)


@app.command()
def embed(
    modality: Annotated[
        list[str] | None, typer.Option(help=f"{' | '.join(modality_names())} (repeatable); default all.")
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
    task_runner: TaskRunnerOpt = None,
    dask_address: DaskAddressOpt = None,
    dask_workers: DaskWorkersOpt = None,
) -> None:
    """Embed item posters and texts that have no vector yet for the chosen models."""
    from training.modalities import modality as modality_spec
    from training.spec import ModelSpec

    unknown = sorted(set(modality or []) - set(modality_names()))
    if unknown:
        raise _fail(f"unknown modality: {', '.join(unknown)} ({' | '.join(modality_names())})")
    text_only = bool(modality) and not any(modality_spec(m).encoder.uses_clip for m in modality or [])
    clip_spec, text_spec = (None, model) if text_only else (model, text_model)
    try:
        for spec in (ModelSpec.parse(s) for s in (clip_spec, text_spec) if s):
            if spec.kind == "local":
                spec.path()  # the weights must exist before anything starts
        if device:
            from training.encoders.device import check_device

            check_device(device)
    except ValueError as exc:  # ModelSpecError, DeviceError
        raise _fail(str(exc)) from None
    values = {"modalities": modality or None, "clip_model": clip_spec, "text_model": text_spec}
    values |= {"batch_size": batch_size, "device": device, "task_runner": task_runner}
    values |= {"dask_address": dask_address, "dask_workers": dask_workers}
    run_stage_command("embed", values, lake=lake)


@app.command()
def graphs(
    graph: Annotated[
        list[str] | None,
        typer.Option(help=f"{' | '.join(graph_names())} (repeatable); default all."),
    ] = None,
    k: Annotated[int | None, typer.Option(help="Neighbours per item in kNN graphs (default 10).")] = None,
    backend: Annotated[str | None, typer.Option(help="kNN backend: auto | torch | faiss | faiss-approx.")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even when inputs and parameters are unchanged.")] = False,
    lake: LakeOpt = None,
) -> None:
    """Build the item graphs whose inputs or parameters changed."""
    if k is not None and k < 1:
        raise _fail("--k must be at least 1")
    values = {"graphs": graph or None, "k": k, "backend": backend, "force": force or None}
    run_stage_command("graphs", values, lake=lake, force=force)


@app.command()
def summarize(
    what: Annotated[
        str | None, typer.Option(help="items | preferences | both (default; items of the dialogues first).")
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="local (HF model folder; default) | openai (compatible server).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most N items (--what items) or N dialogues.")] = None,
    model_dir: Annotated[Path | None, typer.Option(help="Local model folder (default: SmolLM2-135M-Instruct).")] = None,
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible API root (default 127.0.0.1:8000/v1).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model name on the server (default: default).")] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the API key (default OPENAI_API_KEY).")
    ] = None,
    api_key_block: Annotated[str | None, typer.Option(help="Prefect Secret block holding the API key.")] = None,
    images: Annotated[
        bool | None, typer.Option("--images/--no-images", help="The server is multimodal: send item posters.")
    ] = None,
    chunk_size: Annotated[int | None, typer.Option(help="History items per recurrent step (default 3).")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Cap of one answer (default 64).")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Prompts per local generate call / per commit (default 16).")
    ] = None,
    lake: LakeOpt = None,
    task_runner: TaskRunnerOpt = None,
    dask_address: DaskAddressOpt = None,
    dask_workers: DaskWorkersOpt = None,
) -> None:
    """LLM item summaries and recurrent user-preference summaries (MLLM-MSR)."""
    if what not in (None, "items", "preferences", "both") or backend not in (None, "local", "openai"):
        raise _fail("--what takes items | preferences | both, --backend local | openai")
    values = {"what": what, "backend": backend, "limit": limit, "model_dir": str(model_dir) if model_dir else None}
    values |= {"base_url": base_url, "model": model, "api_key_env": api_key_env, "api_key_block": api_key_block}
    values |= {"accepts_images": images, "chunk_size": chunk_size, "max_new_tokens": max_new_tokens}
    values |= {"batch_size": batch_size, "task_runner": task_runner, "dask_address": dask_address}
    run_stage_command("summarize", values | {"dask_workers": dask_workers}, lake=lake)


@app.command()
def train(
    model_name: Annotated[str | None, typer.Option(help=f"Registered model name (default {DEFAULT_MODEL}).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the split and the training.")] = None,
    lm: Annotated[
        str | None, typer.Option(help="Frozen LM: package (MiniLM), random, a model spec, or a local HF folder.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="JSON file of TrainConfig fields.")] = None,
    artifacts: ArtifactsOpt = None,
    promote: Annotated[
        bool | None, typer.Option("--promote/--no-promote", help="Promote when it beats production (default).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Train even when inputs and config are unchanged.")] = False,
    fail_if_worse: Annotated[bool, typer.Option(help="Exit 1 when the new model is not promoted.")] = False,
    lake: LakeOpt = None,
) -> None:
    """Train, evaluate, export and register a graph-prompt recommender."""
    import features

    overrides: dict[str, object] = _train_config(config)
    if features.table_version("turns", lake=lake) is None:
        raise _fail(f"no turns table in {features.resolve_lake(lake).root}: ingest dialogues first")
    overrides |= {k: v for k, v in {"epochs": epochs, "seed": seed}.items() if v is not None}
    if lm:
        overrides["lm"] = _lm_spec(lm, seed if seed is not None else int(overrides.get("seed", 0)))  # type: ignore[call-overload]
    values = {"config": overrides, "model_name": model_name, "auto_promote": promote}
    summary = run_stage_command("train", values, lake=lake, force=force, artifacts=artifacts)
    if fail_if_worse and summary is not None and not getattr(summary, "promoted", True):
        raise typer.Exit(code=1)


def _lm_spec(lm: str, seed: int) -> str:
    """``--lm``: ``package`` (the packaged MiniLM), ``random`` (a small random LM), a model spec, or a folder."""
    from training.spec import MINILM, ModelSpec, ModelSpecError, random_lm

    if lm == "package":
        return str(MINILM)
    if lm == "random":
        return str(random_lm(seed=seed))
    try:
        return str(ModelSpec.parse(lm)) if ":" in lm else f"local:{lm}"
    except ModelSpecError as exc:
        raise _fail(str(exc)) from None


def _train_config(path: Path | None) -> dict[str, object]:
    """TrainConfig fields from a JSON file (none: {})."""
    if path is None:
        return {}
    try:
        loaded = json.loads(path.read_bytes())
    except OSError as exc:
        raise _fail(f"cannot read the train config {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise _fail(f"the train config {path} is not JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise _fail(f"{path}: expected a JSON object of TrainConfig fields")
    return loaded


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
    inputs = result.inputs
    console.print(
        f"demo catalog: {inputs['n_items']} items ({inputs['n_enriched']} enriched), "
        f"dialogues: {inputs['dialogue_source']} ({inputs['dialogues']})"
    )
    for summary in result.run.results.values():
        print_summary(summary)
    print_stages(result.run)
    root = resolve_lake(lake).root
    console.print(f"\nThe lake is at [bold]{root}[/]. Read it with:")
    console.print(f"  mmcrs features tables --lake {root}")
    console.print(f"  mmcrs features show turns --lake {root} --limit 5")
    console.print(f"  mmcrs models list --lake {root}")
    console.print(f'  python -c \'import features; print(features.read("turns", lake="{root}").collect())\'')
