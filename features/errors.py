"""Errors of the lake layer. Each names the table (and column) it is about."""

from __future__ import annotations


class LakeError(Exception):
    """Base class for lake errors."""


class UnknownTableError(LakeError, KeyError):
    """A table name that is not in the catalog."""

    def __init__(self, table: str, known: list[str]) -> None:
        super().__init__(f"unknown table {table!r}; known tables: {', '.join(known)}")
        self.table = table

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class TableNotFoundError(LakeError, FileNotFoundError):
    """A catalog table that has not been written to this lake yet."""

    def __init__(self, table: str, uri: str) -> None:
        super().__init__(f"table {table!r} does not exist yet at {uri} (no stage has written it)")
        self.table = table


class SchemaMismatchError(LakeError, ValueError):
    """Data that cannot be written to a table without an incompatible schema change."""

    def __init__(self, table: str, column: str, problem: str) -> None:
        super().__init__(f"table {table!r}, column {column!r}: {problem}")
        self.table = table
        self.column = column


class DuplicateKeyError(LakeError, ValueError):
    """A write whose own rows repeat a key."""

    def __init__(self, table: str, keys: tuple[str, ...], example: dict[str, object]) -> None:
        super().__init__(f"table {table!r}: duplicate key {keys} in the written data, e.g. {example}")
        self.table = table


class CorruptTableError(LakeError):
    """A table whose commit log or data files cannot be read (truncated log entry, missing data file)."""

    def __init__(self, table: str, uri: str, problem: str) -> None:
        first = (problem.strip().splitlines() or ["unknown problem"])[0]
        super().__init__(f"table {table!r} at {uri} is unreadable: {first}")
        self.table = table
