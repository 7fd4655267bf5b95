"""The run report on a small real lake: sections, figures, filters, determinism, and missing inputs."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import features
from features import CommitInfo
from features.runs import StageRun, record_run
from tasks.report import build_report, gather, plots
from tasks.report.build import DEGREES_PNG, MAP_PNG, RECALL_PNG
from tests.tasks.report.conftest import GRAPHS, QUARANTINE, STAGES, T0, write_embeddings, write_items

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; fails on anything that is not a PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture(scope="module")
def report(full_lake: tuple[Path, Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake, artifacts, _ = full_lake
    return build_report(lake, tmp_path_factory.mktemp("out") / "report", artifacts_root=artifacts)


def _table(markdown: str, *headers: str) -> list[list[str]]:
    """The body rows of the markdown table whose header row starts with ``headers``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| " + " | ".join(headers) + " |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_pngs_are_valid_with_expected_sizes(report: Path) -> None:
    folder = report.parent
    # 2 modalities side by side (5.5 x 4.6 in + legend), 2 graphs (4.6 x 3.6 in + legend), 2 protocols; 80 dpi
    assert png_size(folder / MAP_PNG) == (880, 448)
    assert png_size(folder / DEGREES_PNG) == (736, 352)
    assert png_size(folder / RECALL_PNG) == (832, 352)


def test_markdown_names_every_stage_graph_and_figure(report: Path) -> None:
    markdown = report.read_text()
    stages = [row[0] for row in _table(markdown, "stage", "status")]
    assert stages == list(STAGES)  # latest run of each stage, by start time
    graphs = [row[0] for row in _table(markdown, "graph")]
    assert graphs == sorted(GRAPHS)
    for png in (MAP_PNG, DEGREES_PNG, RECALL_PNG):
        assert f"]({png})" in markdown
    ingest = next(row for row in _table(markdown, "stage", "status") if row[0] == "ingest-dialogues")
    assert ingest[5:9] == ["1,342", "1,337", "5", "2.5"]  # rows in, rows out, quarantined, seconds
    assert "No " not in markdown.replace("No vectors for: clip_text, summary", "")  # no missing-input line


def test_quarantine_counts_by_stage_and_reason(report: Path) -> None:
    rows = _table(report.read_text(), "stage", "reason", "rows")
    quarantine = {(r[0], r[1]): int(r[2]) for r in rows}
    assert quarantine == QUARANTINE
    assert f"{sum(QUARANTINE.values())} rejected inputs" in report.read_text()


def test_graph_degrees_are_counted(full_lake: tuple[Path, Path, dict[str, str]]) -> None:
    degrees = {g.graph: g for g in gather.graph_degrees(full_lake[0]) or []}
    knn, co = degrees["text_knn"], degrees["co_mention"]
    assert (knn.nodes, knn.edges, set(knn.out_degree), set(knn.in_degree)) == (40, 120, {3}, {3})
    assert (co.nodes, co.edges, sorted(co.out_degree)[-1], sorted(co.in_degree)[-1]) == (11, 20, 10, 10)


def test_model_recall_against_baselines_and_production(report: Path) -> None:
    markdown = report.read_text()
    assert "Latest registered model: `m` v2 (candidate)" in markdown
    contenders = {(r[0], r[1]): r[2:5] for r in _table(markdown, "contender")}
    assert contenders[("v2 (latest)", "standard")] == ["0.0600", "0.2400", "0.6000"]
    assert contenders[("v1 (production)", "no_repeats")] == ["0.0500", "0.2000", "0.5000"]
    assert {name for name, _ in contenders} == {"v2 (latest)", "v1 (production)", "popularity", "text_knn"}
    assert {row[-1] for row in _table(markdown, "contender")} == {"20"}  # the test samples behind each number
    assert "tested on the same test split" in markdown


def test_production_on_another_test_split_is_not_compared(tmp_path: Path) -> None:
    from tests.tasks.report.conftest import write_models

    write_models(tmp_path / "lake", tmp_path / "artifacts", seeds=(1, 0))  # v1 (production) split with seed 1
    markdown = build_report(tmp_path / "lake", tmp_path / "out", artifacts_root=tmp_path / "artifacts").read_text()
    assert {row[0] for row in _table(markdown, "contender")} == {"v2 (latest)", "popularity", "text_knn"}
    assert "Production is v1; it is not plotted: its test split is not the latest model's" in markdown


