"""`spec.rollout` and `status.rollout` of a Model: canary steps, analysis and their progress.

The shape follows Argo Rollouts: a list of steps walked by a state machine, analysis verdicts
with a separate limit for each outcome, and every bit of progress kept in status so a restarted
operator resumes exactly where it stopped. Rules the OpenAPI schema cannot express are CEL
rules (enforced by the API server) mirrored by pydantic validators (enforced in unit tests and
by the operator itself before it acts).
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from llmops_operator.api.analysis import MAX_METRICS, METRIC_NAME_PATTERN, AnalysisSpec
from llmops_operator.api.common import (
    ApiModel,
    LabelName,
    StatusModel,
    SubdomainName,
    at_most_one,
    cel_rules,
)
from llmops_operator.api.durations import bounded_duration
from llmops_operator.hashing import digest

MAX_STEPS = 32
MAX_MEASUREMENTS_PER_METRIC = 10
MAX_PAUSE = "168h"

MeasurementPhase = Literal["Successful", "Failed", "Inconclusive", "Error"]
PauseReason = Literal["PausedStep", "Inconclusive", "EvalGateError", "AnalysisError"]
EvalPhase = Literal["Pending", "Running", "Passed", "Failed", "Error"]
PauseDuration = bounded_duration(MAX_PAUSE)


# ---------------------------------------------------------------------------------------------
# spec
# ---------------------------------------------------------------------------------------------


class PauseStep(ApiModel):
    """Wait, either for a fixed time or until a user promotes the rollout."""

    duration: PauseDuration | None = None
    """How long to wait (e.g. 30s, 5m, 1h; at most 168h). Omitted: wait until promoted (clear
    `status.rollout.pauseConditions` or set `status.rollout.promoteFull`)."""


class AnalysisStep(ApiModel):
    """Run the analysis once, now, and decide: all Successful moves on, any Failed aborts."""

    metrics: list[Annotated[str, Field(min_length=1, max_length=63, pattern=METRIC_NAME_PATTERN)]] | None = (
        Field(default=None, max_length=MAX_METRICS)
    )
    """Names of `canary.analysis.metrics` to measure at this step. Omitted: all of them."""


class EvalGateStep(ApiModel):
    """Run an EvalGate against the canary and wait for its verdict."""

    name: SubdomainName
    """Name of the EvalGate in the Model's namespace."""


class CanaryStep(ApiModel):
    """One step of a canary. Exactly one of the fields is set."""

    model_config = cel_rules(
        (
            "[has(self.setWeight), has(self.pause), has(self.analysis), has(self.evalGate)]"
            ".filter(x, x).size() == 1",
            "each step sets exactly one of setWeight, pause, analysis, evalGate",
        )
    )

    set_weight: int | None = Field(default=None, ge=0, le=100)
    """Percentage of traffic (0-100) sent to the canary. The step completes once the canary
    has the replicas this weight needs, all ready."""
    pause: PauseStep | None = None
    """Wait for a duration, or until promoted."""
    analysis: AnalysisStep | None = None
    """Measure the analysis metrics once and decide (inline analysis)."""
    eval_gate: EvalGateStep | None = None
    """Evaluate the canary with an EvalGate; Passed moves on, Failed aborts, Error pauses."""

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> CanaryStep:
        kinds = (self.set_weight, self.pause, self.analysis, self.eval_gate)
        if sum(k is not None for k in kinds) != 1:
            raise ValueError("each step sets exactly one of setWeight, pause, analysis, evalGate")
        return self

    @property
    def kind(self) -> Literal["setWeight", "pause", "analysis", "evalGate"]:
        """Which of the four step kinds this is."""
        if self.set_weight is not None:
            return "setWeight"
        if self.pause is not None:
            return "pause"
        if self.analysis is not None:
            return "analysis"
        return "evalGate"


class GatewayAPIRouting(ApiModel):
    """Shift traffic with the weights of an existing Gateway API HTTPRoute."""

    http_route: SubdomainName
    """Name of the HTTPRoute whose backendRefs point at the Model's revision Services. The
    operator changes only the backendRef weights, under its own field manager."""
    namespace: LabelName | None = None
    """Namespace of the HTTPRoute. Default: the Model's namespace. Another namespace must allow
    it with a Gateway API ReferenceGrant (from Model in the Model's namespace to HTTPRoute)."""


DEFAULT_ENDPOINT_PICKER_IMAGE = "registry.k8s.io/gateway-api-inference-extension/epp:v1.0.0"
"""The reference endpoint picker of the Gateway API Inference Extension, matching its v1 CRD."""
ENDPOINT_PICKER_PORT = 9002
"""The picker's ext-proc gRPC port (its `--grpc-port` default)."""


