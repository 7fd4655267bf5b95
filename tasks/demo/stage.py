"""The demo's input stage: build the catalog and pick the dialogues (real ReDial if present, else synthetic)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tasks.demo.catalog import build_demo_catalog
from tasks.demo.synthetic import synthesize_dialogues

REDIAL_FILE = Path("data") / "redial" / "redial_test.jsonl"


def find_redial() -> Path | None:
    """The shared ReDial file: ``MMCRS_SHARED``/data/redial, else ``../shared`` beside the repository or cwd."""
    roots = [Path(os.environ["MMCRS_SHARED"])] if os.environ.get("MMCRS_SHARED") else []
    roots += [Path(__file__).resolve().parents[2].parent / "shared", Path.cwd().parent / "shared"]
    for root in roots:
        if (root / REDIAL_FILE).is_file():
            return (root / REDIAL_FILE).resolve()
    return None


@dataclass(frozen=True)
class DemoConfig:
    """What the demo inputs are built from.

    Attributes:
        items: catalog size (None: every MovieLens-100K movie).
        synthetic_dialogues: how many dialogues to synthesise when no ReDial file is used.
        use_redial: use the shared ReDial file when there is one.
        poster_base_url: where the rendered posters are served (None: local file paths).
    """

    items: int | None = None
    synthetic_dialogues: int = 500
    use_redial: bool = True
    poster_base_url: str | None = None


def build_demo_inputs(*, workdir: Path, config: DemoConfig | None = None) -> dict[str, str]:
    """Write the demo catalog (and synthetic dialogues when no ReDial file is found) under ``workdir``.

    Returns:
        ``catalog`` (parquet path), ``dialogues`` (JSONL path), ``dialogue_source`` (``redial`` or
        ``synthetic``), and the catalog's item and enrichment counts.
    """
    cfg = config or DemoConfig()
    catalog = build_demo_catalog(out_dir=workdir, limit=cfg.items, poster_base_url=cfg.poster_base_url)
    redial = find_redial() if cfg.use_redial else None
    if redial is None:
        dialogues = synthesize_dialogues(
            out_path=workdir / "synthetic_dialogues.jsonl", n_dialogues=cfg.synthetic_dialogues
        )
    return {
        "catalog": str(catalog.path),
        "dialogues": str(redial or dialogues),
        "dialogue_source": "redial" if redial else "synthetic",
        "n_items": str(catalog.n_items),
        "n_enriched": str(catalog.n_enriched),
    }
