"""Least-recently-used bounds for the operator's long-lived tables (issue 15).

A table keyed by something that keeps coming (revisions, EvalRuns, Event messages) grows with
the operator's uptime unless each entry is dropped with its object or the table is capped; these
helpers are the cap. Callers hold their own lock: none of this is thread-safe by itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def remember(table: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    """Put `key` last (most recently used) and drop the least recently used beyond `limit`."""
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)


def recall(table: OrderedDict[K, V], key: K) -> V | None:
    """The value of `key`, which becomes the most recently used; None when absent."""
    value = table.get(key)
    if value is not None:
        table.move_to_end(key)
    return value
