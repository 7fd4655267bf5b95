"""The CLI's error boundary: every user error is one line on stderr and exit 2, a bug is one ``internal
error`` line and exit 1 (its traceback only under ``--debug``), and no output is overwritten silently."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import features
from features import CommitInfo
from flows.cli import app
from flows.cli.models import _messages
from training.samples import context_from_messages

runner = CliRunner()
LEGACY_ARTIFACT = Path(__file__).parents[1] / "training" / "data" / "legacy_artifact"


def _items_lake(tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    rows = pl.DataFrame(
        {
            "item_id": ["a", "b"],
            "source": "t",
            "title": ["A", "B"],
            "text": ["x", "y"],
            "content_hash": ["1", "2"],
            "ingested_at": datetime.now(UTC),
        }
    )
    features.upsert("items", rows, commit=CommitInfo(stage="test"), lake=lake)
    return lake


def _user_error(args: list[str], *needles: str) -> str:
    """Run ``args``; assert exit 2 and one line on stderr containing every needle; returns that line."""
    result = runner.invoke(app, args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _usage_error(args: list[str], needle: str) -> None:
    """A value the parser refuses: its own exit 2 and message, no traceback."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert needle in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output


def test_a_lake_that_is_a_file_or_empty_is_refused(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    _user_error(["features", "tables", "--lake", str(afile)], "is a file, not a folder")
    _user_error(["features", "tables", "--lake", ""], "lake root is empty")
    with pytest.raises(features.LakeError, match="empty"):
        features.resolve_lake("")


def test_a_lake_that_cannot_be_written_is_refused_before_anything_runs(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / "_locks").write_text("in the way")  # what a read-only lake gives too (root ignores chmod)
    dialogues = tmp_path / "d.jsonl"
    dialogues.write_text("{}\n")
    _user_error(["ingest", "--dialogues", str(dialogues), "--lake", str(lake)], "cannot write to the lake")


def test_bad_storage_options_and_a_broken_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = str(tmp_path / "lake")
    monkeypatch.setenv("MMCRS_STORAGE_OPTIONS", "{not json")
    _user_error(["features", "tables", "--lake", lake], "MMCRS_STORAGE_OPTIONS is not JSON")
    monkeypatch.setenv("MMCRS_STORAGE_OPTIONS", "[1, 2]")
    _user_error(["features", "tables", "--lake", lake], "MMCRS_STORAGE_OPTIONS must be a JSON object")
    monkeypatch.delenv("MMCRS_STORAGE_OPTIONS")
    config = tmp_path / "mmcrs.toml"
    config.write_text("[lake\nroot = ")
    monkeypatch.setenv("MMCRS_CONFIG", str(config))
    _user_error(["features", "tables"], "config file", "is unreadable")
    config.write_text('[lake]\nstorage_options = "x"\n')
    _user_error(["features", "tables"], "storage_options] must be a table")


def test_a_truncated_commit_log_is_named_by_table(tmp_path: Path) -> None:
    lake = _items_lake(tmp_path)
    log = next((lake / "items" / "_delta_log").glob("*.json"))
    log.write_bytes(log.read_bytes()[:150])
    line = _user_error(["features", "show", "items", "--lake", str(lake)], "table 'items'", "unreadable")
    assert "Kernel error" in line or "Json" in line
    _user_error(["features", "pull", "items", "--lake", str(lake), "--out", str(tmp_path / "o.parquet")], "'items'")


def test_a_missing_data_file_is_named_by_table(tmp_path: Path) -> None:
    lake = _items_lake(tmp_path)
    for data in (lake / "items").glob("*.parquet"):
        data.unlink()
    _user_error(["features", "show", "items", "--lake", str(lake)], "table 'items'", "No such file")
    _user_error(["features", "pull", "items", "--lake", str(lake), "--out", str(tmp_path / "o.parquet")], "'items'")
    assert not (tmp_path / "o.parquet").exists()


def test_negative_numbers_are_refused_by_the_parser(tmp_path: Path) -> None:
    lake = str(_items_lake(tmp_path))
    _usage_error(["features", "show", "items", "--limit", "-3", "--lake", lake], "--limit")
    _usage_error(["vacuum", "--retain-hours", "-5", "--lake", lake], "--retain-hours")
    _usage_error(["recommend", "--dialogue", "hi", "--top", "-5", "--lake", lake], "--top")
    assert features.read("items", version=0, lake=lake).collect().height == 2  # nothing was vacuumed


def test_vacuum_lake_refuses_a_negative_retention(tmp_path: Path) -> None:
    from features.retention import vacuum_lake

    lake = _items_lake(tmp_path)
    with pytest.raises(ValueError, match="retain_hours must be 0 or more"):
        vacuum_lake(lake, retain_hours=-5)
    with pytest.raises(ValueError):
        vacuum_lake(lake, retain_hours=float("nan"))


@pytest.mark.parametrize(
    ("content", "needle"),
    [(None, "cannot read the train config"), ("{epochs: 1", "is not JSON"), ("[1, 2]", "expected a JSON object")],
)
def test_a_bad_train_config_is_one_line(tmp_path: Path, content: str | None, needle: str) -> None:
    config = tmp_path / "train.json"
    if content is not None:
        config.write_text(content)
    _user_error(["train", "--config", str(config), "--lake", str(tmp_path / "lake")], needle)


@pytest.mark.parametrize(
    ("dialogue", "needle"),
    [
        ('[{"role": "seeker", "text": "hi"', "not valid JSON"),
        ("[1, 2, 3]", "message 0"),
        ('{"role": "seeker"}', None),  # not a list: read as one line of text, which is fine
    ],
)
def test_bad_dialogue_json_is_one_line(tmp_path: Path, dialogue: str, needle: str | None) -> None:
    if needle is None:
        assert _messages(dialogue) == [{"role": "seeker", "text": dialogue}]
        return
    _user_error(["recommend", "--dialogue", dialogue, "--lake", str(tmp_path / "lake")], needle)


def test_a_binary_dialogue_file_is_one_line(tmp_path: Path) -> None:
    binary = tmp_path / "d.bin"
    binary.write_bytes(bytes(range(256)))
    _user_error(["recommend", "--dialogue", str(binary), "--lake", str(tmp_path / "lake")], "not a UTF-8")
    nul = tmp_path / "d.txt"
    nul.write_bytes(b"seeker: hi\x00there")
    _user_error(["recommend", "--dialogue", str(nul), "--lake", str(tmp_path / "lake")], "binary")


def test_chat_style_messages_are_read_like_text_messages() -> None:
    chat = '[{"role": "user", "content": "I loved @m1"}, {"role": "assistant", "content": "ok"}]'
    assert _messages(chat) == [{"role": "user", "text": "I loved @m1"}, {"role": "assistant", "text": "ok"}]
    text, items = context_from_messages([{"role": "seeker", "content": "and @m5"}])
    assert items == ("m5",) and "and" in text


def _register(lake: Path, artifact: Path) -> None:
    from training.registry import register

    register("m", 1, metrics={}, config={}, input_versions={}, artifact_uri=str(artifact), lake=lake)


def test_recommend_reads_chat_messages_and_reports_unknown_ids(tmp_path: Path) -> None:
    lake, artifact = tmp_path / "lake", tmp_path / "artifact"
    shutil.copytree(LEGACY_ARTIFACT, artifact)
    _register(lake, artifact)
    chat = json.dumps([{"role": "user", "content": "I loved @m1, @nope and @ghost"}])
    result = runner.invoke(app, ["recommend", "--model", "m@candidate", "--dialogue", chat, "--lake", str(lake)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "2 mentioned item(s) unknown" in said and "@nope, @ghost" in said
    assert "m1 " not in result.output  # the mentioned item is not recommended back


def test_a_corrupt_manifest_is_one_line(tmp_path: Path) -> None:
    lake, artifact = tmp_path / "lake", tmp_path / "artifact"
    shutil.copytree(LEGACY_ARTIFACT, artifact)
    _register(lake, artifact)
    args = ["recommend", "--model", "m@candidate", "--dialogue", "hi", "--lake", str(lake)]
    for corrupt in ('{"files": ', "[]", '{"model_name": "m", "version": 1, "files": 3}', "{}"):
        (artifact / "manifest.json").write_text(corrupt)
        _user_error(args, "model m v1", "manifest.json")
        _user_error(["models", "show", "m@candidate", "--lake", str(lake)], "manifest.json")


def test_embed_refuses_a_missing_local_model_and_an_absent_device(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    _user_error(["embed", "--model", f"local:{tmp_path / 'no-such-model'}", "--lake", lake], "weights not found")
    _user_error(["embed", "--device", "cuda:3", "--lake", lake], "cuda:3")
    _user_error(["embed", "--device", "tpu", "--lake", lake], "'tpu'")


def test_pull_never_overwrites_and_its_sidecar_never_lands_on_the_data(tmp_path: Path) -> None:
    lake = str(_items_lake(tmp_path))
    out = tmp_path / "items.parquet"
    out.write_bytes(b"precious")
    _user_error(["features", "pull", "items", "--out", str(out), "--lake", lake], "exists", "--overwrite")
    assert out.read_bytes() == b"precious"
    ok = runner.invoke(app, ["features", "pull", "items", "--out", str(out), "--overwrite", "--lake", lake])
    assert ok.exit_code == 0, ok.output
    assert pl.read_parquet(out).height == 2 and json.loads(out.with_suffix(".json").read_text())["rows"] == 2

    sidecar_only = tmp_path / "other.parquet"
    (tmp_path / "other.json").write_text("mine")  # the sidecar's name is taken: refused as well
    _user_error(["features", "pull", "items", "--out", str(sidecar_only), "--lake", lake], "other.json exists")
    assert (tmp_path / "other.json").read_text() == "mine" and not sidecar_only.exists()

    as_json = tmp_path / "X.json"
    _user_error(["features", "pull", "items", "--out", str(as_json), "--lake", lake], "sidecar")
    assert not as_json.exists()
    shown = tmp_path / "shown.parquet"
    shown.write_bytes(b"precious")
    refused = runner.invoke(app, ["features", "show", "items", "--out", str(shown), "--lake", lake])
    assert refused.exit_code == 2 and shown.read_bytes() == b"precious"  # show prints; writing is pull's job


def test_a_bug_is_one_internal_error_line_and_its_traceback_only_under_debug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**_: object) -> None:
        raise KeyError("text")

    monkeypatch.setattr(features, "tables", broken)
    args = ["features", "tables", "--lake", str(tmp_path / "lake")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: internal error: KeyError: 'text' (rerun with --debug for the traceback)"
    ]
    debug = runner.invoke(app, ["--debug", *args])
    assert debug.exit_code == 1 and isinstance(debug.exception, KeyError)  # raised as it is: the traceback
    monkeypatch.setenv("MMCRS_DEBUG", "1")
    assert isinstance(runner.invoke(app, args).exception, KeyError)


def test_main_reports_an_error_outside_any_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import flows.cli

    def broken(**_: object) -> None:
        raise FileNotFoundError(2, "No such file or directory", "/nowhere/input.jsonl")

    monkeypatch.setattr(flows.cli, "app", broken)
    with pytest.raises(SystemExit) as exited:
        flows.cli.main(["features", "tables"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip() == "error: no such file or directory: /nowhere/input.jsonl"
