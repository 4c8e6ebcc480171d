"""Recorded inputs of `kubectl llmops get`: the object set the plugin reads, taken from the dev
cluster during the integration tests, replayed by the golden-output test
(tests/unit/test_kubectl_plugin.py).

Set LLMOPS_RECORD_PLUGIN=1 when running the integration tests to refresh the recordings, then
LLMOPS_UPDATE_GOLDEN=1 when running the unit test to refresh the golden outputs.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import kubernetes

from llmops_operator.cli.kubectl_plugin import WIDTH, Snapshot, read_snapshot, render_tree
from llmops_operator.kube.client import Kube

RECORDINGS = Path(__file__).resolve().parent / "unit" / "testdata" / "plugin"


def _trim(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("managedFields", "uid", "resourceVersion")}
    return {**obj, "metadata": meta}


def snapshot_of(kubeconfig: str | Path, namespace: str, model: str) -> Snapshot:
    kube = Kube(kubernetes.config.new_client_from_config(config_file=str(kubeconfig)))
    return read_snapshot(kube, namespace, model)


def check_plugin_tree(kubeconfig: str | Path, namespace: str, model: str, case: str) -> str:
    """Render the live tree (it must fit the terminal); record its inputs as `case`."""
    snap = snapshot_of(kubeconfig, namespace, model)
    text = render_tree(snap)
    assert all(len(line) <= WIDTH for line in text.splitlines()), text
    assert f"Model {model}  namespace {namespace}" in text
    if os.environ.get("LLMOPS_RECORD_PLUGIN"):
        RECORDINGS.mkdir(parents=True, exist_ok=True)
        data = dataclasses.asdict(snap)
        for key in ("deployments", "pods", "eval_runs"):
            data[key] = [_trim(o) for o in data[key]]
        data["model"] = _trim(data["model"])
        (RECORDINGS / f"{case}.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return text
