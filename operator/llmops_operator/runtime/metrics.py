"""The operator's own Prometheus metrics: rollouts, analysis outcomes, reconciles."""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

PHASES = ("Pending", "Progressing", "Paused", "Ready", "Degraded", "Failed")


class OperatorMetrics:
    """One registry per operator process, so tests can create several."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.model_phase = Gauge(
            "llmops_model_phase",
            "1 for the Model's current phase, 0 for the others",
            ["namespace", "model", "phase"],
            registry=self.registry,
        )
        self.rollout_step = Gauge(
            "llmops_rollout_step_index",
            "Current canary step index",
            ["namespace", "model"],
            registry=self.registry,
        )
        self.rollout_weight = Gauge(
            "llmops_rollout_canary_weight",
            "Percentage of traffic on the canary",
            ["namespace", "model"],
            registry=self.registry,
        )
        self.analysis_measurements = Counter(
            "llmops_analysis_measurements",
            "Analysis measurements by outcome",
            ["namespace", "model", "metric", "phase"],
            registry=self.registry,
        )
        self.rollbacks = Counter(
            "llmops_rollbacks",
            "Automatic and manual rollbacks",
            ["namespace", "model"],
            registry=self.registry,
        )
        self.reconciles = Counter(
            "llmops_reconciles", "Reconcile passes by result", ["result"], registry=self.registry
        )
        self.model_passes = Counter(
            "llmops_model_reconciles",
            "Reconcile passes per Model (ok or not): proof that the operator looked at it",
            ["namespace", "model"],
            registry=self.registry,
        )
        self.reconcile_seconds = Histogram(
            "llmops_reconcile_duration_seconds", "Duration of one reconcile pass", registry=self.registry
        )
        self.api_requests = Gauge(
            "llmops_api_requests", "API requests made by reconciles since start", registry=self.registry
        )

    def serve(self, address: str, port: int) -> None:
        start_http_server(port, addr=address, registry=self.registry)

    def record_status(self, namespace: str, model: str, status: dict[str, Any]) -> None:
        """Phase, canary step and weight from the status a pass wrote."""
        self.set_phase(namespace, model, status.get("phase", "Pending"))
        rollout = status.get("rollout") or {}
        self.rollout_step.labels(namespace, model).set(rollout.get("stepIndex", 0))
        self.rollout_weight.labels(namespace, model).set(rollout.get("weight", 0))

    def set_phase(self, namespace: str, model: str, phase: str) -> None:
        for candidate in PHASES:
            self.model_phase.labels(namespace, model, candidate).set(1 if candidate == phase else 0)

    def forget(self, namespace: str, model: str) -> None:
        """Drop a deleted Model's series, so dashboards do not show it forever."""
        for gauge, labels in (
            *((self.model_phase, (namespace, model, phase)) for phase in PHASES),
            (self.rollout_step, (namespace, model)),
            (self.rollout_weight, (namespace, model)),
            (self.model_passes, (namespace, model)),
        ):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)
