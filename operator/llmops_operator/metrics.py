"""The operator's own Prometheus metrics: rollouts, analysis outcomes, reconciles, quality, cost."""

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
        self.reconcile_seconds = Histogram(
            "llmops_reconcile_duration_seconds", "Duration of one reconcile pass", registry=self.registry
        )
        self.api_requests = Gauge(
            "llmops_api_requests", "API requests made by reconciles since start", registry=self.registry
        )
        self.output_tokens = Gauge(
            "llmops_model_output_tokens_per_second",
            "Generated tokens per second over the Model's serving revisions (engine counters)",
            ["namespace", "model"],
            registry=self.registry,
        )
        self.gpu_hours = Gauge(
            "llmops_model_gpu_hours",
            "GPU-hours the Model's serving revisions spent ready (replicas x GPUs x time)",
            ["namespace", "model"],
            registry=self.registry,
        )
        self.cost_per_million = Gauge(
            "llmops_model_cost_per_million_output_tokens",
            "What a million generated tokens cost now, in the price table's currency",
            ["namespace", "model"],
            registry=self.registry,
        )
        self.quality_degraded = Gauge(
            "llmops_model_quality_degraded",
            "1 when the Model's condition QualityDegraded is True, else 0",
            ["namespace", "model"],
            registry=self.registry,
        )
        self.quality_score = Gauge(
            "llmops_model_quality_score",
            "Mean case score of the newest finished scheduled evaluation, per gate",
            ["namespace", "model", "gate"],
            registry=self.registry,
        )
        self.scheduled_evaluations = Counter(
            "llmops_scheduled_evaluations",
            "Scheduled EvalRuns started",
            ["namespace", "model", "gate"],
            registry=self.registry,
        )
        self._gates: dict[tuple[str, str], set[str]] = {}

    def serve(self, address: str, port: int) -> None:
        start_http_server(port, addr=address, registry=self.registry)

    def set_phase(self, namespace: str, model: str, phase: str) -> None:
        for candidate in PHASES:
            self.model_phase.labels(namespace, model, candidate).set(1 if candidate == phase else 0)

    def set_monitoring(self, namespace: str, model: str, status: dict[str, Any]) -> None:
        """Quality and cost gauges from a Model's status (absent values: no series)."""
        cost = status.get("cost") or {}
        for gauge, value in (
            (self.output_tokens, cost.get("outputTokensPerSecond")),
            (self.cost_per_million, cost.get("costPerMillionOutputTokens")),
            (
                self.gpu_hours,
                sum(r.get("gpuHours", 0.0) for r in cost.get("revisions") or []) if cost else None,
            ),
        ):
            if value is None:
                with contextlib.suppress(KeyError):
                    gauge.remove(namespace, model)
            else:
                gauge.labels(namespace, model).set(value)
        degraded = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "QualityDegraded"), None
        )
        if degraded is None:
            with contextlib.suppress(KeyError):
                self.quality_degraded.remove(namespace, model)
        else:
            self.quality_degraded.labels(namespace, model).set(1 if degraded.get("status") == "True" else 0)
        gates = self._gates.setdefault((namespace, model), set())
        current = {t["gate"]: t.get("lastScore") for t in status.get("quality") or [] if t.get("gate")}
        for gate in gates - {g for g, score in current.items() if score is not None}:
            with contextlib.suppress(KeyError):
                self.quality_score.remove(namespace, model, gate)
            gates.discard(gate)
        for gate, score in current.items():
            if score is not None:
                self.quality_score.labels(namespace, model, gate).set(score)
                gates.add(gate)

    def forget(self, namespace: str, model: str) -> None:
        """Drop a deleted Model's series, so dashboards do not show it forever."""
        gates = self._gates.pop((namespace, model), set())
        for gauge, labels in (
            *((self.model_phase, (namespace, model, phase)) for phase in PHASES),
            (self.rollout_step, (namespace, model)),
            (self.rollout_weight, (namespace, model)),
            (self.output_tokens, (namespace, model)),
            (self.gpu_hours, (namespace, model)),
            (self.cost_per_million, (namespace, model)),
            (self.quality_degraded, (namespace, model)),
            *((self.quality_score, (namespace, model, gate)) for gate in gates),
        ):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)
