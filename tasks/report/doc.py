"""A tiny document model for the run report: blocks rendered both to markdown and to self-contained HTML.

Building the report as blocks (rather than writing markdown and converting it) keeps the HTML free of a
markdown dependency, and lets the HTML embed each PNG as base64 while the markdown links to the file.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias


@dataclass(frozen=True)
class Heading:
    """A section heading (level 1 to 3)."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    """A paragraph of plain text (inline backticks become code)."""

    text: str


@dataclass(frozen=True)
class Missing:
    """One missing input, said in one line (rendered as an emphasised paragraph)."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table of already-formatted cells."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Image:
    """A PNG in the report folder (``name`` is relative to it)."""

    name: str
    alt: str


@dataclass(frozen=True)
class Links:
    """A bullet list of ``(label, relative path)`` links."""

    items: tuple[tuple[str, str], ...]


Block: TypeAlias = Heading | Para | Missing | Table | Image | Links


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    """The report as GitHub-flavoured markdown; images and links are relative paths."""
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            out.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Para):
            out.append(block.text)
        elif isinstance(block, Missing):
            out.append(f"_{block.text}_")
        elif isinstance(block, Table):
            lines = [
                "| " + " | ".join(_md_cell(h) for h in block.headers) + " |",
                "|" + "|".join("---" for _ in block.headers) + "|",
            ]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            out.append("\n".join(lines))
        elif isinstance(block, Image):
            out.append(f"![{block.alt}]({block.name})")
        elif isinstance(block, Links):
            out.append("\n".join(f"- [{label}]({path})" for label, path in block.items))
    return "\n\n".join(out) + "\n"


def _inline(text: str) -> str:
    """Escape text; `code` spans become <code>."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
code { background: #f3f3f3; padding: 0 0.2em; }
.missing { color: #8a5a00; font-style: italic; }
"""


def to_html(blocks: list[Block], folder: Path, *, title: str) -> str:
    """The report as one self-contained HTML page: every image is embedded as a base64 data URI.

    Args:
        blocks: the report's blocks.
        folder: the report folder the images' names are relative to.
        title: the page title.
    """
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{_inline(block.text)}</h{block.level}>")
        elif isinstance(block, Para):
            body.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Missing):
            body.append(f'<p class="missing">{_inline(block.text)}</p>')
        elif isinstance(block, Table):
            head = "".join(f"<th>{_inline(h)}</th>" for h in block.headers)
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in block.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Image):
            data = base64.b64encode((folder / block.name).read_bytes()).decode("ascii")
            body.append(f'<p><img alt="{html.escape(block.alt)}" src="data:image/png;base64,{data}"></p>')
        elif isinstance(block, Links):
            items = "".join(
                f'<li><a href="{html.escape(path)}">{_inline(label)}</a></li>' for label, path in block.items
            )
            body.append(f"<ul>{items}</ul>")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
