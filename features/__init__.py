"""mmcrs feature store: the Delta lake under every stage, and the researchers' read API.

Example:
    >>> import features
    >>> features.tables()                                  # doctest: +SKIP
    >>> features.read("turns", version=3).collect()        # doctest: +SKIP
    >>> features.read("items", as_of=datetime(2026, 11, 1)).collect()  # doctest: +SKIP
    >>> features.history("turns")                          # doctest: +SKIP
    >>> features.read("turns", missing="empty").collect()   # doctest: +SKIP
"""

from features.catalog import TABLES, TableSpec, spec_for
from features.commits import CommitInfo, code_version, config_hash
from features.errors import (
    CorruptTableError,
    DuplicateKeyError,
    LakeError,
    SchemaMismatchError,
    TableNotFoundError,
    UnknownTableError,
)
from features.lake import Lake, resolve_lake
from features.quarantine import QuarantineRecord, quarantine
from features.read import history, read, resolve_version, tables
from features.settings import Settings
from features.store import table_version, table_versions, unreadable_as_lake_error
from features.write import WriteResult, append, delete, delete_keys, replace_partition, update_columns, upsert

__all__ = [
    "TABLES",
    "CommitInfo",
    "CorruptTableError",
    "DuplicateKeyError",
    "Lake",
    "LakeError",
    "QuarantineRecord",
    "SchemaMismatchError",
    "Settings",
    "TableNotFoundError",
    "TableSpec",
    "UnknownTableError",
    "WriteResult",
    "append",
    "code_version",
    "config_hash",
    "delete",
    "delete_keys",
    "history",
    "quarantine",
    "read",
    "replace_partition",
    "resolve_lake",
    "resolve_version",
    "spec_for",
    "table_version",
    "table_versions",
    "tables",
    "unreadable_as_lake_error",
    "update_columns",
    "upsert",
]
