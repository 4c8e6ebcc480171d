"""Analysis measurements off the reconcile path, with a deadline by elapsed time.

A pass that measured inline waited for Prometheus: a hung Prometheus (accepting connections,
never answering) held every pass of a Model for two query timeouts, and a user's abort waited
behind it. Here a round of queries runs in a pool of its own; a pass waits for it only briefly,
then goes on without it (the rollout holds: `measurements_pending`), and the round's answer is
picked up by the pass after it lands. A round that has not answered within the deadline is
recorded as Error measurements saying so, so a hang counts towards `consecutiveErrorLimit` by
elapsed time, not by how many passes happened to run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from llmops_operator.api.rollout import Measurement

log = logging.getLogger("llmops.measurements")
INLINE_WAIT_SECONDS = 1.0
"""How long a pass waits for a round before going on without it (a healthy Prometheus answers
well within this, so passes behave as if the measurement were inline)."""


@dataclass
class _Round:
    request: tuple[str, ...]
    future: Future[list[Measurement]]
    started: float = field(default_factory=time.monotonic)
    wake: bool = False
    """A pass went on without this round: its answer must wake the Model (once)."""


@dataclass(frozen=True)
class Taken:
    """What a pass gets: measurements to record, or None while the round is still running."""

    measurements: list[Measurement] | None
    retry_after: float = 0.0
    """While pending: seconds until the round times out (the pass should come back by then)."""


def timed_out(metrics: Sequence[str], elapsed: float, where: str, now: datetime) -> list[Measurement]:
    """Error measurements of a round that did not answer in time."""
    return [
        Measurement(
            metric=name,
            phase="Error",
            measured_at=now,
            message=f"{name}: Prometheus at {where} is unreachable: no answer within {elapsed:.0f}s",
        )
        for name in metrics
    ]


class MeasurementRounds:
    """At most one round in flight per key; `take` never blocks longer than `wait_seconds`."""

    def __init__(
        self,
        deadline_seconds: float,
        on_done: Callable[[Hashable], None],
        workers: int = 8,
        wait_seconds: float = INLINE_WAIT_SECONDS,
    ) -> None:
        self.deadline = deadline_seconds
        self.wait_seconds = wait_seconds
        self.on_done = on_done
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="measure")
        self._rounds: dict[Hashable, _Round] = {}
        self._lock = threading.Lock()

    def take(
        self,
        key: Hashable,
        revision: str,
        metrics: tuple[str, ...],
        run: Callable[[], list[Measurement]],
        where: str,
        now: datetime,
    ) -> Taken:
        """The measurements of `metrics` for the canary `revision`: finished ones, Errors when
        the round is past its deadline, or None while it runs. Starts the round if none is
        running for this request."""
        request = (revision, *metrics)
        with self._lock:
            current = self._rounds.get(key)
            if current is not None and current.request != request:
                self._rounds.pop(key)  # asked for something else now; its answer is dropped
                current = None
            if current is None:
                current = _Round(request, self._pool.submit(run))
                self._rounds[key] = current
        try:
            result = current.future.result(timeout=self.wait_seconds)
        except TimeoutError:
            elapsed = time.monotonic() - current.started
            if elapsed < self.deadline:
                with self._lock:
                    wake, current.wake = not current.wake, True
                if wake:  # only a round nobody waited for wakes its Model: no pass loops on it
                    current.future.add_done_callback(lambda _f, key=key: self.on_done(key))
                return Taken(None, retry_after=self.deadline - elapsed)
            self._drop(key, current)
            log.warning("measurements for %s: no answer within %.0fs, recorded as Error", key, elapsed)
            return Taken(timed_out(metrics, elapsed, where, now))
        except Exception as exc:  # a bug in a provider: an Error, never a silent pass
            self._drop(key, current)
            return Taken(timed_out(metrics, 0, f"{where} ({exc})", now))
        self._drop(key, current)
        return Taken(result)

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._rounds.pop(key, None)

    def _drop(self, key: Hashable, round_: _Round) -> None:
        with self._lock:
            if self._rounds.get(key) is round_:
                self._rounds.pop(key)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