class ParentRef(ApiModel):
    """A Gateway the operator-created HTTPRoute attaches to."""

    name: SubdomainName
    """Name of the Gateway."""
    namespace: LabelName | None = None
    """Namespace of the Gateway. Default: the route's namespace (the Gateway's `allowedRoutes`
    decides whether it takes a route from there)."""
    section_name: SubdomainName | None = None
    """Listener of the Gateway to attach to. Default: all listeners that allow the route."""


class PickerResources(ApiModel):
    """CPU and memory of the operator-deployed picker (Kubernetes quantities)."""

    requests: dict[str, Annotated[str, Field(max_length=64)]] = Field(
        default_factory=lambda: {"cpu": "100m", "memory": "256Mi"}, max_length=8
    )
    """Requests, e.g. `{cpu: 500m, memory: 1Gi}`."""
    limits: dict[str, Annotated[str, Field(max_length=64)]] = Field(default_factory=dict, max_length=8)
    """Limits. Default: none."""


class EndpointPickerSpec(ApiModel):
    """The endpoint picker (EPP) each InferencePool names: one the operator deploys per pool, or
    the user's own Service."""

    service: LabelName | None = None
    """Name of an endpoint picker Service the user runs (in the Model's namespace). Set: the
    operator deploys no picker and every pool points at this Service. Omitted: the operator
    deploys one picker (Deployment + Service) per pool, owned by the Model."""
    port: int = Field(default=ENDPOINT_PICKER_PORT, ge=1, le=65535)
    """Port of the picker Service (ext-proc gRPC)."""
    image: str = Field(default=DEFAULT_ENDPOINT_PICKER_IMAGE, min_length=1, max_length=512)
    """Image of the operator-deployed picker."""
    args: list[Annotated[str, Field(max_length=1024)]] = Field(default_factory=list, max_length=64)
    """Extra flags for the operator-deployed picker, after the ones the operator sets (pool
    name and namespace, the engine's queue and KV-cache metric names); a flag given here
    replaces the operator's."""
    resources: PickerResources = Field(default_factory=PickerResources)
    """CPU and memory of the operator-deployed picker."""
    failure_mode: Literal["FailOpen", "FailClose"] = "FailClose"
    """What the gateway does when the picker does not answer: FailClose rejects the request,
    FailOpen forwards it to any endpoint of the pool."""


class InferencePoolRouting(ApiModel):
    """Shift traffic between one InferencePool per revision, weighted in an HTTPRoute."""

    http_route: SubdomainName
    """Name of the HTTPRoute whose backendRefs become the stable and canary InferencePools. An
    existing route is patched (only the backendRefs that point at this Model, under the
    operator's field manager); a missing one in the Model's namespace is created when
    `parentRefs` is set (owned by the Model)."""
    namespace: LabelName | None = None
    """Namespace of the HTTPRoute. Default: the Model's namespace. Another namespace needs two
    ReferenceGrants: one in the route's namespace from Model (llmops.dev) in the Model's
    namespace to HTTPRoute (the operator uses that route for the Model), one in the Model's
    namespace from HTTPRoute in the route's namespace to InferencePool (the gateway follows
    the backendRefs). The operator never creates a route in another namespace."""
    parent_refs: list[ParentRef] = Field(default_factory=list, max_length=32)
    """Gateways of a route the operator creates in the Model's namespace (with an existing route
    the operator keeps these parents on it)."""
    endpoint_picker: EndpointPickerSpec = Field(default_factory=EndpointPickerSpec)
    """The endpoint picker the pools name."""


class TrafficRouting(ApiModel):
    """How the canary weight becomes traffic. Empty: replica ratio."""

    model_config = cel_rules(
        (
            "!(has(self.gatewayAPI) && has(self.inferencePool))",
            "set at most one of gatewayAPI and inferencePool",
        ),
    )

    gateway_api: GatewayAPIRouting | None = Field(default=None, alias="gatewayAPI")
    """Use HTTPRoute backendRef weights across the revision Services instead of the replica ratio."""
    inference_pool: InferencePoolRouting | None = None
    """Use HTTPRoute backendRef weights across one InferencePool per revision (Gateway API
    Inference Extension): the gateway's endpoint picker routes within each pool."""

    @model_validator(mode="after")
    def _one_mode(self) -> TrafficRouting:
        return at_most_one(
            self, ("gateway_api", "inference_pool"), "set at most one of gatewayAPI and inferencePool"
        )


