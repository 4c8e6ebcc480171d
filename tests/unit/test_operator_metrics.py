"""The operator's own metrics: one phase at a time per Model, and nothing left after deletion."""

from __future__ import annotations

from prometheus_client import generate_latest

from llmops_operator.metrics import OperatorMetrics


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
    metrics.set_phase("ns", "other", "Ready")
    metrics.forget("ns", "m")
    metrics.forget("ns", "never-seen")  # harmless
    text = _text(metrics)
    assert 'model="m"' not in text
    assert 'model="other"' in text


STATUS = {
    "conditions": [{"type": "QualityDegraded", "status": "True", "reason": "BelowPassCriteria"}],
    "quality": [{"gate": "g1", "lastScore": 0.4}, {"gate": "g2"}],
    "cost": {
        "outputTokensPerSecond": 1500.0,
        "costPerMillionOutputTokens": 1.25,
        "revisions": [{"revision": "a", "gpuHours": 2.0}, {"revision": "b", "gpuHours": 0.5}],
    },
}


def test_quality_and_cost_gauges_follow_status() -> None:
    metrics = OperatorMetrics()
    metrics.set_monitoring("ns", "m", STATUS)
    text = _text(metrics)
    assert 'llmops_model_quality_degraded{model="m",namespace="ns"} 1.0' in text
    assert 'llmops_model_quality_score{gate="g1",model="m",namespace="ns"} 0.4' in text
    assert 'gate="g2"' not in text  # no finished run, no series
    assert 'llmops_model_cost_per_million_output_tokens{model="m",namespace="ns"} 1.25' in text
    assert 'llmops_model_gpu_hours{model="m",namespace="ns"} 2.5' in text
    metrics.set_monitoring("ns", "m", {"conditions": [], "quality": []})
    text = _text(metrics)
    assert 'model="m"' not in text


def test_forget_drops_quality_and_cost_series() -> None:
    metrics = OperatorMetrics()
    metrics.set_monitoring("ns", "m", STATUS)
    metrics.forget("ns", "m")
    assert 'model="m"' not in _text(metrics)
