"""The progress callback a stage reports to: ``progress(done, total)`` after each committed shard or chunk."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int], None]
