"""The report's figures, drawn with matplotlib's object API (no pyplot state, no display needed).

Every figure has a fixed size in pixels that depends only on how many panels it has (no tight bounding
box), and is re-encoded by Pillow as a palette PNG (no matplotlib metadata), so the same data gives the
same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator
from PIL import Image as PILImage

from tasks.report.gather import NO_GENRE, OTHER, EmbeddingMap, GraphDegrees

DPI = 80
KS = (1, 10, 50)
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
MODEL_COLOUR, PRODUCTION_COLOUR = "#1f77b4", "#9467bd"
_BASELINE_PALETTE = ("#ff7f0e", "#2ca02c", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#d62728", "#7f7f7f")
_GREYS = {OTHER: "#7f7f7f", NO_GENRE: "#c7c7c7"}


def _save(fig: Figure, path: Path) -> tuple[int, int]:
    """Render at ``DPI`` and store as a 256-colour palette PNG (plots are flat colours: about 3x smaller)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=DPI, format="png", facecolor="white")
    buffer.seek(0)
    with PILImage.open(buffer) as rendered:
        rendered.convert("RGB").quantize(colors=256, method=PILImage.Quantize.FASTOCTREE).save(path, optimize=True)
    width, height = fig.get_size_inches()
    return round(width * DPI), round(height * DPI)


def _grid(n: int, max_cols: int) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def genre_colours(labels: list[str]) -> dict[str, str]:
    """A colour per label: the named genres by frequency (most common first), then "other", then "no genre"."""
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    named = sorted((g for g in counts if g not in _GREYS), key=lambda g: (-counts[g], g))
    colours = {g: _PALETTE[i % len(_PALETTE)] for i, g in enumerate(named)}
    colours.update({g: c for g, c in _GREYS.items() if g in counts})
    return colours


