"""The pass context: what a pass knows (World), what it decides (ModelPlan), and the state one
pass carries from stage to stage (Pass)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from llmops_operator import conditions as cond
from llmops_operator import resources, retention
from llmops_operator.api.common import API_VERSION, Condition
from llmops_operator.api.model import ModelSpec
from llmops_operator.api.model_status import ModelStatus
from llmops_operator.api.rollout import Measurement
from llmops_operator.autoscaling.decide import Signals
from llmops_operator.autoscaling.scale_to_zero import Pending
from llmops_operator.conditions import Reason
from llmops_operator.evals.job import DEFAULT_ENDPOINT_TEMPLATE
from llmops_operator.gpu.planner import GpuNodeInfo, ModelFacts
from llmops_operator.monitoring.cost import DEFAULT_REFRESH, Rates
from llmops_operator.monitoring.prices import Prices

PENDING_POLL_SECONDS = 5.0


@dataclass(frozen=True)
class SecretCheck:
    """Whether the referenced Secret and key exist (the value is never read into the plan)."""

    exists: bool
    has_key: bool


@dataclass(frozen=True)
class World:
    """Everything a pass knows. Lists hold plain API objects (dicts)."""

    model: Mapping[str, Any]
    now: datetime
    operator_image: str
    deployments: Sequence[Mapping[str, Any]] = ()
    pods: Sequence[Mapping[str, Any]] = ()
    jobs: Sequence[Mapping[str, Any]] = ()
    prompt_versions: Sequence[Mapping[str, Any]] = ()
    eval_runs: Sequence[Mapping[str, Any]] = ()
    eval_gates: Sequence[Mapping[str, Any]] = ()
    secret: SecretCheck | None = None
    inventory: Sequence[GpuNodeInfo] | None = None
    http_route: Mapping[str, Any] | None = None
    measurements: Sequence[Measurement] = ()
    model_facts: ModelFacts | None = None
    """Size and architecture of the model (Hugging Face metadata), for `gpus: auto`."""
    model_facts_error: str | None = None
    """Why `model_facts` is missing, when a lookup failed."""
    model_facts_pending: bool = False
    """The Hub lookup of `model_facts` is still running (within its deadline)."""
    autoscaling_signals: Signals | None = None
    """The load signal read from Prometheus for `spec.autoscaling` (None: none read)."""
    endpoint_template: str = DEFAULT_ENDPOINT_TEMPLATE
    """How eval Jobs reach a revision's Service (see `evals.job.endpoint`)."""
    wake_pending: Pending | None = None
    """Requests waiting for a Model that may scale to zero (`autoscaling.wakeSignal`)."""
    inference_pools: Sequence[Mapping[str, Any]] = ()
    """The Model's InferencePools (inferencePool traffic routing)."""
    missing_gateways: Sequence[str] = ()
    """`namespace/name` of the route's parent Gateways that do not exist."""
    reference_grants: Sequence[Mapping[str, Any]] | None = None
    """ReferenceGrants of the Model's namespace, read when the route lives elsewhere (may the
    route refer to the Model's InferencePools?)."""
    pool_read_error: str | None = None
    """Why the InferencePool routing objects could not be read."""
    configmaps: Sequence[Mapping[str, Any]] = ()
    """The Model's own ConfigMaps (prompt bundles), for retention."""
    service_names: tuple[str, ...] = ()
    """Names of the Model's own Services, sorted (a revision Service nothing needs is deleted)."""
    measurements_pending: bool = False
    """A round of analysis measurements is still being taken (see `rollout.actions.Observed`)."""
    eval_run_history: int = retention.DEFAULT_EVAL_RUN_HISTORY
    """Finished EvalRuns kept per gate (see `retention`)."""
    verdict_key: bytes = b""
    """The operator's master key for eval verdicts (`evals/verdict.py`); when set, an EvalRun's
    phase counts only with a valid signature."""
    http_route_denied: str | None = None
    """Why the HTTPRoute in another namespace may not be used (no ReferenceGrant allows it)."""
    token_rates: Mapping[str, Rates] = field(default_factory=dict)
    """Token rates of the serving revisions (engine counters, via Prometheus)."""
    prices: Prices = field(default_factory=Prices)
    """The operator's GPU price table."""
    cost_refresh: timedelta = DEFAULT_REFRESH
    """How often an unchanged revision's cost record is brought up to date."""


@dataclass
class ModelPlan:
    """The outcome of a pass; the handler executes it in this order."""

    apply: list[dict[str, Any]] = field(default_factory=list)
    """Owned objects to server-side apply (create or restore)."""
    scale: dict[str, int] = field(default_factory=dict)
    """Deployment name -> replicas, for revisions whose template is not re-rendered."""
    delete: list[tuple[str, str]] = field(default_factory=list)
    """(kind, name) of owned objects to delete."""
    status: dict[str, Any] = field(default_factory=dict)
    """The full new status (wire form)."""
    events: list[tuple[str, str, str]] = field(default_factory=list)
    """(type, reason, message), emitted after the status write."""
    requeue_after: float | None = None
    """When the plan must look again though nothing it watches changes (a pause, an analysis
    interval, autoscaling, a schedule); None: watch events and the operator's resync suffice."""
    run_analysis: tuple[str, ...] = ()
    """Metrics to measure before planning again (the caller re-plans with the measurements)."""
    route_patch: dict[str, Any] | None = None
    """HTTPRoute weights to apply (Gateway API traffic routing)."""
    rollout_revision: str | None = None
    scheduled_evaluations: list[str] = field(default_factory=list)
    """Gates of the scheduled EvalRuns started by this pass."""


@dataclass
class Pass:
    """One pass in progress: the world, the status being built, the plan being filled."""

    world: World
    name: str
    namespace: str
    generation: int | None
    status: ModelStatus
    conditions: list[Condition]
    before: list[Condition]
    """The conditions as the pass found them (Events are the difference)."""
    plan: ModelPlan = field(default_factory=ModelPlan)

    @classmethod
    def start(cls, world: World) -> Pass:
        """A pass over the Model's current status (an unreadable status starts empty)."""
        meta = world.model["metadata"]
        try:
            status = ModelStatus.model_validate(dict(world.model.get("status") or {}))
        except ValidationError:
            status = ModelStatus()
        conditions = list(status.conditions)
        return cls(
            world,
            meta["name"],
            meta["namespace"],
            meta.get("generation"),
            status,
            conditions,
            list(conditions),
        )

    def parse_spec(self) -> ModelSpec | None:
        """The typed spec, or None after marking the Model Failed with what is wrong."""
        try:
            return ModelSpec.model_validate(self.world.model.get("spec") or {})
        except ValidationError as exc:
            errors = exc.errors()[:3]
            message = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in errors)
            self.set(cond.READY, "False", Reason.INVALID_SPEC, f"spec is invalid: {message}")
            return None

    def set(self, type_: str, status: cond.Status, reason: str, message: str) -> None:
        self.conditions = cond.set_condition(
            self.conditions, type_, status, reason, message, self.world.now, self.generation
        )

    def clear(self, type_: str) -> None:
        self.conditions = cond.clear_condition(self.conditions, type_)

    def event(self, type_: str, reason: str, message: str) -> None:
        self.plan.events.append((type_, reason, message))

    def requeue(self, seconds: float) -> None:
        current = self.plan.requeue_after
        self.plan.requeue_after = seconds if current is None else min(current, seconds)

    def owner(self) -> dict[str, Any]:
        """The ownerReference every object of this Model carries."""
        return resources.owner_reference({**self.world.model, "apiVersion": API_VERSION, "kind": "Model"})
