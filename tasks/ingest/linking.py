"""Link movies mentioned in dialogues to lake items, creating namespaced items for the unknown ones.

A mention links to an existing item when normalised title and year match (catalog items win over items
that earlier dialogue ingests created). Otherwise it becomes an item of its own, ``<source>:<movie id>``,
with title and year parsed from the name the dialogue gives it. Items that already exist are never
rewritten, so the first name seen for an id stays its title.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field

import orjson
import polars as pl

from tasks.ingest.titles import normalised_titles, split_title_year, title_key

MENTION_SOURCE_PREFIX = "mention:"


def item_content_hash(
    title: str | None, year: int | None, text: str | None, attributes: str | None, poster_url: str | None
) -> str:
    """The hash over the item fields that feed features (so later stages redo exactly what changed)."""
    blob = orjson.dumps([title, year, text, attributes, poster_url])  # = compact json.dumps, ensure_ascii=False
    return hashlib.sha256(blob).hexdigest()


@dataclass
class ItemLinker:
    """Resolves (source, movie id, name) to a lake ``item_id``; collects the items it had to create."""

    index: dict[tuple[str, int | None], str]
    existing_ids: set[str]
    new_items: list[dict[str, object]] = field(default_factory=list)
    catalog_ids: set[str] = field(default_factory=set)  # existing items a catalog wrote (not mention-created)
    linked: dict[tuple[str, str, str], str] = field(default_factory=dict, repr=False)  # what ``link`` answered

    @classmethod
    def from_items(cls, items: pl.DataFrame) -> ItemLinker:
        """Build from an ``items`` frame with ``item_id, source, title, year``."""
        ranked = items.with_columns(pl.col("source").str.starts_with(MENTION_SOURCE_PREFIX).alias("_mention")).sort(
            ["_mention", "item_id"], descending=[True, True]
        )  # last write wins: catalog, lowest id
        titled = ranked.filter(pl.col("title").is_not_null() & (pl.col("title") != ""))
        keys = zip(normalised_titles(titled["title"]).to_list(), titled["year"].to_list(), strict=True)
        index: dict[tuple[str, int | None], str] = dict(zip(keys, titled["item_id"].to_list(), strict=True))
        catalog = items.filter(~pl.col("source").str.starts_with(MENTION_SOURCE_PREFIX))["item_id"].to_list()
        return cls(index=index, existing_ids=set(items["item_id"].to_list()), catalog_ids=set(catalog))

    def link(self, source: str, movie_id: str, name: str) -> str:
        """The lake item id for one mentioned movie (registering a new item when none matches).

        The source's own id (``redial:<movie id>``) wins when a catalog wrote that item (e.g. the ReDial movie
        list); otherwise a title match links to an item of another source, never to another id of the same
        source (its ids already tell its movies apart), so the ids are the same whether the source's catalog
        is ingested before or after its dialogues. The answer for one (source, movie id, name) never changes
        within a linker, so it is computed once.
        """
        known = self.linked.get((source, movie_id, name))
        if known is None:
            known = self.linked[source, movie_id, name] = self._link(source, movie_id, name)
        return known

    def _link(self, source: str, movie_id: str, name: str) -> str:
        item_id = f"{source}:{movie_id}" if movie_id != name else f"{source}:{_slug(name)}"
        if item_id in self.catalog_ids:
            return item_id
        title, year = split_title_year(name)
        key = title_key(title, year)
        match = self.index.get(key) if key[0] else None
        if match is not None and not match.startswith(f"{source}:"):
            return match
        if item_id not in self.existing_ids:
            self.existing_ids.add(item_id)
            self.new_items.append(_mention_item(item_id, source, title or name, year))
        if key[0]:
            self.index[key] = item_id
        return item_id


def _slug(name: str) -> str:
    title, year = title_key(*split_title_year(name))
    slug = "-".join([*title.split(), *([str(year)] if year else [])])
    return slug or hashlib.sha1(name.encode()).hexdigest()[:12]


@functools.cache
def _mention_attributes(source: str) -> str:
    return json.dumps({"created_from": f"{source} dialogue mention"}, sort_keys=True)


def _mention_item(item_id: str, source: str, title: str, year: int | None) -> dict[str, object]:
    text = f"{title} ({year})" if year else title
    attributes = _mention_attributes(source)
    return {
        "item_id": item_id,
        "source": f"{MENTION_SOURCE_PREFIX}{source}",
        "title": title,
        "year": year,
        "text": text,
        "attributes": attributes,
        "poster_url": None,
        "content_hash": item_content_hash(title, year, text, attributes, None),
    }
