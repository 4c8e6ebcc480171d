"""The Grafana dashboard's queries against the real Prometheus: each panel's query parses and
returns series while a canary with analysis runs, the emitter stands in for the engines'
traffic, an EvalRun has a result, and Prometheus scrapes the session operator's metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers_canary import CanaryModel, analysis, canary_spec, error_rate, ttft_ratio
from helpers_model import Kubectl, unique

from llmops_operator.cli.eval_cmd import _patch_status
from llmops_operator.kube.client import Kube
from polling import wait_for

pytestmark = pytest.mark.cluster

DASHBOARD = Path(__file__).resolve().parents[2] / "manifests" / "monitoring" / "llmops-dashboard.json"
BUSY = {"rps": 50.0}


def panel_queries(namespace: str, model: str) -> list[tuple[str, str]]:
    """(panel title, PromQL) with the dashboard's variables set as Grafana would."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [
        (
            panel["title"],
            target["expr"]
            .replace("$namespace", namespace)
            .replace("$model", model)
            .replace("$__rate_interval", "1m"),
        )
        for panel in panels
        for target in panel["targets"]
    ]


def test_every_dashboard_query_returns_series(
    cluster: Any, namespace: str, operator: Any, traffic: Any, prometheus: Any
) -> None:
    kube = Kubectl(cluster.kubeconfig)
    model = CanaryModel(kube, namespace, unique("dash"), operator.log_tail)
    steps = [{"setWeight": 50}, {"analysis": {}}, {"pause": {"duration": "10m"}}]
    old = model.given_stable(canary_spec(steps, analysis("2s", ttft_ratio(), error_rate()), replicas=2))
    traffic.set_shape("steady", revision=old, namespace=namespace, **BUSY)
    canary = model.when_args_change()
    traffic.set_shape("steady", revision=canary, namespace=namespace, **BUSY)

    # an EvalRun of this Model with a result, written the way the eval Job writes it
    kube.apply(
        {
            "apiVersion": "llmops.dev/v1alpha1",
            "kind": "EvalRun",
            "metadata": {"name": f"{model.name}-quality", "labels": {"llmops.dev/model": model.name}},
            "spec": {"gate": "quality", "model": model.name, "revision": canary, "endpoint": "http://x/v1"},
        },
        namespace,
    )
    scores = {"passRate": 0.9, "score": 0.9}
    _patch_status(
        Kube(cluster.api_client),
        namespace,
        f"{model.name}-quality",
        {"phase": "Passed", "candidate": scores, "baseline": scores},
    )
    model.wait(
        lambda m: ((m.get("status") or {}).get("rollout") or {}).get("stepIndex") == 2,
        90,
        "the canary at its pause step, past the analysis",
    )

    for title, query in panel_queries(namespace, model.name):
        # a query Prometheus cannot parse raises at once; one that parses must return series
        wait_for(lambda query=query: prometheus.query(query), 60, 1.0, f"panel {title!r}: {query}")
