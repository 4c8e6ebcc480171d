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
    status = {
        "phase": "Paused",
        "rollout": {"weight": 25, "stepIndex": 1, "pauseConditions": [{"reason": "Inconclusive"}]},
        "plan": {"gpus": 2},
        "replicas": 3,
    }
    run = {
        "metadata": {"name": "r1"},
        "spec": {"gate": "g"},
        "status": {"phase": "Passed", "candidate": {"passRate": 1}},
    }
    metrics.record_model("ns", "m", status, [run])
    metrics.count_pass("ns", "m")
    metrics.count_measurement("ns", "m", "error-rate", "Successful")
    metrics.count_scheduled_evaluation("ns", "m", "g")
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
    metrics.count_scheduled_evaluation("ns", "m", "g1")
    assert 'llmops_scheduled_evaluations_total{gate="g1",model="m",namespace="ns"} 1.0' in _text(metrics)
    metrics.forget("ns", "m")
    assert 'model="m"' not in _text(metrics)


def test_record_model_sets_readiness_gpus_pauses_and_the_latest_eval_run_of_each_gate() -> None:
    metrics = OperatorMetrics()
    status = {
        "phase": "Paused",
        "conditions": [{"type": "Ready", "status": "True"}],
        "rollout": {"weight": 25, "pauseConditions": [{"reason": "EvalGateError"}]},
        "plan": {"gpus": 2},
        "replicas": 3,
    }
    runs = [
        {
            "metadata": {"name": "old", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"gate": "g"},
            "status": {"phase": "Passed", "candidate": {"passRate": 1.0}},
        },
        {
            "metadata": {"name": "new", "creationTimestamp": "2026-01-02T00:00:00Z"},
            "spec": {"gate": "g"},
            "status": {"phase": "Failed", "candidate": {"passRate": 0.25}, "baseline": {"passRate": 0.9}},
        },
    ]
    metrics.record_model("ns", "m", status, runs)
    text = _text(metrics)
    assert 'llmops_model_ready{model="m",namespace="ns"} 1.0' in text
    assert 'llmops_model_gpus{model="m",namespace="ns"} 6.0' in text
    assert 'llmops_rollout_paused{model="m",namespace="ns",reason="EvalGateError"} 1.0' in text
    assert 'llmops_rollout_paused{model="m",namespace="ns",reason="Inconclusive"} 0.0' in text
    assert 'llmops_eval_run_phase{gate="g",model="m",namespace="ns",phase="Failed"} 1.0' in text
    assert 'llmops_eval_run_phase{gate="g",model="m",namespace="ns",phase="Passed"} 0.0' in text
    assert 'llmops_eval_pass_rate{gate="g",model="m",namespace="ns",side="candidate"} 0.25' in text
    assert 'llmops_eval_pass_rate{gate="g",model="m",namespace="ns",side="baseline"} 0.9' in text


def test_prometheus_reachability_and_queue_depth() -> None:
    metrics = OperatorMetrics()
    metrics.prometheus_reachable(False)
    queue = [1, 2, 3]
    metrics.track_queue(lambda: len(queue))
    text = _text(metrics)
    assert "llmops_prometheus_up 0.0" in text
    assert "llmops_work_queue_depth 3.0" in text


def test_pass_and_rollback_counters_count_per_model_and_a_recorded_model_starts_at_zero() -> None:
    metrics = OperatorMetrics()
    metrics.record_model("ns", "quiet", {"phase": "Ready"}, [])
    for _ in range(3):
        metrics.count_pass("ns", "m")
    metrics.count_rollback("ns", "m")
    text = _text(metrics)
    assert 'llmops_model_reconciles_total{model="m",namespace="ns"} 3.0' in text
    assert 'llmops_rollbacks_total{model="m",namespace="ns"} 1.0' in text
    assert 'llmops_rollbacks_total{model="quiet",namespace="ns"} 0.0' in text
    assert 'llmops_model_reconciles_total{model="quiet"' not in text  # no pass yet, no series
    assert "# TYPE llmops_rollbacks_total counter" in text and "# TYPE llmops_model_phase gauge" in text
