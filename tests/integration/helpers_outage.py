"""Outages for the day-2 tests: a Prometheus that hangs or goes away, an API server stopped.

`PrometheusGate` is a TCP proxy in front of the dev cluster's (shared) Prometheus, so one
operator's Prometheus can hang (accept connections, never answer) or be down (connection
refused) without touching what other tests use. The API server is the real one of this dev
cluster, stopped and started with the cluster's own scripts.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import threading
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[2]
Mode = Literal["forward", "hang", "down"]


class PrometheusGate:
    """127.0.0.1:<port> -> Prometheus, with a switch: forward, hang or down."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self.upstream = (host, int(port.rstrip("/")))
        self.mode: Mode = "forward"
        self._listener: socket.socket | None = None
        self.port = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PrometheusGate:
        self._listen()
        threading.Thread(target=self._accept_loop, name="prom-gate", daemon=True).start()
        return self

    def _listen(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        sock.settimeout(0.1)
        self.port = sock.getsockname()[1]
        self._listener = sock

    def set(self, mode: Mode) -> None:
        """Switch; `down` closes the port (connection refused), anything else opens it again."""
        with self._lock:
            if mode == "down" and self._listener is not None:
                self._listener.close()
                self._listener = None
            elif mode != "down" and self._listener is None:
                self._listen()
            if mode != "hang":
                for held in self._held:
                    with contextlib.suppress(OSError):
                        held.close()
                self._held.clear()
            self.mode = mode

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            listener = self._listener
            if listener is None:
                self._stop.wait(0.05)
                continue
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            if self.mode == "hang":
                with self._lock:
                    self._held.append(client)  # read nothing, answer nothing
                continue
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        sockets = [client, upstream]
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def stop(self) -> None:
        self._stop.set()
        self.set("forward")
        if self._listener is not None:
            self._listener.close()


def _cluster_script(command: str) -> None:
    subprocess.run(
        ["bash", "-c", f'source "{ROOT}/hack/cluster/lib.sh" && {command}'],
        check=True,
        timeout=300,
        env=os.environ,
        capture_output=True,
    )


def stop_api_server() -> None:
    """Stop this dev cluster's kube-apiserver process (TERM, then KILL after 5 s)."""
    _cluster_script("stop_component kube-apiserver")


def start_api_server() -> None:
    """Start it again the way `make dev-cluster` does (up.sh reuses everything else)."""
    subprocess.run(
        ["bash", str(ROOT / "hack" / "cluster" / "up.sh")],
        check=True,
        timeout=300,
        env=os.environ,
        capture_output=True,
    )
