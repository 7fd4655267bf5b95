"""``build_report``: the run report folder (``report.md``, ``report.html`` and PNGs) from the lake and artifacts."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import features
from features import Lake
from tasks.report import gather, plots
from tasks.report.doc import Block, Heading, Image, Links, Missing, Para, Table, to_html, to_markdown
from training.modalities import modality_names

MARKDOWN = "report.md"
HTML = "report.html"
MAP_PNG = "item_embeddings_map.png"
DEGREES_PNG = "graph_degrees.png"
RECALL_PNG = "recall_at_k.png"
PROTOCOLS = ("standard", "no_repeats")
log = logging.getLogger(__name__)
STAGE_HEADERS = (
    "stage",
    "status",
    "started (UTC)",
    "input versions",
    "output versions",
    "rows in",
    "rows out",
    "quarantined",
    "seconds",
)


def _stages(lake: Lake, run_ids: Sequence[str] | None, flow_run_id: str | None) -> list[Block]:
    blocks: list[Block] = [Heading("Pipeline stages")]
    runs = gather.stage_runs(lake, run_ids=run_ids, flow_run_id=flow_run_id)
    if runs is None:
        return [*blocks, Missing("No stage runs: the lake has no pipeline_runs table yet.")]
    if flow_run_id is not None:
        blocks.append(Para(f"Stage runs of flow run `{flow_run_id}`."))
    elif run_ids is not None:
        blocks.append(Para(f"Stage runs {', '.join(f'`{r}`' for r in run_ids)}."))
    else:
        blocks.append(
            Para(
                'The latest run of each stage. "rows in" / "rows out" are what the stage counted '
                "(rows read / written; nodes / edges for graphs)."
            )
        )
    if runs.is_empty():
        return [*blocks, Missing("No stage run matches this selection.")]
    return [*blocks, Table(STAGE_HEADERS, tuple(gather.stage_table(runs)))]


def _quarantine(lake: Lake) -> list[Block]:
    blocks: list[Block] = [Heading("Quarantine")]
    counts = gather.quarantine_counts(lake)
    if counts is None:
        return [*blocks, Missing("No quarantine table: no stage has rejected an input yet.")]
    if counts.is_empty():
        return [*blocks, Missing("The quarantine table is empty.")]
    total = int(counts["rows"].sum())
    rows = tuple((s, r, f"{n:,}") for s, r, n in counts.iter_rows())
    return [
        *blocks,
        Para(f"{total:,} rejected inputs in the lake, by stage and reason."),
        Table(("stage", "reason", "rows"), rows),
    ]


def _embeddings(lake: Lake, out: Path) -> list[Block]:
    blocks: list[Block] = [Heading("Item embeddings")]
    maps = gather.embedding_maps(lake)
    if not maps:
        return [*blocks, Missing("No item embeddings: the embed stage has not written item_embeddings yet.")]
    genres = gather.item_genres(lake)
    if genres is None:
        blocks.append(Missing("No items table: the map cannot be coloured by genre."))
        genres = {}
    elif not any(g != gather.NO_GENRE for g in genres.values()):
        blocks.append(Missing("No item lists a genre (items.attributes has no genres): every point is grey."))
    plots.plot_embedding_maps(maps, genres, out / MAP_PNG)
    absent = [m for m in modality_names() if m not in {e.modality for e in maps}]
    text = (
        "Each item's vector projected on the first two principal components of its modality (PCA), coloured "
        f'by its first genre (the {gather.TOP_GENRES} most common first genres; the rest are "other").'
    )
    if absent:
        text += f" No vectors for: {', '.join(absent)}."
    rows = tuple(
        (m.modality, m.model_id, f"{m.total:,}", f"{m.explained[0]:.1%}", f"{m.explained[1]:.1%}") for m in maps
    )
    return [
        *blocks,
        Para(text),
        Image(MAP_PNG, "item embeddings, 2-D PCA map coloured by genre"),
        Table(("modality", "model", "items", "PC1 variance", "PC2 variance"), rows),
    ]


def _graphs(lake: Lake, out: Path) -> list[Block]:
    blocks: list[Block] = [Heading("Item graphs")]
    graphs = gather.graph_degrees(lake)
    if not graphs:
        return [*blocks, Missing("No item graphs: the graphs stage has not written item_graph_edges yet.")]
    plots.plot_degree_histograms(graphs, out / DEGREES_PNG)
    rows = tuple(
        (
            g.graph,
            f"{g.nodes:,}",
            f"{g.edges:,}",
            f"{g.out_degree.mean():.1f}",
            f"{int(g.out_degree.max(initial=0))}",
            f"{int(g.in_degree.max(initial=0))}",
        )
        for g in graphs
    )
    text = (
        "Out- and in-degree of every item with an edge, per graph. A kNN graph's out-degree is k by "
        "construction; its in-degree shows hubs (items that are many items' neighbour)."
    )
    return [
        *blocks,
        Para(text),
        Image(DEGREES_PNG, "degree histograms of each item graph"),
        Table(("graph", "items with edges", "edges", "mean out-degree", "max out-degree", "max in-degree"), rows),
    ]


def _recall_rows(contenders: dict[str, dict]) -> tuple[tuple[str, ...], ...]:
    rows = []
    for name, metrics in contenders.items():
        for protocol in PROTOCOLS:
            m = metrics.get(protocol)
            if m:
                recalls = (f"{m[f'recall@{k}']:.4f}" if f"recall@{k}" in m else "-" for k in plots.KS)
                rows.append((name, protocol, *recalls, str(int(m["n"])) if "n" in m else "-"))
    return tuple(rows)


def _production(
    production: gather.ModelInfo, latest: gather.ModelInfo, contenders: dict[str, dict], colours: dict[str, str]
) -> Block:
    """Add the production model to ``contenders`` when it was tested on the latest model's test split (same
    split seed and fractions, ``turns`` version and test samples); say why it is left out otherwise."""
    name = f"v{production.version} (production)"
    if latest.test_split is None or latest.test_split != production.test_split:
        return Para(
            f"Production is v{production.version}; it is not plotted: its test split is not the latest model's "
            "(or a manifest does not say which), and contenders are compared only on the same test split."
        )
    contenders[name] = production.metrics["test"]
    colours[name] = plots.PRODUCTION_COLOUR
    return Para(f"Production is v{production.version}, tested on the same test split (its own run's numbers).")


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()


def _model(lake: Lake, out: Path, artifacts_root: str | os.PathLike[str] | None) -> list[Block]:
    blocks: list[Block] = [Heading("Model")]
    found = gather.models(lake, artifacts_root)
    if found is None:
        return [*blocks, Missing("No model yet: the model registry is empty (the train stage has not run).")]
    latest, production = found
    alias = f" ({latest.alias})" if latest.alias else ""
    blocks.append(Para(f"Latest registered model: `{latest.model_name}` v{latest.version}{alias}."))
    test = latest.metrics.get("test")
    if not test:
        blocks.append(Missing("The latest model's registry row has no test metrics."))
    else:
        name = f"v{latest.version} (latest{', production' if latest.alias == 'production' else ''})"
        contenders: dict[str, dict] = {name: test}
        colours = {name: plots.MODEL_COLOUR}
        if production is not None and production.metrics.get("test"):
            blocks.append(_production(production, latest, contenders, colours))
        elif production is None and latest.alias != "production":
            blocks.append(Missing("No production model to compare with."))
        contenders.update(latest.baselines)
        if not latest.baselines:
            blocks.append(Missing("No baselines: the model's manifest.json was not found or lists none."))
        plots.plot_recall(contenders, PROTOCOLS, out / RECALL_PNG, colours=colours)
        blocks += [
            Image(RECALL_PNG, "Recall@k of the latest model against its baselines"),
            Table(("contender", "protocol", *(f"Recall@{k}" for k in plots.KS), "n"), _recall_rows(contenders)),
        ]
    blocks.append(Heading("Artifacts", 3))
    if latest.folder is None and latest.files and latest.artifact_uri:  # on an object store: link the URIs
        base = latest.artifact_uri.rstrip("/")
        links = [(f"{latest.model_name}/{latest.version}/", f"{base}/")]
        return [*blocks, Links(tuple([*links, *((name, f"{base}/{name}") for name in latest.files)]))]
    if latest.folder is None:
        blocks.append(Missing(f"The artifact folder is not here: {latest.artifact_uri or 'none recorded'}."))
        return blocks
    files = sorted(p for p in latest.folder.iterdir() if p.is_file())
    links = [(f"{latest.model_name}/{latest.version}/", _rel(latest.folder, out))]
    links += [(p.name, _rel(p, out)) for p in files]
    return [*blocks, Links(tuple(links))]


def build_report(
    lake: Lake | str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    *,
    artifacts_root: str | os.PathLike[str] | None = None,
    flow_run_id: str | None = None,
    run_ids: Sequence[str] | None = None,
) -> Path:
    """Write the run report of a lake: ``report.md``, a self-contained ``report.html`` and PNGs in ``out_dir``.

    Sections: the stage runs (``pipeline_runs``), quarantine counts by stage and reason, a 2-D PCA map of the
    item embeddings per modality coloured by genre, degree histograms of each item graph, Recall@1/10/50 of
    the latest registered model against its baselines (and production), and links to its artifact folder.
    Any missing input (table, model, artifact folder) becomes a line in the report saying so, never an error.

    Args:
        lake: lake root (see ``features.resolve_lake``).
        out_dir: the report folder (created; files already there are overwritten).
        artifacts_root: an artifacts root to look in when the registry's ``artifact_uri`` is not found
            (e.g. a copied lake's models); models are looked for under ``<lake>/_artifacts`` too.
        flow_run_id: report only the stage runs of this Prefect flow run.
        run_ids: report only these ``pipeline_runs`` run ids.
            With neither filter: the latest run of each stage.

    Returns:
        The path of ``report.md``.
    """
    resolved = features.resolve_lake(lake)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in (MAP_PNG, DEGREES_PNG, RECALL_PNG):
        (out / stale).unlink(missing_ok=True)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    blocks: list[Block] = [Heading("mmcrs run report", 1), Para(f"Lake `{resolved.root}`, generated {generated}.")]
    sections: list[tuple[str, Callable[[], list[Block]]]] = [
        ("Pipeline stages", lambda: _stages(resolved, run_ids, flow_run_id)),
        ("Quarantine", lambda: _quarantine(resolved)),
        ("Item embeddings", lambda: _embeddings(resolved, out)),
        ("Item graphs", lambda: _graphs(resolved, out)),
        ("Model", lambda: _model(resolved, out, artifacts_root)),
    ]
    for title, section in sections:
        try:
            blocks += section()
        except Exception as exc:  # one broken input must not cost the rest of the report
            log.exception("report section %r failed", title)
            blocks += [Heading(title), Missing(f"This section could not be built: {type(exc).__name__}: {exc}")]
    markdown = out / MARKDOWN
    markdown.write_text(to_markdown(blocks))
    (out / HTML).write_text(to_html(blocks, out, title="mmcrs run report"))
    return markdown
