"""Skip a reconcile pass whose inputs have not changed since the last one.

A pass is a pure function of its `World` (plan_model) plus the clock. So when every input of the
World is what it was after the last pass (the World's fingerprint), and no timer the plan asked
for is due, planning again would decide the same thing: the pass is skipped. The fingerprint
covers every field of `World` but the clock and the analysis measurements (taken only when the
plan's own analysis timer is due). Watched objects are summarised by uid and resourceVersion
(the API server gives every content change a new one); everything else by its value.

After a pass, the fingerprint is taken of the world *as the pass left it* (the status and
objects the API server returned for our writes), so the watch events echoing our own writes
find nothing new. A full re-plan still runs every `full_resync` seconds as a safety net.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from llmops_operator.model_plan.world import World

UNFINGERPRINTED = frozenset({"now", "measurements", "measurements_pending"})
"""World fields that are not inputs to compare: the clock (timers cover it) and the analysis
measurements and whether they are still being taken (taken only when the plan's analysis timer
is due, so never at a skipped pass)."""


def _summary(value: Any) -> Any:
    """A canonical, cheap stand-in for one input: API objects by (uid, resourceVersion)."""
    if isinstance(value, Mapping):
        meta = value.get("metadata")
        if isinstance(meta, Mapping) and meta.get("resourceVersion"):
            return ("obj", meta.get("uid"), meta.get("namespace"), meta.get("name"), meta["resourceVersion"])
        return ("map", tuple((str(k), _summary(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("seq", tuple(_summary(v) for v in value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple(_summary(getattr(value, f.name)) for f in dataclasses.fields(value)),
        )
    if isinstance(value, bytes):
        return ("bytes", hashlib.blake2b(value, digest_size=16).hexdigest())
    return value


def fingerprint(world: World) -> str:
    """A digest of every plan input of `world` (see module doc)."""
    parts = tuple(
        (f.name, _summary(getattr(world, f.name)))
        for f in dataclasses.fields(world)
        if f.name not in UNFINGERPRINTED
    )
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class LastPass:
    """What the last full pass over one object saw and when it has to look again."""

    fingerprint: str
    due: float | None
    """Clock time (seconds) of the plan's own next timer (None: the plan asked for none)."""
    full_due: float
    """Clock time of the next full re-plan whatever the fingerprint says (safety resync)."""


def versions(world: World) -> dict[str, str]:
    """uid -> resourceVersion of every API object among the World's inputs."""
    out: dict[str, str] = {}
    for f in dataclasses.fields(world):
        value = getattr(world, f.name)
        for obj in (
            [value] if isinstance(value, Mapping) else value if isinstance(value, list | tuple) else ()
        ):
            meta = obj.get("metadata") if isinstance(obj, Mapping) else None
            if isinstance(meta, Mapping) and meta.get("uid") and meta.get("resourceVersion"):
                out[meta["uid"]] = meta["resourceVersion"]
    return out


WRITTEN_LIMIT = 100_000
"""Bound of the written-versions table (cleared when full: the next passes are full ones).
Entries of deleted objects are dropped with them, so it holds about the live objects we wrote."""


class PassCache:
    """The last full pass per key. Any thread (a key is only ever processed by one worker)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[Hashable, LastPass] = {}
        self._written: dict[str, str] = {}

    def wrote(self, obj: Mapping[str, Any]) -> None:
        """The API server answered one of our writes with `obj` (uid and resourceVersion)."""
        meta = obj.get("metadata") or {}
        if meta.get("uid") and meta.get("resourceVersion"):
            with self._lock:
                if len(self._written) >= WRITTEN_LIMIT:
                    self._written.clear()
                self._written[meta["uid"]] = meta["resourceVersion"]

    def forget_written(self, uid: str) -> None:
        """The object is gone: its written version is never compared again."""
        with self._lock:
            self._written.pop(uid, None)

    def settle(
        self, key: Hashable, seen: World, left: World, now: float, requeue: float | None, full_resync: float
    ) -> None:
        """Record the pass over `key` with the world it `left` (our writes' answers in place of
        what it `seen`), unless something else changed meanwhile: an object in `left` that is
        neither as seen nor as we wrote it, or one that is gone, means the next pass must plan."""
        before, after = versions(seen), versions(left)
        with self._lock:
            ours = all(before.get(uid) == rv or self._written.get(uid) == rv for uid, rv in after.items())
        if ours and before.keys() <= after.keys():
            self.record(key, fingerprint(left), now, requeue, full_resync)
        else:
            self.forget(key)

    def skip(self, key: Hashable, print_: str, now: float) -> float | None:
        """Seconds until the next timer when the pass over `key` can be skipped, else None."""
        with self._lock:
            last = self._last.get(key)
        if last is None or last.fingerprint != print_ or now >= last.full_due:
            return None
        if last.due is not None and now >= last.due:
            return None
        return min(last.full_due, last.due if last.due is not None else last.full_due) - now

    def record(
        self, key: Hashable, print_: str, now: float, requeue: float | None, full_resync: float
    ) -> None:
        """A full pass over `key` finished at `now`; the plan asked to look again after `requeue`."""
        entry = LastPass(print_, None if requeue is None else now + requeue, now + full_resync)
        with self._lock:
            self._last[key] = entry

    def forget(self, key: Hashable) -> None:
        """The next pass over `key` is a full one (a failed pass, a deleted object)."""
        with self._lock:
            self._last.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._last)
