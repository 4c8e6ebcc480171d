"""The reconcile pass sizes the stable revision from the autoscaler, and keeps its state in status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from llmops_operator.autoscaling.decide import Signals
from llmops_operator.model_plan import World, plan_model

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _model(status: dict[str, Any] | None = None, metric: str = "queueDepth") -> dict[str, Any]:
    return {
        "metadata": {"name": "m", "namespace": "ns", "uid": "u1", "generation": 1},
        "spec": {
            "source": {"uri": "hf://org/model"},
            "engine": {"type": "vllm"},
            "resources": {"gpus": 1},
            "autoscaling": {"minReplicas": 1, "maxReplicas": 8, "metric": metric, "target": 4},
        },
        "status": status or {},
    }


def _deployment(revision: str, replicas: int) -> dict[str, Any]:
    return {
        "metadata": {"name": f"m-{revision}", "labels": {"llmops.dev/revision": revision}},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "readyReplicas": replicas},
    }


def _stable_pass(
    signals: Signals | None, replicas: int = 2, autoscaler: dict | None = None, now: datetime = NOW
) -> Any:
    first = plan_model(World(model=_model(), now=NOW, operator_image="img"))
    revision = first.status["canaryRevision"] or first.status["stableRevision"]
    status = {"stableRevision": revision, **({"autoscaler": autoscaler} if autoscaler else {})}
    world = World(
        model=_model(status),
        now=now,
        operator_image="img",
        deployments=[_deployment(revision, replicas)],
        autoscaling_signals=signals,
    )
    return revision, plan_model(world)


def _replicas(plan: Any, revision: str) -> int:
    return next(o["spec"]["replicas"] for o in plan.apply if o["kind"] == "Deployment")


def test_queue_growth_scales_the_stable_revision_up_and_records_why() -> None:
    revision, plan = _stable_pass(Signals(value=24.0, ready_replicas=2, measured_at=NOW))
    assert _replicas(plan, revision) == 4  # 24 waiting / target 4 = 6, at most doubling from 2
    assert plan.status["autoscaler"]["desiredReplicas"] == 4
    assert plan.status["autoscaler"]["reason"] == "ScaledUp"
    assert any(reason == "ScaledUp" for _, reason, _ in plan.events)
    assert plan.requeue_after is not None and plan.requeue_after <= 15


def test_no_signal_holds_the_current_size() -> None:
    revision, plan = _stable_pass(None, replicas=3)
    assert _replicas(plan, revision) == 3
    assert plan.status["autoscaler"]["reason"] == "NoData"


def test_scale_down_waits_for_the_delay() -> None:
    state = {"desiredReplicas": 4}
    revision, plan = _stable_pass(Signals(value=0.0, ready_replicas=4, measured_at=NOW), 4, state)
    assert _replicas(plan, revision) == 4
    later = plan.status["autoscaler"]
    assert later["reason"] == "ScaleDownPending"
    later_now = NOW + timedelta(minutes=6)
    revision, plan = _stable_pass(
        Signals(value=0.0, ready_replicas=4, measured_at=later_now), 4, later, later_now
    )
    assert _replicas(plan, revision) == 1  # the 300 s delay ran out: down to minReplicas
    assert plan.status["autoscaler"]["reason"] == "ScaledDown"


def test_unsupported_metric_is_a_condition() -> None:
    model = _model(metric="kvCacheUtilization")
    model["spec"]["engine"] = {"type": "onnxruntime"}
    model["spec"]["resources"] = {"gpus": 0}
    model["spec"]["source"] = {"uri": "pvc://models/m"}
    plan = plan_model(World(model=model, now=NOW, operator_image="img"))
    condition = next(c for c in plan.status["conditions"] if c["type"] == "Autoscaling")
    assert condition["status"] == "False" and condition["reason"] == "UnsupportedMetric"
