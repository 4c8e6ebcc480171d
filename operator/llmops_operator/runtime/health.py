"""`/healthz` and `/readyz` for the kubelet.

/healthz fails (503) when the leader's work queue has had work for `stall_seconds` without a
single pass finishing: a wedged worker pool (every worker stuck in a call that never returns)
is then restarted by the kubelet instead of serving nothing forever. A standby has work queued
by design and is never "stalled".

/readyz answers 200 once the watches have listed (the caches are warm), leader or not, so a
rolling update can bring the new pod up before the old one hands over; its JSON body says
whether this replica leads.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("llmops.health")
DEFAULT_STALL_SECONDS = 300.0


def stalled(
    now: float,
    work: int,
    busy_since: float | None,
    last_progress: float,
    leading_since: float | None,
    limit: float,
) -> bool:
    """True when we lead, have work, and nothing finished for `limit` seconds since we had work
    and since we lead (a new leader is not stalled for the time it stood by)."""
    if work <= 0 or leading_since is None or busy_since is None:
        return False
    return now - max(last_progress, busy_since, leading_since) > limit


@dataclass
class HealthSources:
    """Where the endpoints read from (callables, so tests can drive them)."""

    work: Callable[[], int]
    busy_since: Callable[[], float | None]
    last_progress: Callable[[], float]
    leading_since: Callable[[], float | None]
    cache_synced: Callable[[], bool]
    stall_seconds: float = DEFAULT_STALL_SECONDS
    clock: Callable[[], float] = time.monotonic

    def healthz(self) -> tuple[int, dict[str, Any]]:
        now = self.clock()
        work, last = self.work(), self.last_progress()
        bad = stalled(now, work, self.busy_since(), last, self.leading_since(), self.stall_seconds)
        body = {"ok": not bad, "work": work, "secondsSinceProgress": round(now - last, 1)}
        if bad:
            body["reason"] = f"work queued and no reconcile finished for over {self.stall_seconds:.0f}s"
        return (503 if bad else 200), body

    def readyz(self) -> tuple[int, dict[str, Any]]:
        synced = self.cache_synced()
        body = {"ok": synced, "cacheSynced": synced, "leader": self.leading_since() is not None}
        return (200 if synced else 503), body


def serve(address: str, port: int, sources: HealthSources) -> ThreadingHTTPServer:
    """Serve the endpoints from a daemon thread; returns the server (its port when `port` is 0)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = {"/healthz": sources.healthz, "/readyz": sources.readyz}.get(self.path.split("?")[0])
            if route is None:
                self.send_error(404)
                return
            code, body = route()
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds
            log.debug(format, *args)

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