class CanarySpec(ApiModel):
    """A canary: steps walked in order, judged by analysis, then the canary becomes stable."""

    model_config = cel_rules(
        (
            "self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted()",
            "setWeight values must not decrease from one step to the next",
        ),
        (
            "!self.steps.exists(s, has(s.analysis)) || "
            "(has(self.analysis) && size(self.analysis.metrics) > 0)",
            "an analysis step needs canary.analysis.metrics",
        ),
        (
            "!has(self.analysis) || self.steps.all(s, !has(s.analysis) || !has(s.analysis.metrics) || "
            "s.analysis.metrics.all(n, self.analysis.metrics.exists(m, m.name == n)))",
            "an analysis step may only name metrics defined in canary.analysis.metrics",
        ),
    )

    steps: list[CanaryStep] = Field(default_factory=list, max_length=MAX_STEPS)
    """The steps, walked in order. After the last one the canary is scaled to full size and
    promoted to stable."""
    analysis: AnalysisSpec | None = None
    """Metrics measured every interval while the canary takes traffic, and at analysis steps."""
    traffic_routing: TrafficRouting | None = None
    """Default (omitted or empty): replica ratio."""
    dynamic_stable_scale: bool = False
    """Scale the stable revision down as the canary takes traffic (stable = total - canary).
    Saves GPUs during the rollout, at the price of slower rollback: the stable revision must
    scale back up (and load the model) before it can take all traffic again."""

    @model_validator(mode="after")
    def _steps_consistent(self) -> CanarySpec:
        weights = [s.set_weight for s in self.steps if s.set_weight is not None]
        for before, after in itertools.pairwise(weights):
            if after < before:
                raise ValueError(
                    f"setWeight values must not decrease from one step to the next ({before} then {after})"
                )
        metric_names = {m.name for m in self.analysis.metrics} if self.analysis else set()
        for index, step in enumerate(self.steps):
            if step.analysis is None:
                continue
            if not metric_names:
                raise ValueError(f"step {index} is an analysis step but canary.analysis.metrics is empty")
            unknown = sorted(set(step.analysis.metrics or []) - metric_names)
            if unknown:
                raise ValueError(f"step {index} names unknown analysis metrics: {', '.join(unknown)}")
        return self


class RolloutSpec(ApiModel):
    """How a new revision replaces the stable one."""

    model_config = cel_rules(
        ("self.strategy != 'Canary' || has(self.canary)", "strategy Canary needs rollout.canary"),
    )

    strategy: Literal["Canary", "RollingUpdate"] = "RollingUpdate"
    """RollingUpdate: bring the new revision to full size, then switch. Canary: walk
    `canary.steps`, judged by `canary.analysis`."""
    canary: CanarySpec | None = None
    """Canary steps, analysis and traffic routing (strategy Canary)."""
    revision_history_limit: int = Field(default=5, ge=0, le=100)
    """How many old revisions are kept in `status.revisions`."""

    @model_validator(mode="after")
    def _canary_needs_spec(self) -> RolloutSpec:
        if self.strategy == "Canary" and self.canary is None:
            raise ValueError("strategy Canary needs rollout.canary")
        return self


def steps_hash(spec: RolloutSpec) -> str:
    """Short stable hash of the canary steps: a change of steps restarts them (Argo stepHash)."""
    steps = [s.to_wire() for s in spec.canary.steps] if spec.canary else []
    return digest(steps, 10)


# ---------------------------------------------------------------------------------------------
# status
# ---------------------------------------------------------------------------------------------


class PauseCondition(StatusModel):
    """Why the rollout is paused. Clearing the list promotes one step."""

    reason: PauseReason
    """PausedStep (a pause step without duration), Inconclusive (analysis could not decide),
    EvalGateError (the eval run could not be judged), AnalysisError (measurements failed past
    consecutiveErrorLimit with errorPolicy Pause)."""
    start_time: datetime
    """When the pause began."""
    message: str = ""
    """Details, e.g. which metric had no data."""


