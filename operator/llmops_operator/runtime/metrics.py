"""The operator's own Prometheus metrics: rollouts, analysis outcomes, evals, reconciles, quality, cost.

The alert rules and the dashboard (manifests/monitoring/, the chart's `monitoring` values) use
these names; tests/unit/monitoring/test_monitoring_rules.py checks that every name they use is defined here.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llmops_operator.evals.gate import newest_runs

PHASES = ("Pending", "Progressing", "Paused", "Ready", "Degraded", "Failed")
PAUSE_REASONS = ("PausedStep", "Inconclusive", "EvalGateError", "AnalysisError")
EVAL_PHASES = ("Pending", "Running", "Passed", "Failed", "Error")
MODEL = ("namespace", "model")
"""The labels of every per-Model series."""
_M = TypeVar("_M", Gauge, Counter, Histogram)


@dataclass(slots=True)
class ModelSeries:
    """The series every Model has, as plain values rendered at scrape time: a prometheus_client
    child per series (16 per Model) held about 14 KB per Model, 68 MiB at 5000 Models."""

    created: float = field(default_factory=time.time)
    phase: str | None = None
    """None until a phase is recorded (then one series per phase, 1 for the current one)."""
    recorded: bool = False
    """The status series (readiness, GPUs, canary step and weight, pauses, rollbacks) exist."""
    ready: float = 0.0
    gpus: float = 0.0
    step: float = 0.0
    weight: float = 0.0
    paused: frozenset[str] = frozenset()
    rollbacks: float = 0.0
    passes: float | None = None


MODEL_SERIES_HELP = {
    "llmops_model_phase": "1 for the Model's current phase, 0 for the others",
    "llmops_model_ready": "1 while the Model's Ready condition is True",
    "llmops_model_gpus": "GPUs requested by the Model's pods (replicas x GPUs per replica)",
    "llmops_rollout_step_index": "Current canary step index",
    "llmops_rollout_canary_weight": "Percentage of traffic on the canary",
    "llmops_rollout_paused": "1 for each reason the rollout is paused on, 0 for the others",
    "llmops_rollbacks": "Automatic and manual rollbacks",
    "llmops_model_reconciles": "Reconcile passes per Model (ok or not): proof that the operator looked at it",
}


class ModelSeriesCollector(Collector):
    """Renders every Model's `ModelSeries` with the names and labels of the metrics they replace."""

    def __init__(self, models: dict[tuple[str, str], ModelSeries], lock: threading.Lock) -> None:
        self._models, self._lock = models, lock

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        phase, ready, gpus, step, weight, paused, rollbacks, passes = families
        with self._lock:
            snapshot = [(key, replace(series)) for key, series in self._models.items()]
        for (namespace, model), s in snapshot:
            key = [namespace, model]
            if s.phase is not None:
                for candidate in PHASES:
                    phase.add_metric([*key, candidate], 1.0 if candidate == s.phase else 0.0)
            if s.recorded:
                ready.add_metric(key, s.ready)
                gpus.add_metric(key, s.gpus)
                step.add_metric(key, s.step)
                weight.add_metric(key, s.weight)
                for reason in PAUSE_REASONS:
                    paused.add_metric([*key, reason], 1.0 if reason in s.paused else 0.0)
                rollbacks.add_metric(key, s.rollbacks, created=s.created)
            if s.passes is not None:
                passes.add_metric(key, s.passes, created=s.created)
        return iter(families)

    @staticmethod
    def _families() -> list[Metric]:
        def gauge(name: str, *extra: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, MODEL_SERIES_HELP[name], labels=[*MODEL, *extra])

        def counter(name: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, MODEL_SERIES_HELP[name], labels=list(MODEL))

        return [
            gauge("llmops_model_phase", "phase"),
            gauge("llmops_model_ready"),
            gauge("llmops_model_gpus"),
            gauge("llmops_rollout_step_index"),
            gauge("llmops_rollout_canary_weight"),
            gauge("llmops_rollout_paused", "reason"),
            counter("llmops_rollbacks"),
            counter("llmops_model_reconciles"),
        ]


