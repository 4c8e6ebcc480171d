"""Repeats of an Event update the Event already posted instead of creating another, as client-go's
EventCorrelator does for every controller's EventRecorder.

Without this, every pass that posts the same Warning (a ReconcileError retried with backoff, a
node with bad GPU labels) adds an Event object to etcd until the API server's `--event-ttl`
(default 1h) expires it. Two rules, with client-go's defaults:

- the same Event (object, type, reason, message) again: the existing Event's `count` goes up and
  its `lastTimestamp` moves (`kubectl describe` shows "x12 over 5m");
- `SIMILAR_LIMIT` Events of the same object, type and reason with different messages, each
  within `SIMILAR_WINDOW` of the one before: from the last of them on they are one Event,
  "(combined from similar events): " and the newest message, counted the same way.

What is remembered is bounded (`MAX_ENTRIES`, least recently used dropped): a forgotten key just
creates a new Event. An Event gone meanwhile (expired by the TTL) is created again. Similar-message
groups quiet for longer than `SIMILAR_WINDOW` are dropped (they would count from zero anyway), and
a deleted object's entries go with it (`forget_involved`), so messages naming revisions that come
and go do not sit in memory until the cap pushes them out (issue 15).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from llmops_operator.lru import remember

MAX_ENTRIES = 4096
"""Events remembered for aggregation (client-go: maxLruCacheEntries)."""
SIMILAR_LIMIT = 10
"""Distinct messages of one object, type and reason at which they are combined (client-go:
defaultAggregateMaxEvents: nine are posted as they are, the tenth on is combined)."""
SIMILAR_WINDOW = timedelta(minutes=10)
"""A quiet gap after which similar Events count from zero again (client-go:
defaultAggregateIntervalInSeconds)."""
COMBINED_PREFIX = "(combined from similar events): "

Key = tuple[str, ...]


@dataclass(frozen=True)
class Decision:
    """What to write for one Event: create it (`name` None) or patch the named one."""

    key: Key
    message: str
    count: int
    first_timestamp: str
    name: str | None


@dataclass
class _Posted:
    name: str
    count: int
    first_timestamp: str


@dataclass
class _Similar:
    messages: set[str]
    last: datetime


class EventCorrelator:
    """Thread-safe memory of the Events posted: `decide` before writing, `posted` after a create,
    `forget` when the Event to patch is gone."""

    def __init__(
        self,
        max_entries: int = MAX_ENTRIES,
        similar_limit: int = SIMILAR_LIMIT,
        similar_window: timedelta = SIMILAR_WINDOW,
    ) -> None:
        self.max_entries = max_entries
        self.similar_limit = similar_limit
        self.similar_window = similar_window
        self._lock = threading.Lock()
        self._posted: OrderedDict[Key, _Posted] = OrderedDict()
        self._similar: OrderedDict[Key, _Similar] = OrderedDict()

    def decide(
        self, involved: Key, type_: str, reason: str, message: str, now: datetime, stamp: str
    ) -> Decision:
        """`involved` identifies the object (namespace, kind, name, uid); `stamp` is `now` as
        the Event's timestamp text."""
        group = (*involved, type_, reason)
        with self._lock:
            self._drop_quiet(now)
            similar = self._similar.get(group)
            if similar is None or now - similar.last > self.similar_window:
                similar = _Similar(set(), now)
            if len(similar.messages) < self.similar_limit:
                similar.messages.add(message)
            similar.last = now
            remember(self._similar, group, similar, self.max_entries)
            if len(similar.messages) >= self.similar_limit:
                key, message = (*group, ""), COMBINED_PREFIX + message
            else:
                key = (*group, message)
            seen = self._posted.get(key)
            if seen is None:
                return Decision(key, message, 1, stamp, None)
            seen.count += 1
            self._posted.move_to_end(key)
            return Decision(key, message, seen.count, seen.first_timestamp, seen.name)

    def posted(self, decision: Decision, name: str) -> None:
        """The Event `decision` asked for was created as `name`."""
        with self._lock:
            remember(
                self._posted,
                decision.key,
                _Posted(name, decision.count, decision.first_timestamp),
                self.max_entries,
            )

    def forget(self, decision: Decision) -> None:
        with self._lock:
            self._posted.pop(decision.key, None)

    def forget_involved(self, namespace: str, kind: str, name: str) -> None:
        """The object is deleted: no Event of it will be repeated."""
        with self._lock:
            for table in (self._posted, self._similar):
                for key in [k for k in table if k[:3] == (namespace, kind, name)]:
                    del table[key]

    def __len__(self) -> int:
        """Entries remembered (both tables)."""
        with self._lock:
            return len(self._posted) + len(self._similar)

    def _drop_quiet(self, now: datetime) -> None:
        """Drop the groups quiet for longer than the window, least recently used first (the
        table's order): an expired group decides as an absent one does. Under the lock."""
        while self._similar:
            oldest = next(iter(self._similar.values()))
            if now - oldest.last <= self.similar_window:
                return
            self._similar.popitem(last=False)
