"""Item rows shared by every stage that creates items: the content hash over the fields that feed features."""

from __future__ import annotations

import hashlib
import json

HASHED_FIELDS = ("title", "year", "text", "attributes", "poster_url", "plot_url")


def item_content_hash(row: dict[str, object]) -> str:
    """sha256 over the item fields that feed features (``HASHED_FIELDS``), so later stages redo exactly
    the items whose inputs changed.

    Example:
        >>> item_content_hash({"title": "Heat", "year": 1995}) == item_content_hash({"year": 1995, "title": "Heat"})
        True
    """
    values = [row.get(name) for name in HASHED_FIELDS]
    blob = json.dumps(values, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