class Measurement(StatusModel):
    """One measurement of one metric."""

    metric: str
    """Metric name from `canary.analysis.metrics`."""
    phase: MeasurementPhase
    """Successful, Failed (a threshold violated), Inconclusive (no data) or Error (query failed)."""
    value: float | None = None
    """The canary's value, when there was one."""
    stable_value: float | None = None
    """The stable revision's value, for ratio thresholds."""
    threshold: str = ""
    """The thresholds applied, e.g. `max 0.01, maxRatioToStable 1.2`."""
    estimate: float | None = None
    """What was judged (mode confidence): the canary's rate, or canary / stable for ratio
    thresholds."""
    lower: float | None = None
    """Lower confidence bound of `estimate` (at `confidence`)."""
    upper: float | None = None
    """Upper confidence bound of `estimate` (at `confidence`)."""
    confidence: float | None = None
    """Confidence of `lower` and `upper`."""
    samples: int | None = None
    """Requests (or observations) the canary's value stands on."""
    stable_samples: int | None = None
    """Requests (or observations) the stable revision's value stands on."""
    since: datetime | None = None
    """Start of the data judged (mode confidence: when the current weight was set)."""
    measured_at: datetime
    """When the measurement was taken."""
    message: str = ""
    """Human-readable verdict naming the metric, its value and the threshold."""


class MetricCounts(StatusModel):
    """How often each outcome happened for one metric during this rollout."""

    successful: int = 0
    """Successful measurements."""
    failed: int = 0
    """Failed measurements (compared with failureLimit)."""
    inconclusive: int = 0
    """Inconclusive measurements since the last resume (compared with inconclusiveLimit)."""
    error: int = 0
    """Errors in total."""
    consecutive_error: int = 0
    """Errors in a row (compared with consecutiveErrorLimit); reset by any other outcome."""
    looks: int = 0
    """Measurements that judged data in this rollout."""
    weights: int = 0
    """Weights judged in this rollout (mode confidence spends the false-rollback budget per
    weight, then per look at it)."""
    weight_looks: int = 0
    """Measurements that judged data since `weightSince`."""
    weight_since: datetime | None = None
    """The weight change the data of the latest measurement began at."""


class AnalysisStatus(StatusModel):
    """Analysis progress of the current rollout."""

    started_at: datetime | None = None
    """When the first measurement of this rollout was taken."""
    last_measured_at: datetime | None = None
    """When the last round of measurements was taken; the next is due one interval later,
    at once if that moment passed while the operator was down."""
    measurements: list[Measurement] = Field(
        default_factory=list, max_length=MAX_METRICS * MAX_MEASUREMENTS_PER_METRIC
    )
    """The latest measurements, at most 10 per metric, oldest first."""
    counts: dict[str, MetricCounts] = Field(default_factory=dict)
    """Outcome counts per metric name."""


class EvalRunStatus(StatusModel):
    """The eval run of the current evalGate step."""

    gate: str
    """EvalGate name."""
    step_index: int
    """The step that started it."""
    name: str = ""
    """Name of the EvalRun object, once the operator created it."""
    phase: EvalPhase | None = None
    """Last phase reported by the EvalRun."""
    started_at: datetime | None = None
    """When the run was requested."""
    message: str = ""
    """Result summary, e.g. the failing assertions."""


class RolloutStatus(StatusModel):
    """Progress of the rollout of `status.canaryRevision`. Users write `abort`, `promoteFull`
    and `pauseConditions` through the status subresource; everything else is the operator's."""

    revision: str | None = None
    """The canary revision this progress belongs to; a new revision starts from step 0."""
    step_index: int = 0
    """Index of the current step; equal to the number of steps once all are done."""
    step_hash: str | None = None
    """Hash of the steps this progress was made with; a change of steps restarts them."""
    step_started_at: datetime | None = None
    """When the current step began (pause durations count from here)."""
    weight: int = 0
    """Percentage of traffic currently routed to the canary."""
    weight_changed_at: datetime | None = None
    """When `weight` last changed; analysis in mode confidence judges the data since then."""
    pause_conditions: list[PauseCondition] = Field(default_factory=list)
    """Why the rollout is paused. Clear the list to promote one step: `kubectl patch llm NAME
    --subresource=status --type=merge -p '{"status":{"rollout":{"pauseConditions":[]}}}'`."""
    controller_pause: bool = False
    """True while the operator holds a pause it set; pauseConditions cleared while this is true
    means a user promoted one step."""
    abort: bool = False
    """Set true to abort (all traffic back to stable, canary scaled to zero); set false after an
    abort to retry from step 0. The operator sets it on an automatic rollback."""
    aborted_at: datetime | None = None
    """When the rollout was aborted; kept until a retry or a new revision."""
    promote_full: bool = False
    """Set true to skip the remaining steps and analysis and promote the canary now."""
    message: str = ""
    """What the rollout is doing or waiting for, or why it aborted."""
    analysis: AnalysisStatus = Field(default_factory=AnalysisStatus)
    """Analysis measurements and counts of this rollout."""
    eval_run: EvalRunStatus | None = None
    """The eval run of the current evalGate step."""
