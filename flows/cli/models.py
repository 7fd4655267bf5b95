"""``mmcrs models list|show|promote`` and ``mmcrs recommend``: the registered models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flows.cli.app import InputError, LakeOpt, app, console, models_app
from flows.cli.app import fail as _fail
from tasks.train.config import DEFAULT_MODEL_NAME as DEFAULT_MODEL


@models_app.command("list")
def models_list(lake: LakeOpt = None) -> None:
    """Every registered model version with its alias and validation Recall@10."""
    import json

    from training.registry import models

    table = Table(title="models")
    for column in ("model", "version", "alias", "valid R@10", "test R@10 no-rep", "registered"):
        table.add_column(column, overflow="fold")
    for row in models(lake=lake).iter_rows(named=True):
        m = json.loads(row["metrics"] or "{}")
        table.add_row(
            row["model_name"],
            str(row["version"]),
            row["alias"] or "",
            f"{m['valid']['standard']['recall@10']:.4f}",
            f"{m['test']['no_repeats']['recall@10']:.4f}",
            str(row["registered_at"])[:16],
        )
    console.print(table)


@models_app.command("show")
def models_show(
    ref: Annotated[str, typer.Argument(help="NAME[@VERSION_OR_ALIAS], default alias production.")],
    lake: LakeOpt = None,
) -> None:
    """Print a model version's registry row and manifest summary (exit 2 when its artifact is not readable)."""
    import json

    import features
    from training.artifacts import locate, read_manifest
    from training.registry import resolve

    name, _, which = ref.partition("@")
    resolved = features.resolve_lake(lake)
    try:
        row = resolve(name, which or "production", lake=resolved)
    except LookupError as exc:
        raise _fail(str(exc)) from None
    location = locate(row["artifact_uri"] or "", lake=resolved)
    try:
        manifest, problem = read_manifest(location, lake=resolved), None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise ValueError("not a JSON object listing the artifact's files")
    except (OSError, ValueError) as exc:
        manifest, problem = (
            {},
            f"model {name} v{row['version']}: {location}/manifest.json is missing or unreadable: {exc}",
        )
    console.print_json(
        json.dumps(
            {
                "model_name": row["model_name"],
                "version": row["version"],
                "alias": row["alias"],
                "artifact_uri": row["artifact_uri"],
                "artifact_location": location,
                "git_sha": row["git_sha"],
                "input_versions": json.loads(row["input_versions"] or "{}"),
                "metrics": json.loads(row["metrics"] or "{}"),
                "split": manifest.get("split"),
                "skipped": manifest.get("skipped"),
                "files": manifest.get("files"),
            },
            default=str,
        )
    )
    if problem:
        raise _fail(problem)


@models_app.command("promote")
def models_promote(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION to promote to production.")],
    force: Annotated[bool, typer.Option(help="Promote even when it does not beat production.")] = False,
    min_delta: Annotated[float, typer.Option(help="Required improvement of valid Recall@10.")] = 0.0,
    lake: LakeOpt = None,
) -> None:
    """Promote a version to production if it beats the current one on valid Recall@10 (exit 1 if not)."""
    from training.registry import PromotionRule, promote, resolve

    name, _, which = ref.partition("@")
    try:
        version = int(resolve(name, which or "candidate", lake=lake)["version"])
        outcome = promote(name, version, rule=PromotionRule(min_delta=min_delta), force=force, lake=lake)
    except LookupError as exc:
        raise _fail(str(exc)) from None
    console.print(f"{name} v{version}: {'promoted' if outcome.promoted else 'not promoted'} ({outcome.reason})")
    if not outcome.promoted:
        raise typer.Exit(code=1)


def _dialogue_text(dialogue: str) -> str:
    """The dialogue's text: the file's contents when ``dialogue`` names a file, else ``dialogue`` itself."""
    path = Path(dialogue)
    if len(dialogue) >= 4096 or "\n" in dialogue or not path.is_file():
        return dialogue
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"--dialogue {path}: not a UTF-8 text or JSON file") from None
    except OSError as exc:
        raise InputError(f"--dialogue {path}: cannot read it: {exc.strerror or exc}") from None


def _json_messages(text: str) -> list[dict[str, str]]:
    """A JSON list of messages, each ``{"role", "text"}`` or chat-style ``{"role", "content"}``."""
    import json

    try:
        loaded = json.loads(text)
    except ValueError as exc:
        raise InputError(f"--dialogue is not valid JSON: {exc}") from None
    if not isinstance(loaded, list):
        raise InputError("--dialogue JSON must be a list of messages")
    out = []
    for i, message in enumerate(loaded):
        body = message.get("text", message.get("content")) if isinstance(message, dict) else None
        if not isinstance(body, str):
            raise InputError(f'--dialogue message {i}: expected {{"role", "text"}} or {{"role", "content"}}')
        out.append({"role": str(message.get("role", "seeker")), "text": body})
    return out


def _messages(dialogue: str) -> list[dict[str, str]]:
    """A dialogue from a JSON file (list of {role, text} or {role, content}), a text file or a string; text
    lines may start 'role:'.

    Raises:
        InputError: the JSON is malformed or not a list of messages, or the file is not text.
    """
    text = _dialogue_text(dialogue)
    if text.lstrip().startswith("["):
        return _json_messages(text)
    if "\x00" in text:
        raise InputError("--dialogue is binary, not text")
    out = []
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        role, sep, rest = line.partition(":")
        known = sep and role.strip() in ("seeker", "recommender")
        out.append({"role": role.strip() if known else "seeker", "text": rest.strip() if known else line})
    return out


@app.command()
def recommend(
    model: Annotated[str, typer.Option(help="NAME[@VERSION_OR_ALIAS], default alias production.")] = DEFAULT_MODEL,
    dialogue: Annotated[str, typer.Option(help="Dialogue: JSON/text file, or text; mention items as @<item_id>.")] = "",
    top: Annotated[int, typer.Option(min=1, help="How many items.")] = 10,
    lake: LakeOpt = None,
) -> None:
    """Recommend items for a dialogue with a registered model (mentions of unknown items are reported)."""
    from training.loading import ArtifactError, load
    from training.samples import context_from_messages

    messages = _messages(dialogue)
    if not messages:
        raise _fail("empty dialogue: pass --dialogue FILE_OR_TEXT")
    name, _, which = model.partition("@")
    try:
        rec = load(name, which or "production", lake=lake)
    except (LookupError, ArtifactError) as exc:
        raise _fail(str(exc)) from None
    unknown = [item for item in context_from_messages(messages)[1] if item not in rec.index]
    if unknown:
        shown = ", ".join(f"@{item}" for item in unknown[:10]) + (" …" if len(unknown) > 10 else "")
        console.print(
            f"note: {len(unknown)} mentioned item(s) unknown to {rec.name} v{rec.version}, ignored: {shown}",
            markup=False,
        )
    table = Table(title=f"{rec.name} v{rec.version}")
    for column in ("rank", "item_id", "title", "score"):
        table.add_column(column)
    for rank, (item, score) in enumerate(rec.recommend(messages, k=top), start=1):
        table.add_row(str(rank), item, rec.titles.get(item, ""), f"{score:.4f}")
    console.print(table)
