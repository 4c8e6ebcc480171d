"""The operator's own metrics: one phase at a time per Model, and nothing left after deletion."""

from __future__ import annotations

from prometheus_client import generate_latest

from llmops_operator.runtime.metrics import OperatorMetrics


def _text(metrics: OperatorMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_phase_gauge_marks_exactly_the_current_phase() -> None:
    metrics = OperatorMetrics()
    metrics.set_phase("ns", "m", "Progressing")
    metrics.set_phase("ns", "m", "Ready")
    text = _text(metrics)
    assert 'llmops_model_phase{model="m",namespace="ns",phase="Ready"} 1.0' in text
    assert 'llmops_model_phase{model="m",namespace="ns",phase="Progressing"} 0.0' in text


def test_forget_drops_every_series_of_a_model() -> None:
    metrics = OperatorMetrics()
    metrics.set_phase("ns", "m", "Ready")
    metrics.rollout_weight.labels("ns", "m").set(25)
    metrics.rollout_step.labels("ns", "m").set(1)
    metrics.model_passes.labels("ns", "m").inc()
    metrics.set_phase("ns", "other", "Ready")
    metrics.forget("ns", "m")
    metrics.forget("ns", "never-seen")  # harmless
    text = _text(metrics)
    assert 'model="m"' not in text
    assert 'model="other"' in text