class OperatorMetrics:
    """One registry per operator process, so tests can create several."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._series: dict[tuple[str, str], set[tuple[Gauge | Counter, tuple[str, ...]]]] = {}
        self._models: dict[tuple[str, str], ModelSeries] = {}
        self._models_lock = threading.Lock()
        self.registry.register(ModelSeriesCollector(self._models, self._models_lock))
        self._define_rollout_metrics()
        self._define_reconcile_metrics()
        self._define_eval_metrics()
        self._define_cost_metrics()

    def _metric(self, kind: type[_M], name: str, documentation: str, labels: Sequence[str] = ()) -> _M:
        return kind(name, documentation, labels, registry=self.registry)

    def _define_rollout_metrics(self) -> None:
        """Analysis outcomes (canary progress, pauses and rollbacks are `ModelSeries`)."""
        self.analysis_measurements = self._metric(
            Counter,
            "llmops_analysis_measurements",
            "Analysis measurements by outcome",
            (*MODEL, "metric", "phase"),
        )

    def _define_reconcile_metrics(self) -> None:
        """The operator's own work: passes, their duration, API requests, queue, Prometheus."""
        self.reconciles = self._metric(
            Counter, "llmops_reconciles", "Reconcile passes by result", ("result",)
        )
        self.reconcile_seconds = self._metric(
            Histogram, "llmops_reconcile_duration_seconds", "Duration of one reconcile pass"
        )
        self.api_requests = self._metric(
            Gauge, "llmops_api_requests", "API requests made by reconciles since start"
        )
        self.api_requests_by = self._metric(
            Gauge,
            "llmops_api_requests_by_resource",
            "API requests made by reconciles since start, by verb and resource",
            ("verb", "resource"),
        )
        self.queue_depth = self._metric(Gauge, "llmops_work_queue_depth", "Models waiting for a reconcile")
        self.prometheus_up = self._metric(
            Gauge, "llmops_prometheus_up", "1 when the operator's last Prometheus query reached Prometheus"
        )

    def _define_eval_metrics(self) -> None:
        """EvalRuns of each gate and the scheduled evaluations' quality."""
        self.eval_run_phase = self._metric(
            Gauge,
            "llmops_eval_run_phase",
            "1 for the phase of the latest EvalRun of a Model's gate",
            (*MODEL, "gate", "phase"),
        )
        self.eval_pass_rate = self._metric(
            Gauge,
            "llmops_eval_pass_rate",
            "Pass rate of the latest finished EvalRun of a Model's gate",
            (*MODEL, "gate", "side"),
        )
        self.quality_degraded = self._metric(
            Gauge,
            "llmops_model_quality_degraded",
            "1 when the Model's condition QualityDegraded is True, else 0",
            MODEL,
        )
        self.quality_score = self._metric(
            Gauge,
            "llmops_model_quality_score",
            "Mean case score of the newest finished scheduled evaluation, per gate",
            (*MODEL, "gate"),
        )
        self.scheduled_evaluations = self._metric(
            Counter, "llmops_scheduled_evaluations", "Scheduled EvalRuns started", (*MODEL, "gate")
        )

    def _define_cost_metrics(self) -> None:
        """Throughput and what it costs."""
        self.output_tokens = self._metric(
            Gauge,
            "llmops_model_output_tokens_per_second",
            "Generated tokens per second over the Model's serving revisions (engine counters)",
            MODEL,
        )
        self.gpu_hours = self._metric(
            Gauge,
            "llmops_model_gpu_hours",
            "GPU-hours the Model's serving revisions spent ready (replicas x GPUs x time)",
            MODEL,
        )
        self.cost_per_million = self._metric(
            Gauge,
            "llmops_model_cost_per_million_output_tokens",
            "What a million generated tokens cost now, in the price table's currency",
            MODEL,
        )

    def serve(self, address: str, port: int) -> None:
        start_http_server(port, addr=address, registry=self.registry)

    def _set(self, gauge: Gauge, labels: tuple[str, ...], value: float) -> None:
        """Set a per-Model series and remember it, so `forget` can drop it."""
        gauge.labels(*labels).set(value)
        self._series.setdefault((labels[0], labels[1]), set()).add((gauge, labels))

    def _model(self, namespace: str, model: str) -> ModelSeries:
        """The Model's series (the caller holds the lock)."""
        return self._models.setdefault((namespace, model), ModelSeries())

    def set_phase(self, namespace: str, model: str, phase: str) -> None:
        with self._models_lock:
            self._model(namespace, model).phase = phase

    def count_pass(self, namespace: str, model: str) -> None:
        with self._models_lock:
            series = self._model(namespace, model)
            series.passes = (series.passes or 0.0) + 1

    def count_rollback(self, namespace: str, model: str) -> None:
        with self._models_lock:
            series = self._model(namespace, model)
            series.recorded, series.rollbacks = True, series.rollbacks + 1

    def record_model(
        self, namespace: str, model: str, status: Mapping[str, Any], eval_runs: Iterable[Mapping[str, Any]]
    ) -> None:
        """Every per-Model series from the status just written and the Model's EvalRuns."""
        rollout = status.get("rollout") or {}
        key = (namespace, model)
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
        with self._models_lock:
            series = self._model(*key)
            series.phase = status.get("phase", "Pending")
            series.recorded = True  # the rollbacks counter exists from 0, so increase() sees the first
            series.step = rollout.get("stepIndex", 0)
            series.weight = rollout.get("weight", 0)
            series.ready = 1.0 if ready else 0.0
            series.gpus = status.get("replicas", 0) * ((status.get("plan") or {}).get("gpus") or 0)
            series.paused = frozenset(c.get("reason") for c in rollout.get("pauseConditions") or [])
        for gate, run in newest_runs(eval_runs).items():
            run_status = run.get("status") or {}
            phase = run_status.get("phase", "Pending")
            for candidate in EVAL_PHASES:
                self._set(self.eval_run_phase, (*key, gate, candidate), 1 if candidate == phase else 0)
            for side in ("candidate", "baseline"):
                scores = run_status.get(side) or {}
                if phase in ("Passed", "Failed") and "passRate" in scores:
                    self._set(self.eval_pass_rate, (*key, gate, side), scores["passRate"])

    def _drop(self, gauge: Gauge, labels: tuple[str, ...]) -> None:
        with contextlib.suppress(KeyError):
            gauge.remove(*labels)
        self._series.get((labels[0], labels[1]), set()).discard((gauge, labels))

    def set_monitoring(self, namespace: str, model: str, status: Mapping[str, Any]) -> None:
        """Quality and cost gauges from a Model's status (absent values: no series)."""
        key = (namespace, model)
        cost = status.get("cost") or {}
        gpu_hours = sum(r.get("gpuHours", 0.0) for r in cost.get("revisions") or []) if cost else None
        for gauge, value in (
            (self.output_tokens, cost.get("outputTokensPerSecond")),
            (self.cost_per_million, cost.get("costPerMillionOutputTokens")),
            (self.gpu_hours, gpu_hours),
        ):
            if value is None:
                self._drop(gauge, key)
            else:
                self._set(gauge, key, value)
        degraded = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "QualityDegraded"), None
        )
        if degraded is None:
            self._drop(self.quality_degraded, key)
        else:
            self._set(self.quality_degraded, key, 1 if degraded.get("status") == "True" else 0)
        scores = {t["gate"]: t.get("lastScore") for t in status.get("quality") or [] if t.get("gate")}
        for gauge, labels in list(self._series.get(key, set())):
            if gauge is self.quality_score and scores.get(labels[2]) is None:
                self._drop(gauge, labels)
        for gate, score in scores.items():
            if score is not None:
                self._set(self.quality_score, (*key, gate), score)

    def _count(self, counter: Counter, labels: tuple[str, ...]) -> None:
        """Count one on a per-Model series and remember it, so `forget` can drop it."""
        counter.labels(*labels).inc()
        self._series.setdefault((labels[0], labels[1]), set()).add((counter, labels))

    def count_scheduled_evaluation(self, namespace: str, model: str, gate: str) -> None:
        self._count(self.scheduled_evaluations, (namespace, model, gate))

    def count_measurement(self, namespace: str, model: str, metric: str, phase: str) -> None:
        self._count(self.analysis_measurements, (namespace, model, metric, phase))

    def prometheus_reachable(self, reachable: bool) -> None:
        self.prometheus_up.set(1 if reachable else 0)

    def track_queue(self, depth: Callable[[], float]) -> None:
        self.queue_depth.set_function(depth)

    def forget(self, namespace: str, model: str) -> None:
        """Drop a deleted Model's series, so dashboards do not show it forever."""
        for gauge, labels in self._series.pop((namespace, model), set()):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)
        with self._models_lock:
            self._models.pop((namespace, model), None)
