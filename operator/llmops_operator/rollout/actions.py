"""What the canary machine reads (Observed, EvalResult), the actions it returns, and the state
of one pass in progress (CanaryPass). Pure data; the logic is in `rollout.machine`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from llmops_operator.api.analysis import AnalysisSpec
from llmops_operator.api.rollout import CanaryStep, EvalPhase, Measurement, RolloutSpec, RolloutStatus


@dataclass(frozen=True)
class EvalResult:
    """What the EvalRun of the current gate step reports."""

    phase: EvalPhase
    name: str = ""
    message: str = ""
    """For Failed: the failing assertions; for Error: what went wrong."""


@dataclass(frozen=True)
class Observed:
    """The world as the caller saw it on this pass."""

    canary_revision: str | None
    """The revision being rolled out (None: nothing to roll out)."""
    stable_revision: str | None
    """The revision serving now (None: first deployment, nothing to protect)."""
    total_replicas: int
    """Desired replicas of the Model (spec.replicas or the autoscaler's number)."""
    ready_replicas: Mapping[str, int] = field(default_factory=dict)
    """Ready pods per revision."""
    measurements: Sequence[Measurement] = ()
    """Measurements the caller took on this pass in answer to RunAnalysis."""
    eval_result: EvalResult | None = None
    """Result of the EvalRun for the current gate step; None if none was reported."""
    traffic_blocked: str | None = None
    """Why the canary may not take more traffic now (a route the gateway refused, a canary
    pool whose endpoint picker is not ready); setWeight steps that raise the weight wait."""
    measurements_pending: bool = False
    """A round of measurements was asked for and has not answered yet: no step completes on
    older measurements (a hung Prometheus must never let a rollout walk on)."""


@dataclass(frozen=True)
class ScaleRevision:
    """Set a revision's Deployment to this many replicas."""

    revision: str
    replicas: int


@dataclass(frozen=True)
class RunAnalysis:
    """Measure these metrics now and call `step` again with the results."""

    metrics: tuple[str, ...]


@dataclass(frozen=True)
class StartEvalRun:
    """Make sure an EvalRun of `gate` against the canary exists (create it if missing). Only
    asked for once `status.rollout.evalRun` was persisted by an earlier pass, so its name can be
    derived from persisted status alone: a kill or a lost status write between creating the run
    and recording it never leads to a second run."""

    gate: str
    revision: str
    stable_revision: str | None
    step_index: int


@dataclass(frozen=True)
class Promote:
    """The canary becomes the stable revision (the old stable can be removed)."""

    revision: str


@dataclass(frozen=True)
class Abort:
    """Rolled back: record the revision as failed with this reason (condition RolledBack)."""

    revision: str
    reason: str
    metric: str | None = None


@dataclass(frozen=True)
class RequeueAfter:
    """Call `step` again after this many seconds at the latest."""

    seconds: float


@dataclass(frozen=True)
class EmitEvent:
    """A Kubernetes Event on the Model (emit after the status write)."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


Action = ScaleRevision | RunAnalysis | StartEvalRun | Promote | Abort | RequeueAfter | EmitEvent


@dataclass
class CanaryPass:
    """One pass of the machine in progress: inputs, the status being built, what to do."""

    spec: RolloutSpec
    observed: Observed
    now: datetime
    st: RolloutStatus
    steps: list[CanaryStep]
    analysis: AnalysisSpec | None
    events: list[EmitEvent] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    requeue: list[float] = field(default_factory=list)
    extra_canary: int = 0
    """Canary replicas needed by the current step beyond its weight (scale before shifting)."""

    def event(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(EmitEvent("Warning" if warning else "Normal", reason, message))

    @property
    def canary(self) -> str:
        assert self.observed.canary_revision is not None
        return self.observed.canary_revision

    def ready(self, revision: str | None) -> int:
        return self.observed.ready_replicas.get(revision, 0) if revision else 0
