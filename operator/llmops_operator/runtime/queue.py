"""A deduplicating work queue: one reconcile per Model at a time, delayed requeues, bounded workers.

kopf's per-object handlers would add a finalizer and annotations to the user's Model; a queue fed by
watch events (the controller-runtime pattern) needs neither and keeps API traffic proportional to
what changed.

Thread safety: kopf runs sync event handlers in executor threads and reconciles run in worker
threads, so `add`, `add_after` and `forget` may be called from any thread. The key sets are guarded
by one lock; what belongs to the event loop (the asyncio queue that wakes workers, the requeue
timers) is only ever touched on the loop's thread: calls from other threads are handed over with
`call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

log = logging.getLogger("llmops.queue")


class WorkQueue:
    """Keys waiting for a reconcile. A key is never processed by two workers at once."""

    def __init__(self, error_retry_seconds: float = 10.0) -> None:
        self.error_retry_seconds = error_retry_seconds
        """Delay before a key whose reconcile raised is tried again."""
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._queued: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._dirty: set[Hashable] = set()
        self._timers: dict[Hashable, asyncio.TimerHandle] = {}
        self.open = asyncio.Event()
        """Workers take keys only while this is set (while this replica leads)."""
        self.open.set()
        self.last_progress = time.monotonic()
        """When a pass last finished (for /healthz)."""
        self.busy_since: float | None = None
        """Since when there has been work (queued or processing) without a break."""

    @property
    def work(self) -> int:
        """Keys waiting or being reconciled."""
        with self._lock:
            return len(self._queued) + len(self._processing)

    def _note_work(self) -> None:
        if self.work == 0:
            self.busy_since = None
        elif self.busy_since is None:
            self.busy_since = time.monotonic()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop the workers run on (set before any watch event arrives)."""
        self._loop = loop

    def _elsewhere(self, callback: Callable[..., Any], *args: Any) -> bool:
        """Hand `callback` to the loop's thread when called from another one; True if handed."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return False
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return False
        loop.call_soon_threadsafe(callback, *args)
        return True

    def add(self, key: Hashable) -> None:
        """Reconcile `key` soon; a no-op when it is already waiting. Any thread."""
        with self._lock:
            if key in self._processing:
                self._dirty.add(key)
                return
            if key in self._queued:
                return
            self._queued.add(key)
        if not self._elsewhere(self._queue.put_nowait, key):
            self._queue.put_nowait(key)
        self._note_work()

    def add_after(self, key: Hashable, delay: float) -> None:
        """Reconcile `key` after `delay` seconds; an earlier pending requeue wins. Any thread."""
        if self._elsewhere(self.add_after, key, delay):
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + max(delay, 0.0)
        existing = self._timers.get(key)
        if existing is not None and existing.when() <= due:
            return
        if existing is not None:
            existing.cancel()
        self._timers[key] = loop.call_at(due, self._fire, key)

    def forget(self, key: Hashable) -> None:
        """Drop pending timers for a deleted object. Any thread."""
        if self._elsewhere(self.forget, key):
            return
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def close(self) -> None:
        """Cancel every pending requeue (at shutdown, on the loop, before it closes)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    async def drained(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the passes in flight to finish."""
        deadline = time.monotonic() + timeout
        while self._processing and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._queued)

    async def worker(self, process: Callable[[Hashable], Awaitable[float | None]]) -> None:
        """Take keys forever; `process` returns seconds until the next resync, or None."""
        if self._loop is None:
            self.bind(asyncio.get_running_loop())
        while True:
            await self.open.wait()
            key = await self._queue.get()
            if not self.open.is_set():  # leadership lost while we waited: leave it queued
                self._queue.put_nowait(key)
                continue
            with self._lock:
                self._queued.discard(key)
                self._processing.add(key)
            try:
                requeue_after = await process(key)
            except asyncio.CancelledError:
                with self._lock:
                    self._processing.discard(key)
                raise
            except Exception:  # a bug in one Model's reconcile must not stop the others
                log.exception("reconcile of %s failed; retrying in %ss", key, self.error_retry_seconds)
                requeue_after = self.error_retry_seconds
            with self._lock:
                self._processing.discard(key)
                self.last_progress = time.monotonic()
                dirty = key in self._dirty
                self._dirty.discard(key)
            if dirty:
                self.add(key)
            elif requeue_after is not None:
                self.add_after(key, requeue_after)
            self._note_work()
