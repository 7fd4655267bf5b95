"""``mmcrs features tables|history|show|pull``: the researchers' view of the lake."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flows.cli.app import InputError, LakeOpt, console, features_app
from flows.cli.app import fail as _fail


@features_app.command("tables")
def features_tables(lake: LakeOpt = None) -> None:
    """List the lake's tables with version and row count."""
    import features

    frame = features.tables(lake=lake)
    table = Table(title=f"tables in {features.resolve_lake(lake).root}")
    for column in ("table", "exists", "version", "rows", "keys", "description"):
        table.add_column(column, overflow="fold")
    for row in frame.iter_rows(named=True):
        table.add_row(
            *(
                str("" if row[c] is None else row[c])
                for c in ("table", "exists", "version", "rows", "keys", "description")
            )
        )
    console.print(table)


@features_app.command("history")
def features_history(table: str, lake: LakeOpt = None) -> None:
    """Versions of one table, newest first, with the stage and run that wrote each."""
    import features

    try:
        frame = features.history(table, lake=lake)
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
    version: Annotated[int | None, typer.Option(min=0, help="Delta version to read.")] = None,
    as_of: Annotated[datetime | None, typer.Option("--as-of", help="Version current at this time (UTC).")] = None,
    limit: Annotated[int, typer.Option(min=0, help="Rows to print.")] = 10,
    lake: LakeOpt = None,
) -> None:
    """Print a table at its latest version, a version, or a point in time (`features pull` writes it out)."""
    import polars as pl

    import features

    try:
        frame = features.read(table, version=version, as_of=as_of, lake=lake)
        with features.unreadable_as_lake_error(table, lake):
            rows = frame.head(limit).collect()
    except (features.LakeError, KeyError) as exc:
        raise _fail(str(exc)) from None
    with pl.Config(tbl_rows=limit, fmt_str_lengths=60, tbl_width_chars=160):
        console.print(rows)


def sidecar_path(out: Path) -> Path:
    """The JSON sidecar of a pulled file: beside it, same stem, ``.json`` (never the data file itself)."""
    if out.suffix.lower() == ".json":
        raise InputError(f"--out {out}: a .json name would be overwritten by its own sidecar; use .parquet")
    return out.with_suffix(".json")


def _check_outputs(paths: tuple[Path, ...], *, overwrite: bool) -> None:
    for path in paths:
        if path.is_dir():
            raise InputError(f"--out {path} is a folder; name a file")
        if path.exists() and not overwrite:
            raise InputError(f"{path} exists; pass --overwrite to replace it")


@features_app.command("pull")
def features_pull(
    table: Annotated[str, typer.Argument(help="Table to pull.")],
    version: Annotated[int | None, typer.Option(min=0, help="Delta version.")] = None,
    as_of: Annotated[datetime | None, typer.Option("--as-of", help="The version current at this time (UTC).")] = None,
    out: Annotated[Path | None, typer.Option(help="Parquet file (default ./TABLE-vVERSION.parquet).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file (and its sidecar).")] = False,
    lake: LakeOpt = None,
) -> None:
    """Pull one table at a version or point in time into a Parquet file (plus a .json sidecar naming it).

    An existing output is never replaced without ``--overwrite``; a ``.json`` output name is refused (the
    sidecar would land on it)."""
    import features

    if out is not None:
        _check_outputs((out, sidecar_path(out)), overwrite=overwrite)
    try:
        pinned = features.resolve_version(table, version=version, as_of=as_of, lake=lake)
        with features.unreadable_as_lake_error(table, lake):
            frame = features.read(table, version=pinned, lake=lake).collect()
    except (features.LakeError, KeyError) as exc:
        raise _fail(str(exc)) from None
    path = out or Path(f"{table}-v{pinned}.parquet")
    sidecar = sidecar_path(path)
    _check_outputs((path, sidecar), overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    facts = {
        "table": table,
        "version": pinned,
        "rows": frame.height,
        "lake": features.resolve_lake(lake).root,
        "as_of": as_of.isoformat() if as_of else None,
    }
    sidecar.write_text(json.dumps(facts, indent=2))
    console.print(f"pulled {table} v{pinned} ({frame.height} rows) to {path} (sidecar {sidecar})")
