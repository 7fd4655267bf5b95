"""Property tests over every reader: for any mix of valid and bad records, every valid record lands, each bad
one is exactly one quarantine row with a reason, and the ingest does not raise."""

from __future__ import annotations

import csv
import io
import json
import random
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import features
from tasks.ingest.catalog import ingest_catalog
from tasks.ingest.dialogues import ingest_dialogues

PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_TEXT = st.text(st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="@"), min_size=1, max_size=20)
_TEXT = _TEXT.filter(str.strip)  # "@" would mention a movie the record does not define
_BAD_ID = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=True), st.lists(st.integers(), max_size=2), st.just("x" * 201)
)


def _quarantine(lake: Path) -> list[str]:
    return features.read("quarantine", columns=["reason"], missing="empty", lake=lake).collect()["reason"].to_list()


def _redial(conv: int, text: str) -> str:
    messages = [{"text": text, "senderWorkerId": 1}, {"text": "ok", "senderWorkerId": 2}]
    record = {"conversationId": conv, "initiatorWorkerId": 1, "respondentWorkerId": 2, "messages": messages}
    return json.dumps(record)


_BAD_REDIAL = st.one_of(
    _BAD_ID.map(lambda bad: _redial(0, "hi").replace('"conversationId": 0', f'"conversationId": {json.dumps(bad)}')),
    st.text(max_size=30).filter(lambda s: s.strip() and "\n" not in s and "\r" not in s),  # anything but a dialogue
    st.integers(min_value=2, max_value=3000).map(lambda depth: "[" * depth + "]" * depth),
    st.just('{"conversationId": ' + "1" * 5000 + "}"),
    st.just(json.dumps({"conversationId": 1})),
)


@PROPERTY
@given(texts=st.lists(_TEXT, max_size=6), bad=st.lists(_BAD_REDIAL, max_size=4), seed=st.randoms())
def test_redial_lands_every_valid_dialogue_and_quarantines_each_bad_line(
    texts: list[str], bad: list[str], seed: random.Random
) -> None:
    lines = [(f"redial:{i}", _redial(i, t.replace("\n", " "))) for i, t in enumerate(texts)] + [(None, b) for b in bad]
    seed.shuffle(lines)
    with tempfile.TemporaryDirectory() as tmp:
        path, lake = Path(tmp) / "d.jsonl", Path(tmp) / "lake"
        path.write_text("\n".join(line for _, line in lines) + "\n")
        summary = ingest_dialogues(path, lake=lake)
        landed = features.read("dialogues", missing="empty", lake=lake).collect()["dialogue_id"].to_list()
        assert sorted(landed) == sorted(d for d, _ in lines if d is not None)
        reasons = _quarantine(lake)
        assert len(reasons) == summary.quarantined == len(bad) and all(reasons)


_INSPIRED_BAD = st.one_of(
    st.just(b"\tSEEKER\tno id\t"),
    st.just(b"dX\tSEEKER\t\xff\xfe\t"),
    st.just(b"dY\tSEEKER\ttoo\tmany\tfields"),
    st.just(b"x" * 201 + b"\tSEEKER\tlong id\t"),
)


@PROPERTY
@given(texts=st.lists(_TEXT, max_size=6), bad=st.lists(_INSPIRED_BAD, max_size=4))
def test_inspired_lands_every_valid_dialogue_and_quarantines_each_bad_row(texts: list[str], bad: list[bytes]) -> None:
    good = [f"d{i}\tSEEKER\t{' '.join(t.split()) or 'x'}\t".encode() for i, t in enumerate(texts)]
    rows = [b"dialog_id\tspeaker\ttext\tmovies", *good, *bad]
    with tempfile.TemporaryDirectory() as tmp:
        path, lake = Path(tmp) / "d.tsv", Path(tmp) / "lake"
        path.write_bytes(b"\n".join(rows) + b"\n")
        summary = ingest_dialogues(path, lake=lake)
        landed = features.read("dialogues", missing="empty", lake=lake).collect()["dialogue_id"].to_list()
        assert sorted(landed) == sorted(f"inspired:d{i}" for i in range(len(texts)))
        reasons = _quarantine(lake)
        assert len(reasons) == summary.quarantined == len(bad) and all(reasons)


_BAD_CSV_ROW = st.one_of(
    st.just(b"bad1,Alien,1979,extra\n"),
    st.just(b"bad2\n"),
    st.just(b'bad3,"Alien,1979\n'),
    st.just(b'bad4,"Al"ien,1979\n'),
    st.just(b"bad5,\xff\xfe,1979\n"),
    st.just(b"bad6,Alien,nineteen\n"),
    st.just(b",Alien,1979\n"),
    st.just(b"x" * 201 + b",Alien,1979\n"),
)


def _csv_line(fields: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(fields)
    return out.getvalue().encode()


@PROPERTY
@given(titles=st.lists(_TEXT, max_size=6), bad=st.lists(_BAD_CSV_ROW, max_size=4), seed=st.randoms())
def test_catalog_csv_lands_every_valid_row_and_quarantines_each_bad_one(
    titles: list[str], bad: list[bytes], seed: random.Random
) -> None:
    good = [(f"g{i}", _csv_line([f"g{i}", title, "1995"])) for i, title in enumerate(titles)]
    rows = good + [(None, b) for b in bad]
    seed.shuffle(rows)
    with tempfile.TemporaryDirectory() as tmp:
        path, lake = Path(tmp) / "items.csv", Path(tmp) / "lake"
        path.write_bytes(b"item_id,title,year\n" + b"".join(row for _, row in rows))
        summary = ingest_catalog(path, lake=lake)
        items = features.read("items", missing="empty", lake=lake).collect()
        assert dict(items.select("item_id", "title").iter_rows()) == {f"g{i}": t.strip() for i, t in enumerate(titles)}
        reasons = _quarantine(lake)
        assert len(reasons) == summary.quarantined == len(bad) and all(reasons)


_BAD_JSONL = st.one_of(
    _BAD_ID.map(lambda bad: json.dumps({"item_id": bad, "title": "x"})),
    st.sampled_from([["x"], {"en": "x"}, True, 3]).map(lambda t: json.dumps({"item_id": "bad", "title": t})),
    st.integers(min_value=2, max_value=3000).map(lambda depth: "[" * depth + "]" * depth),
    st.just("{broken"),
)


@PROPERTY
@given(titles=st.lists(_TEXT, max_size=6), bad=st.lists(_BAD_JSONL, max_size=4), seed=st.randoms())
def test_catalog_jsonl_lands_every_valid_record_and_quarantines_each_bad_one(
    titles: list[str], bad: list[str], seed: random.Random
) -> None:
    good = [json.dumps({"item_id": i, "title": title}) for i, title in enumerate(titles)]
    lines = good + bad
    seed.shuffle(lines)
    with tempfile.TemporaryDirectory() as tmp:
        path, lake = Path(tmp) / "items.jsonl", Path(tmp) / "lake"
        path.write_text("\n".join(lines) + "\n")
        summary = ingest_catalog(path, lake=lake)
        items = features.read("items", missing="empty", lake=lake).collect()
        assert dict(items.select("item_id", "title").iter_rows()) == {str(i): t.strip() for i, t in enumerate(titles)}
        reasons = _quarantine(lake)
        assert len(reasons) == summary.quarantined == len(bad) and all(reasons)
