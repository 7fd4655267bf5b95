"""The table catalog: every lake table's name, Arrow schema, key columns and partitioning, in one place.

Conventions:
- keys are non-null and unique within a table; writes merge on them;
- ``audit`` columns (e.g. ``ingested_at``) record when a row was written and never count as a change,
  so re-writing identical content commits nothing;
- embedding vectors are ``list<float32>`` plus a ``dim`` column (Delta has no fixed-size list).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from features.errors import UnknownTableError

TS = pa.timestamp("us", tz="UTC")
STR_LIST = pa.list_(pa.string())
VECTOR = pa.list_(pa.float32())


@dataclass(frozen=True)
class TableSpec:
    """One lake table.

    Attributes:
        name: table name (also its folder under the lake root).
        schema: the Arrow schema new tables are created with (more nullable columns may be added).
        keys: columns that identify a row; writes merge on them.
        partition_by: partition columns (empty for none).
        audit: columns that record write time and are ignored when deciding whether a row changed.
        description: one line for ``features.tables()``.
    """

    name: str
    schema: pa.Schema
    keys: tuple[str, ...]
    partition_by: tuple[str, ...] = ()
    audit: tuple[str, ...] = ()
    description: str = ""

    @property
    def content_columns(self) -> list[str]:
        """Non-key, non-audit columns: the ones whose change makes a row 'updated'."""
        skip = set(self.keys) | set(self.audit)
        return [f.name for f in self.schema if f.name not in skip]


def _schema(*fields: tuple[str, pa.DataType, bool]) -> pa.Schema:
    return pa.schema([pa.field(name, dtype, nullable=nullable) for name, dtype, nullable in fields])


_SPECS: tuple[TableSpec, ...] = (
    TableSpec(
        name="items",
        schema=_schema(
            ("item_id", pa.string(), False),
            ("source", pa.string(), False),
            ("title", pa.string(), True),
            ("year", pa.int32(), True),
            ("text", pa.string(), True),
            ("attributes", pa.string(), True),  # JSON object
            ("poster_url", pa.string(), True),  # http(s) URL, file:// URI or local path
            ("poster_sha256", pa.string(), True),  # set by the crawl stage: the stored poster blob
            ("plot_url", pa.string(), True),  # where the text comes from when the catalog gives no text
            ("plot_text", pa.string(), True),  # set by the crawl stage from plot_url
            ("content_hash", pa.string(), False),  # over the catalog fields that feed features
            ("ingested_at", TS, False),
        ),
        keys=("item_id",),
        audit=("ingested_at",),
        description="catalog items: title, year, text, attributes, poster reference",
    ),
    TableSpec(
        name="poster_blobs",
        schema=_schema(
            ("sha256", pa.string(), False),
            ("url", pa.string(), True),
            ("bytes", pa.int64(), False),
            ("width", pa.int32(), True),
            ("height", pa.int32(), True),
            ("format", pa.string(), True),
            ("http_status", pa.int32(), True),
            ("etag", pa.string(), True),
            ("last_modified", pa.string(), True),
            ("fetched_at", TS, False),
        ),
        keys=("sha256",),
        audit=("fetched_at",),
        description="fetched poster metadata; bytes live in the content-addressed blob store",
    ),
    TableSpec(
        name="poster_fetches",
        schema=_schema(
            ("url", pa.string(), False),
            ("kind", pa.string(), False),  # poster | plot
            ("status", pa.string(), False),  # ok | failed
            ("sha256", pa.string(), True),  # the stored blob (posters) or text hash (plots)
            ("http_status", pa.int32(), True),
            ("reason", pa.string(), True),  # why it failed
            ("etag", pa.string(), True),
            ("last_modified", pa.string(), True),
            ("attempts", pa.int32(), True),
            ("fetched_at", TS, False),
        ),
        keys=("url",),
        audit=("fetched_at", "attempts"),
        description="one row per fetched URL: outcome, validators for conditional refresh",
    ),
    TableSpec(
        name="dialogues",
        schema=_schema(
            ("dialogue_id", pa.string(), False),
            ("source", pa.string(), False),
            ("source_file", pa.string(), True),
            ("seeker_id", pa.string(), True),
            ("recommender_id", pa.string(), True),
            ("n_turns", pa.int32(), False),
            ("n_quarantined_turns", pa.int32(), False),
            ("content_hash", pa.string(), False),
            ("ingested_at", TS, False),
        ),
        keys=("dialogue_id",),
        audit=("ingested_at", "source_file"),
        description="one row per dialogue: source format, participants, turn count",
    ),
    TableSpec(
        name="turns",
        schema=_schema(
            ("dialogue_id", pa.string(), False),
            ("turn_idx", pa.int32(), False),
            ("role", pa.string(), False),  # seeker | recommender
            ("text", pa.string(), False),  # mentions normalised to @<item_id>
            ("mentioned_item_ids", STR_LIST, False),
            ("liked", pa.list_(pa.bool_()), True),  # aligned with mentioned_item_ids, null = unknown
            ("seen", pa.list_(pa.bool_()), True),
            ("suggested", pa.list_(pa.bool_()), True),
            ("source_message_id", pa.string(), True),
            ("ingested_at", TS, False),
        ),
        keys=("dialogue_id", "turn_idx"),
        audit=("ingested_at",),
        description="dialogue turns: role, text with @item_id mentions, mentioned items and labels",
    ),
    TableSpec(
        name="quarantine",
        schema=_schema(
            ("source", pa.string(), False),
            ("record_key", pa.string(), False),
            ("stage", pa.string(), False),
            ("reason", pa.string(), False),
            ("excerpt", pa.string(), True),
            ("flow_run_id", pa.string(), True),
            ("quarantined_at", TS, False),
        ),
        keys=("source", "record_key"),
        audit=("quarantined_at", "flow_run_id"),
        description="every rejected input with its reason and an excerpt",
    ),
    TableSpec(
        name="item_embeddings",
        schema=_schema(
            ("item_id", pa.string(), False),
            ("modality", pa.string(), False),
            ("model_id", pa.string(), False),
            ("source_hash", pa.string(), False),
            ("dim", pa.int32(), False),
            ("vector", VECTOR, False),
            ("computed_at", TS, False),
        ),
        keys=("item_id", "modality", "model_id"),
        partition_by=("modality",),
        audit=("computed_at",),
        description="item vectors per modality and model (list<float32> + dim)",
    ),
    TableSpec(
        name="item_graph_edges",
        schema=_schema(
            ("graph", pa.string(), False),
            ("src", pa.string(), False),
            ("dst", pa.string(), False),
            ("weight", pa.float32(), False),
            ("rank", pa.int32(), True),
        ),
        keys=("graph", "src", "dst"),
        partition_by=("graph",),
        description="kNN, co-mention and transition item graphs",
    ),
    TableSpec(
        name="item_summaries",
        schema=_schema(
            ("item_id", pa.string(), False),
            ("model_id", pa.string(), False),
            ("prompt_hash", pa.string(), False),
            ("summary", pa.string(), False),
            ("generated_at", TS, False),
        ),
        keys=("item_id", "model_id", "prompt_hash"),
        audit=("generated_at",),
        description="MLLM-MSR item summarizer output",
    ),
    TableSpec(
        name="preference_summaries",
        schema=_schema(
            ("dialogue_id", pa.string(), False),
            ("upto_turn", pa.int32(), False),
            ("model_id", pa.string(), False),
            ("prompt_hash", pa.string(), False),
            ("summary", pa.string(), False),
            ("generated_at", TS, False),
        ),
        keys=("dialogue_id", "upto_turn", "model_id", "prompt_hash"),
        audit=("generated_at",),
        description="recurrent user-preference summaries",
    ),
    TableSpec(
        name="model_registry",
        schema=_schema(
            ("model_name", pa.string(), False),
            ("version", pa.int32(), False),
            ("metrics", pa.string(), True),  # JSON
            ("config", pa.string(), True),  # JSON
            ("input_versions", pa.string(), True),  # JSON
            ("git_sha", pa.string(), True),
            ("artifact_uri", pa.string(), True),
            ("alias", pa.string(), True),
            ("registered_at", TS, False),
        ),
        keys=("model_name", "version"),
        audit=("registered_at",),
        description="trained models: metrics, config, inputs, artifact, alias",
    ),
    TableSpec(
        name="pipeline_runs",
        schema=_schema(
            ("run_id", pa.string(), False),
            ("stage", pa.string(), False),
            ("status", pa.string(), False),  # ok | failed
            ("flow_run_id", pa.string(), True),
            ("fingerprint", pa.string(), True),  # hash of the stage's inputs + config + code
            ("input_versions", pa.string(), True),  # JSON
            ("output_versions", pa.string(), True),  # JSON
            ("counts", pa.string(), True),  # JSON
            ("config_hash", pa.string(), True),
            ("started_at", TS, True),
            ("duration_s", pa.float64(), True),
        ),
        keys=("run_id", "stage"),
        description="one row per stage run: versions read and written, counts, duration, status",
    ),
)

TABLES: dict[str, TableSpec] = {spec.name: spec for spec in _SPECS}


def spec_for(table: str) -> TableSpec:
    """The spec of a catalog table; raises ``UnknownTableError`` naming the known tables."""
    try:
        return TABLES[table]
    except KeyError:
        raise UnknownTableError(table, sorted(TABLES)) from None
