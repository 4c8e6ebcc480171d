"""CPU-seconds of the dev cluster's processes, by component, from the cluster's pid files
(`$LLMOPS_CLUSTER_DIR/pids/<name>.pid`, written by hack/cluster/up.sh)."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

STATE = Path(os.environ.get("LLMOPS_CLUSTER_DIR", Path(__file__).resolve().parent.parent / ".cluster"))
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "prometheus")


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU of a process, its live children and the children it reaped."""
    total = 0.0
    for p in (process, *process.children(recursive=True)):
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def component_cpu() -> dict[str, float]:
    """Each running component's CPU-seconds so far."""
    out: dict[str, float] = {}
    for name in COMPONENTS:
        try:
            pid = int((STATE / "pids" / f"{name}.pid").read_text().strip())
            out[name] = round(cpu_seconds(psutil.Process(pid)), 1)
        except (OSError, ValueError, psutil.Error):
            continue
    return out


def used_since(before: dict[str, float]) -> dict[str, float]:
    """CPU-seconds each component used since `before` (a `component_cpu()` taken earlier)."""
    return {name: round(now - before.get(name, 0.0), 1) for name, now in component_cpu().items()}