def plot_embedding_maps(maps: list[EmbeddingMap], genres: Mapping[str, str], path: Path) -> tuple[int, int]:
    """One scatter panel per modality (2 per row) of the items' 2-D PCA coordinates, coloured by genre,
    with one legend for all panels; returns the PNG's (width, height) in pixels."""
    rows, cols = _grid(len(maps), 2)
    fig = Figure(figsize=(5.5 * cols, 4.6 * rows + 1.0), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    labels_per_map = [[genres.get(item, NO_GENRE) for item in m.item_ids] for m in maps]
    colours = genre_colours([label for labels in labels_per_map for label in labels])
    for ax, emb, labels in zip(axes, maps, labels_per_map, strict=False):
        label_array = np.array(labels)
        for genre, colour in reversed(colours.items()):  # most common drawn last, on top
            mask = label_array == genre
            if mask.any():
                ax.scatter(
                    emb.xy[mask, 0],
                    emb.xy[mask, 1],
                    s=10,
                    c=colour,
                    alpha=0.85,
                    linewidths=0,
                    label=genre,
                    rasterized=True,
                )
        shown = f"{len(emb.item_ids):,} of {emb.total:,}" if len(emb.item_ids) < emb.total else f"{emb.total:,}"
        ax.set_title(f"{emb.modality}: {shown} items\n{_short(emb.model_id)}", fontsize=11)
        ax.set_xlabel(f"PC1 ({emb.explained[0]:.0%} of variance)")
        ax.set_ylabel(f"PC2 ({emb.explained[1]:.0%} of variance)")
        ax.tick_params(labelsize=8)
        ax.grid(True, alpha=0.25)
    for ax in axes[len(maps) :]:
        ax.set_visible(False)
    items = {
        item: label
        for emb, labels in zip(maps, labels_per_map, strict=True)
        for item, label in zip(emb.item_ids, labels, strict=True)
    }
    counts = {genre: sum(1 for label in items.values() if label == genre) for genre in colours}
    handles = [_dot(colour) for colour in colours.values()]
    fig.legend(
        handles,
        [f"{genre} ({counts[genre]:,})" for genre in colours],
        loc="outside lower center",
        ncols=min(len(colours), 6),
        fontsize=10,
        title="first genre (items)",
        title_fontsize=10,
        frameon=False,
    )
    fig.suptitle("Item embeddings, first two principal components, coloured by genre", fontsize=13)
    return _save(fig, path)


def _dot(colour: str) -> Line2D:
    return Line2D([], [], marker="o", linestyle="", markersize=7, markerfacecolor=colour, markeredgewidth=0)


def _short(model_id: str, width: int = 48) -> str:
    return model_id if len(model_id) <= width else model_id[: width - 1] + "…"


def _bins(max_degree: int, most: int = 40) -> np.ndarray:
    """Integer-aligned bins (a whole number of degrees each, at most ``most`` bins): no empty comb teeth."""
    width = max(1, math.ceil((max_degree + 1) / most))
    return np.arange(-0.5, max_degree + width + 0.5, width)


def plot_degree_histograms(graphs: list[GraphDegrees], path: Path) -> tuple[int, int]:
    """One panel per graph (3 per row): histograms of its nodes' out- and in-degrees, log-scaled counts;
    returns the PNG's (width, height) in pixels."""
    rows, cols = _grid(len(graphs), 3)
    fig = Figure(figsize=(4.6 * cols, 3.6 * rows + 0.8), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, graph in zip(axes, graphs, strict=False):
        top = int(max(graph.out_degree.max(initial=0), graph.in_degree.max(initial=0)))
        bins = _bins(top)
        # side by side, not overlaid: a kNN graph's out-degrees are all k, its in-degrees spread (hubs)
        ax.hist(
            [graph.out_degree, graph.in_degree],
            bins=bins,
            color=["#1f77b4", "#ff7f0e"],
            label=["out-degree", "in-degree"],
        )
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.7)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{graph.graph}\n{graph.nodes:,} items, {graph.edges:,} edges", fontsize=11)
        ax.set_xlabel("degree (edges per item)")
        ax.set_ylabel("items (log scale)")
        ax.tick_params(labelsize=8)
        ax.grid(True, axis="y", alpha=0.25)
    for ax in axes[len(graphs) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=10, frameon=False)
    fig.suptitle("Degree distribution of each item graph (items with at least one edge)", fontsize=13)
    return _save(fig, path)


def _value(v: float) -> str:
    return f"{v:.2f}" if v >= 0.1 else f"{v:.3f}"


def sample_counts(contenders: Mapping[str, Mapping[str, Mapping[str, float]]], protocol: str) -> str:
    """``" (n=540)"``: the distinct sample counts of ``protocol`` over the contenders (``"n"``), "" when none."""
    counts = sorted({int(c[protocol]["n"]) for c in contenders.values() if "n" in c.get(protocol, {})})
    return f" (n={'/'.join(map(str, counts))})" if counts else ""


def plot_recall(
    contenders: Mapping[str, Mapping[str, Mapping[str, float]]],
    protocols: tuple[str, ...],
    path: Path,
    *,
    split: str = "test",
    colours: Mapping[str, str] | None = None,
) -> tuple[int, int]:
    """Grouped bars of Recall@1/10/50, one panel per protocol, one bar per contender in the given order
    (``{name: {protocol: {"recall@k": value}}}``, missing values skipped), coloured by ``colours`` where given
    and from a baseline palette otherwise; returns the PNG's size in pixels."""
    fig = Figure(figsize=(5.2 * len(protocols), 4.4), layout="constrained")
    axes = fig.subplots(1, len(protocols), squeeze=False, sharey=True).ravel()
    names = list(contenders)
    width = 0.8 / max(len(names), 1)
    others = iter([n for n in names if n not in (colours or {})])
    palette = dict(colours or {}) | {n: _BASELINE_PALETTE[i % len(_BASELINE_PALETTE)] for i, n in enumerate(others)}
    top = max(
        [v for c in contenders.values() for p in c.values() for k, v in p.items() if k.startswith("recall@")] or [0.0]
    )
    for ax, protocol in zip(axes, protocols, strict=True):
        for i, name in enumerate(names):
            values = [contenders[name].get(protocol, {}).get(f"recall@{k}") for k in KS]
            xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(KS))]
            present = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
            if not present:
                continue
            bars = ax.bar(
                [x for x, _ in present], [v for _, v in present], width=width * 0.95, color=palette[name], label=name
            )
            ax.bar_label(bars, labels=[_value(v) for _, v in present], fontsize=7, padding=1)
        ax.set_xticks(range(len(KS)), [f"Recall@{k}" for k in KS])
        ax.set_title(
            f"{split} split, {protocol.replace('_', ' ')} protocol{sample_counts(contenders, protocol)}", fontsize=11
        )
        ax.set_ylim(0, max(top * 1.15, 0.05))
        ax.grid(True, axis="y", alpha=0.25)
    axes[0].set_ylabel("Recall@k (higher is better)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(names), 4), fontsize=10, frameon=False)
    fig.suptitle("Recall@k of the latest model against its baselines", fontsize=13)
    return _save(fig, path)
