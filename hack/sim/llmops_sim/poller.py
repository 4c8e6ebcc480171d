"""A background thread that calls `poll()` every `interval` seconds until stopped.

The stand-ins that watch the dev cluster (pod mirror, eval Job runner, volume provisioner) share
it; a failed poll (the API server restarting) is retried on the next tick, never fatal.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Self


class Poller:
    """Subclasses implement `poll`; `start()` returns self so it chains after construction."""

    name = "poller"

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def poll(self) -> object:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.poll()
            self._stop.wait(self.interval)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
