"""The monitoring stage of a Model pass: scheduled EvalRuns of the serving revision, its quality
trend and `QualityDegraded`, and its cost and `CostAccounted`. Pure; `model_plan` calls
`monitor()` once the serving revisions are known and folds the result into its plan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from llmops_operator import conditions as cond
from llmops_operator.api.common import LABEL_REVISION, Condition
from llmops_operator.api.model import ModelSpec
from llmops_operator.api.monitoring import CostStatus, QualityTrend
from llmops_operator.evals import job as eval_jobs
from llmops_operator.evals import verdict
from llmops_operator.evals.gate import eval_run_object
from llmops_operator.gpu.inventory import deployed_gpus
from llmops_operator.monitoring import cost as costs
from llmops_operator.monitoring.evaluations import plan_evaluations
from llmops_operator.monitoring.prices import Prices
from llmops_operator.monitoring.quality import SCHEDULE_LABEL

ConditionChange = tuple[str, cond.Status, str, str]
"""(type, status, reason, message) to set."""


@dataclass(frozen=True)
class MonitorInputs:
    """What the stage reads; lists hold plain API objects."""

    name: str
    namespace: str
    spec: ModelSpec
    stable_revision: str | None
    serving_revisions: Sequence[str]
    deployments: Sequence[Mapping[str, Any]]
    pods: Sequence[Mapping[str, Any]]
    eval_runs: Sequence[Mapping[str, Any]]
    eval_gates: Sequence[Mapping[str, Any]]
    jobs: Sequence[Mapping[str, Any]]
    conditions: Sequence[Condition]
    previous_cost: CostStatus | None
    now: datetime
    operator_image: str
    owner: Mapping[str, Any]
    endpoint_of: Callable[[str], str]
    """A revision's OpenAI base URL as the eval Job sees it."""
    plan_product: str | None = None
    node_products: Mapping[str, str] = field(default_factory=dict)
    """Node name -> `nvidia.com/gpu.product`."""
    token_rates: Mapping[str, costs.Rates] = field(default_factory=dict)
    prices: Prices = field(default_factory=Prices)
    cost_refresh: timedelta = costs.DEFAULT_REFRESH
    verdict_key: bytes = b""
    """The operator's key for signing eval verdicts (per-run keys derive from it)."""


@dataclass
class MonitorResult:
    apply: list[dict[str, Any]] = field(default_factory=list)
    delete: list[tuple[str, str]] = field(default_factory=list)
    quality: list[QualityTrend] = field(default_factory=list)
    cost: CostStatus | None = None
    set_conditions: list[ConditionChange] = field(default_factory=list)
    clear_conditions: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    """Gates of the scheduled runs started this pass (for the operator's metrics)."""
    requeue_after: float | None = None


def monitor(inputs: MonitorInputs) -> MonitorResult:
    result = MonitorResult()
    _evaluations(inputs, result)
    _cost(inputs, result)
    return result


def _ready(deployments: Sequence[Mapping[str, Any]], revision: str) -> tuple[int, int | None]:
    """(ready replicas, GPUs per replica) of a revision's Deployment."""
    for deployment in deployments:
        if (deployment["metadata"].get("labels") or {}).get(LABEL_REVISION) != revision:
            continue
        ready = int((deployment.get("status") or {}).get("readyReplicas") or 0)
        return ready, deployed_gpus(deployment)
    return 0, None


def _evaluations(inputs: MonitorInputs, result: MonitorResult) -> None:
    serving = inputs.stable_revision
    ready = _ready(inputs.deployments, serving)[0] if serving else 0
    eval_runs = [verdict.trusted(inputs.verdict_key, r) for r in inputs.eval_runs]
    plan = plan_evaluations(
        inputs.spec, serving, ready > 0, eval_runs, inputs.eval_gates, inputs.jobs, inputs.now
    )
    result.quality = plan.trends
    result.requeue_after = plan.requeue_after
    if plan.decision is None:
        result.clear_conditions.append(cond.QUALITY_DEGRADED)
        return
    decision = plan.decision
    result.set_conditions.append((cond.QUALITY_DEGRADED, decision.status, decision.reason, decision.message))
    before = cond.get_condition(inputs.conditions, cond.QUALITY_DEGRADED)
    was = before.status if before else None
    if decision.status == "True" and (was != "True" or before.message != decision.message):  # type: ignore[union-attr]
        result.events.append(("Warning", "QualityDegraded", decision.message))
    elif decision.status == "False" and was == "True":
        result.events.append(("Normal", "QualityRestored", decision.message))
    elif decision.reason in ("InvalidSchedule", "EvalGateMissing") and (
        before is None or before.reason != decision.reason
    ):
        result.events.append(("Warning", f"QualityMonitoring{decision.reason}", decision.message))
    for run in plan.start:
        run_obj = _eval_run(inputs, run.name, run.gate, run.revision, run.prompt_version)
        gate = next((g for g in inputs.eval_gates if g["metadata"]["name"] == run.gate), None)
        result.apply.extend(eval_jobs.eval_identity(run_obj, gate, inputs.owner, inputs.verdict_key))
        result.apply.append(run_obj)
        result.apply.append(eval_jobs.eval_job(run_obj, inputs.operator_image, inputs.owner, gate))
        result.started.append(run.gate)
    for name in plan.delete:
        result.delete += eval_jobs.eval_run_objects(name)


def _eval_run(
    inputs: MonitorInputs, name: str, gate: str, revision: str, prompt_version: int | None
) -> dict[str, Any]:
    """A scheduled EvalRun: labelled with its gate, so the schedule finds its history."""
    return eval_run_object(
        name,
        inputs.namespace,
        inputs.name,
        gate,
        revision,
        inputs.endpoint_of,
        inputs.owner,
        prompt_version=prompt_version,
        labels={SCHEDULE_LABEL: gate},
    )


def _product(inputs: MonitorInputs, revision: str) -> str | None:
    """The GPU product a revision's ready pods run on (their nodes' label), else the plan's."""
    for pod in inputs.pods:
        labels = pod["metadata"].get("labels") or {}
        node = (pod.get("spec") or {}).get("nodeName")
        if labels.get(LABEL_REVISION) == revision and node in inputs.node_products:
            return inputs.node_products[node]
    return inputs.plan_product


def _cost(inputs: MonitorInputs, result: MonitorResult) -> None:
    serving = []
    for revision in inputs.serving_revisions:
        ready, gpus = _ready(inputs.deployments, revision)
        serving.append(costs.Serving(revision, gpus or 0, ready, _product(inputs, revision)))
    status, condition = costs.plan_cost(
        inputs.previous_cost, serving, inputs.token_rates, inputs.prices, inputs.now, inputs.cost_refresh
    )
    result.cost = status
    refresh = costs.next_refresh(status, inputs.now, inputs.cost_refresh)
    if refresh is not None:
        result.requeue_after = refresh if result.requeue_after is None else min(result.requeue_after, refresh)
    if condition is None:
        result.clear_conditions.append(cond.COST_ACCOUNTED)
    else:
        result.set_conditions.append(
            (cond.COST_ACCOUNTED, condition.status, condition.reason, condition.message)
        )  # type: ignore[arg-type]