def test_recall_panels_name_their_sample_counts() -> None:
    one = {"standard": {"recall@1": 0.1, "n": 540}, "no_repeats": {"recall@1": 0.1, "n": 480}}
    assert plots.sample_counts({"a": one, "b": one}, "no_repeats") == " (n=480)"
    assert plots.sample_counts({"a": one, "b": {"standard": {"n": 7}}}, "standard") == " (n=7/540)"
    assert plots.sample_counts({"a": {"standard": {"recall@1": 0.1}}}, "standard") == ""


def test_artifact_links_are_relative_and_resolve(report: Path) -> None:
    links = re.findall(r"^- \[(.+?)\]\((.+?)\)$", report.read_text(), flags=re.M)
    assert [label for label, _ in links] == ["m/2/", "MODEL_CARD.md", "manifest.json"]
    for _, target in links:
        assert not Path(target).is_absolute()
        assert (report.parent / target).exists()


def test_html_is_self_contained(report: Path) -> None:
    html = (report.parent / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 3
    assert 'src="item_embeddings_map.png"' not in html
    assert "<td>ingest-dialogues</td>" in html


def test_latest_run_per_stage_and_filters(full_lake: tuple[Path, Path, dict[str, str]]) -> None:
    lake, _, ids = full_lake
    latest = gather.stage_runs(lake)
    assert latest is not None and latest.height == len(STAGES)
    assert ids["old"] not in latest["run_id"].to_list()
    old = gather.stage_runs(lake, flow_run_id="flow-old")
    assert old is not None and old["run_id"].to_list() == [ids["old"]]
    picked = gather.stage_runs(lake, run_ids=[ids["old"], ids["embed"]])
    assert picked is not None and picked["stage"].to_list() == ["ingest-dialogues", "embed"]


def test_flow_run_filter_without_match_says_so(full_lake: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    lake, artifacts, _ = full_lake
    markdown = build_report(lake, tmp_path, artifacts_root=artifacts, flow_run_id="nope").read_text()
    assert "Stage runs of flow run `nope`." in markdown
    assert "No stage run matches this selection." in markdown


def test_pca_map_is_deterministic(full_lake: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    lake = full_lake[0]
    first, second = gather.embedding_maps(lake), gather.embedding_maps(lake)
    assert first is not None and second is not None
    assert [m.modality for m in first] == ["image", "text"]
    for a, b in zip(first, second, strict=True):
        assert a.item_ids == b.item_ids == sorted(a.item_ids)
        np.testing.assert_array_equal(a.xy, b.xy)
    genres = gather.item_genres(lake) or {}
    plots.plot_embedding_maps(first, genres, tmp_path / "a.png")
    plots.plot_embedding_maps(second, genres, tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_pca_is_sign_fixed_and_order_free() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(30, 5)) * np.array([5.0, 2.0, 1.0, 0.5, 0.1])
    xy, explained = gather.pca_2d(vectors)
    order = rng.permutation(30)
    xy_perm, _ = gather.pca_2d(vectors[order])
    np.testing.assert_allclose(xy_perm, xy[order], atol=1e-9)
    flipped, _ = gather.pca_2d(-vectors)  # same cloud mirrored: same components after the sign fix
    np.testing.assert_allclose(np.abs(flipped), np.abs(xy), atol=1e-9)
    assert explained[0] > explained[1] > 0 and explained[0] + explained[1] <= 1.0
    np.testing.assert_allclose(np.var(xy[:, 0]) / np.var(vectors - vectors.mean(0), axis=0).sum(), explained[0])


def test_genre_labels_keep_top_genres_and_group_the_rest(tmp_path: Path) -> None:
    genres = [f"g{i:02d}" for i in range(12)]
    rows = [
        {
            "item_id": f"i{i}-{j}",
            "source": "s",
            "content_hash": "h",
            "ingested_at": T0,
            "attributes": json.dumps({"genres": [g, "Drama"]}),
        }
        for i, g in enumerate(genres)
        for j in range(12 - i)
    ]
    rows += [
        {
            "item_id": "pipe",
            "source": "s",
            "content_hash": "h",
            "ingested_at": T0,
            "attributes": json.dumps({"genre": "g00|g01"}),
        },
        {"item_id": "none", "source": "s", "content_hash": "h", "ingested_at": T0, "attributes": None},
        {"item_id": "bad", "source": "s", "content_hash": "h", "ingested_at": T0, "attributes": "{oops"},
    ]
    features.upsert("items", pl.DataFrame(rows), commit=CommitInfo(stage="test"), lake=tmp_path)
    labels = gather.item_genres(tmp_path)
    assert labels is not None
    assert labels["i0-0"] == "g00" and labels["i8-0"] == "g08"  # the 9 most common first genres
    assert labels["i9-0"] == labels["i11-0"] == gather.OTHER
    assert labels["pipe"] == "g00"
    assert labels["none"] == labels["bad"] == gather.NO_GENRE


def test_empty_lake_says_what_is_missing(tmp_path: Path) -> None:
    out = tmp_path / "report"
    markdown = build_report(tmp_path / "lake", out, artifacts_root=tmp_path / "artifacts").read_text()
    for line in (
        "No stage runs: the lake has no pipeline_runs table yet.",
        "No quarantine table: no stage has rejected an input yet.",
        "No item embeddings: the embed stage has not written item_embeddings yet.",
        "No item graphs: the graphs stage has not written item_graph_edges yet.",
        "No model yet: the model registry is empty (the train stage has not run).",
    ):
        assert f"_{line}_" in markdown
    assert not list(out.glob("*.png"))
    assert (out / "report.html").read_text().count('class="missing"') == 5


def test_partial_lake_plots_what_exists(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_embeddings(lake)  # vectors but no items table, no graphs, no model
    record_run(StageRun(stage="embed", fingerprint="f", status="ok", counts={"embedded": 80}, started_at=T0), lake=lake)
    markdown = build_report(lake, tmp_path / "out").read_text()
    assert "_No items table: the map cannot be coloured by genre._" in markdown
    assert "_No item graphs:" in markdown and "_No model yet:" in markdown
    assert png_size(tmp_path / "out" / MAP_PNG) == (880, 448)
    assert not (tmp_path / "out" / DEGREES_PNG).exists()
    write_items(lake)
    markdown = build_report(lake, tmp_path / "out").read_text()
    assert "No items table" not in markdown


def test_missing_artifact_folder_and_baselines(full_lake: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    from training import registry

    metrics = {p: {"recall@1": 0.1, "recall@10": 0.3, "recall@50": 0.6} for p in ("standard", "no_repeats")}
    registry.register(
        "m",
        1,
        metrics={"valid": metrics, "test": metrics},
        config={},
        input_versions={},
        artifact_uri=str(tmp_path / "gone"),
        lake=lake,
    )
    markdown = build_report(lake, tmp_path / "out", artifacts_root=tmp_path / "artifacts").read_text()
    assert f"_The artifact folder is not here: {tmp_path / 'gone'}._" in markdown
    assert "_No baselines: the model's manifest.json was not found or lists none._" in markdown
    assert "_No production model to compare with._" in markdown
    assert png_size(tmp_path / "out" / RECALL_PNG) == (832, 352)


def test_unreadable_manifest_means_no_baselines(tmp_path: Path) -> None:
    from training import registry

    folder = tmp_path / "artifacts" / "m" / "1"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{truncated")
    metrics = {p: {"recall@1": 0.1, "recall@10": 0.3, "recall@50": 0.6} for p in ("standard", "no_repeats")}
    registry.register(
        "m",
        1,
        metrics={"valid": metrics, "test": metrics},
        config={},
        input_versions={},
        artifact_uri=str(folder),
        lake=tmp_path / "lake",
    )
    registry.promote("m", 1, lake=tmp_path / "lake", force=True)
    markdown = build_report(tmp_path / "lake", tmp_path / "out").read_text()
    assert "Latest registered model: `m` v1 (production)." in markdown
    assert "_No baselines:" in markdown and "No production model" not in markdown
    assert "- [manifest.json](../artifacts/m/1/manifest.json)" in markdown
