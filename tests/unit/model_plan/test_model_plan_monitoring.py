"""`plan_model` with spec.monitoring and prices: scheduled EvalRuns, QualityDegraded, status.cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from llmops_operator.gpu.planner import GpuNodeInfo
from llmops_operator.model_plan import World, plan_model
from llmops_operator.monitoring.cost import Rates
from llmops_operator.monitoring.prices import load_prices
from llmops_operator.monitoring.quality import SCHEDULE_LABEL

NOW = datetime(2026, 12, 1, 10, tzinfo=UTC)
H100 = "NVIDIA-H100-80GB-HBM3"
PRICES = load_prices('{"currency": "USD", "gpuHourPrices": {"NVIDIA-H100-80GB-HBM3": 2.0}}')
GATE = {"metadata": {"name": "quality", "namespace": "ns"}, "spec": {"prompt": {"name": "bot"}}}


def model(status: dict[str, Any] | None = None, **monitoring: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "m", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": {
            "source": {"uri": "hf://org/m"},
            "engine": {"type": "vllm"},
            "resources": {"gpus": 1, "gpuProducts": [H100]},
            "replicas": 2,
            "monitoring": {
                "evaluations": [{"gate": "quality", "schedule": {"interval": "10m"}, **monitoring}]
            },
        },
        "status": status or {},
    }


def deployment(revision: str, ready: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"name": f"m-{revision}", "namespace": "ns", "labels": {"llmops.dev/revision": revision}},
        "spec": {
            "replicas": 2,
            "template": {"spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": "1"}}}]}},
        },
        "status": {"replicas": 2, "readyReplicas": ready},
    }


def failed_run(revision: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "quality-run-1",
            "namespace": "ns",
            "labels": {SCHEDULE_LABEL: "quality", "llmops.dev/model": "m"},
            "creationTimestamp": (NOW - timedelta(minutes=1)).isoformat(),
        },
        "spec": {"gate": "quality", "revision": revision},
        "status": {
            "phase": "Failed",
            "candidate": {"passRate": 0.33, "score": 0.4},
            "failingAssertions": ["no-rudeness", "close-to-reference"],
        },
    }


def first_revision() -> str:
    first = plan_model(World(model=model(), now=NOW, operator_image="img")).status
    return str(first.get("canaryRevision") or first["stableRevision"])


def serving_pass(**world: Any) -> tuple[str, Any]:
    revision = first_revision()
    status = {"stableRevision": revision}
    world.setdefault("model", model(status))
    plan = plan_model(
        World(now=NOW, operator_image="img", deployments=[deployment(revision)], eval_gates=[GATE], **world)
    )
    return revision, plan


def condition(plan: Any, type_: str) -> dict[str, Any]:
    return next((c for c in plan.status["conditions"] if c["type"] == type_), {})


def test_a_serving_revision_gets_its_first_scheduled_eval_run_and_job() -> None:
    revision, plan = serving_pass()
    runs = [o for o in plan.apply if o["kind"] == "EvalRun"]
    assert len(runs) == 1
    run = runs[0]
    assert run["metadata"]["labels"][SCHEDULE_LABEL] == "quality"
    assert run["spec"]["revision"] == revision and run["spec"]["endpoint"].endswith("/v1")
    assert ("Job", run["metadata"]["name"]) in [(o["kind"], o["metadata"]["name"]) for o in plan.apply]
    assert plan.scheduled_evaluations == ["quality"]
    assert condition(plan, "QualityDegraded")["reason"] == "NotEvaluatedYet"


def test_a_failed_scheduled_run_flags_quality_degraded_with_one_warning() -> None:
    revision = first_revision()
    _, plan = serving_pass(model=model({"stableRevision": revision}), eval_runs=[failed_run(revision)])
    degraded = condition(plan, "QualityDegraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "BelowPassCriteria")
    assert "no-rudeness, close-to-reference" in degraded["message"]
    assert [r for t, r, _ in plan.events if r.startswith("Quality")] == ["QualityDegraded"]
    assert plan.status["quality"][0]["failingAssertions"] == ["no-rudeness", "close-to-reference"]
    # the Model still serves: Ready is not rolled up from quality
    assert condition(plan, "Ready")["status"] == "True"
    # the next run is one interval after the failed one started
    assert plan.status["quality"][0]["nextRunAt"] == (NOW + timedelta(minutes=9)).isoformat().replace(
        "+00:00", "Z"
    )


def test_cost_of_the_serving_revision_is_in_status_with_prices() -> None:
    revision, plan = serving_pass(
        prices=PRICES,
        token_rates={},
        inventory=(GpuNodeInfo("h100-0", H100, 8, 81559),),
    )
    cost = plan.status["cost"]
    (record,) = cost["revisions"]
    assert (record["revision"], record["gpus"], record["readyReplicas"]) == (revision, 1, 2)
    assert record["pricePerGpuHour"] == 2.0 and record["gpuProduct"] == H100
    assert condition(plan, "CostAccounted")["reason"] == "Priced"


def test_token_rates_give_cost_per_million_output_tokens() -> None:
    revision = first_revision()
    _, plan = serving_pass(prices=PRICES, token_rates={revision: Rates(100.0, 1000.0)})
    # 2 replicas x 1 GPU x $2/h = $4/h over 3.6M tokens/h
    assert abs(plan.status["cost"]["costPerMillionOutputTokens"] - 4 / 3.6) < 1e-9


def test_missing_price_is_a_condition_not_a_block() -> None:
    _, plan = serving_pass(prices=load_prices('{"gpuHourPrices": {"NVIDIA-L4": 1}}'))
    assert condition(plan, "CostAccounted")["reason"] == "NoPrice"
    assert condition(plan, "Ready")["status"] == "True"
