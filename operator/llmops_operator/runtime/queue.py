"""A deduplicating work queue: one reconcile per Model at a time, delayed requeues, bounded workers.

kopf's per-object handlers would add a finalizer and annotations to the user's Model; a queue fed by
watch events (the controller-runtime pattern) needs neither and keeps API traffic proportional to
what changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger("llmops.queue")


class WorkQueue:
    """Keys waiting for a reconcile. A key is never processed by two workers at once."""

    def __init__(self, error_retry_seconds: float = 10.0) -> None:
        self.error_retry_seconds = error_retry_seconds
        """Delay before a key whose reconcile raised is tried again."""
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._queued: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._dirty: set[Hashable] = set()
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}

    def add(self, key: Hashable) -> None:
        """Reconcile `key` soon; a no-op when it is already waiting."""
        if key in self._processing:
            self._dirty.add(key)
            return
        if key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: Hashable, delay: float) -> None:
        """Reconcile `key` after `delay` seconds; an earlier pending requeue wins."""
        loop = asyncio.get_running_loop()
        due = loop.time() + max(delay, 0.0)
        existing = self._timers.get(key)
        if existing is not None and existing.when() <= due:
            return
        if existing is not None:
            existing.cancel()
        self._timers[key] = loop.call_at(due, self._fire, key)

    def forget(self, key: Hashable) -> None:
        """Drop pending timers for a deleted object."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def close(self) -> None:
        """Cancel every pending requeue (at shutdown, before the loop closes)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def __len__(self) -> int:
        return len(self._queued)

    async def worker(self, process: Callable[[Hashable], Awaitable[float | None]]) -> None:
        """Take keys forever; `process` returns seconds until the next resync, or None."""
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._processing.add(key)
            try:
                requeue_after = await process(key)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one Model's reconcile must not stop the others
                log.exception("reconcile of %s failed; retrying in %ss", key, self.error_retry_seconds)
                requeue_after = self.error_retry_seconds
            finally:
                self._processing.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self.add(key)
            elif requeue_after is not None:
                self.add_after(key, requeue_after)
