"""What the operator last applied to each owned object, so an unchanged apply is skipped.

Entries go with their objects: a watch DELETED (or the cache audit's drop), a plan's delete,
a deleted EvalRun (its identity objects, unwatched, go with it) and a deleted Model (everything
labelled with it). Unwatched objects removed by garbage collection send no event, so the table
is also capped (least recently used first): a dropped entry costs that object one idempotent
re-apply. Before this, every revision's Deployment, Service and ConfigMap and every EvalRun's
identity stayed here for the life of the process (issue 15).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from llmops_operator.lru import recall, remember

ObjectKey = tuple[str, str, str]
"""(kind, namespace, name)."""
MAX_ENTRIES = 32_768
"""About 30 owned objects per Model at 1000 Models; entries are a few hundred bytes."""


@dataclass(frozen=True)
class Applied:
    body_hash: str
    """Hash of the body last applied."""
    fingerprint: str
    """The generation (or resourceVersion) the apply returned: another one seen later is drift."""
    model: str | None
    """The owning Model (its label), so the entry goes with it."""


class AppliedTable:
    """Last apply per owned object, bounded (see module doc). Any thread."""

    def __init__(self, limit: int = MAX_ENTRIES) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._entries: OrderedDict[ObjectKey, Applied] = OrderedDict()

    def get(self, key: ObjectKey) -> Applied | None:
        with self._lock:
            return recall(self._entries, key)

    def put(self, key: ObjectKey, entry: Applied) -> None:
        with self._lock:
            remember(self._entries, key, entry, self.limit)

    def forget(self, keys: Iterable[ObjectKey]) -> None:
        """These objects are gone: the next apply of one of them is a real one."""
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)

    def forget_model(self, namespace: str, model: str) -> None:
        """A deleted Model: its owned objects go with it (garbage collection, no events)."""
        with self._lock:
            gone = [k for k, e in self._entries.items() if k[1] == namespace and e.model == model]
            for key in gone:
                del self._entries[key]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
