"""The only code that edits `status.conditions`.

Conditions change through `set_condition` / `clear_condition`, which keep
`lastTransitionTime` when a condition's status does not change (Argo Rollouts'
conditions helper), and `Ready` is rolled up from a declared set of sub-conditions, copying
the first non-True reason (KServe's living condition set). A condition that does not apply
is cleared, not set True. Pure: `now` is injected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from llmops_operator.api.common import Condition
from llmops_operator.redact import bounded

Status = Literal["True", "False", "Unknown"]

# --- condition types -----------------------------------------------------------------------
READY = "Ready"
PROGRESSING = "Progressing"
CACHE_READY = "CacheReady"
SCHEDULED = "Scheduled"
"""A GPU plan exists and some node offers it."""
AVAILABLE = "Available"
"""The desired revision has the ready replicas it needs."""
EVAL_GATE_PASSED = "EvalGatePassed"
ANALYSIS = "Analysis"
ROLLED_BACK = "RolledBack"
PROMPTS_READY = "PromptsReady"
CREDENTIALS_READY = "CredentialsReady"
AUTOSCALING = "Autoscaling"
"""Set False only when the autoscaling metric cannot be read for this engine."""
TRAFFIC_ROUTING = "TrafficRouting"
"""The HTTPRoute (and, with inferencePool routing, the pools and pickers) carries the weights."""
VALID = "Valid"
"""EvalGate: its assertions compile."""
QUALITY_DEGRADED = "QualityDegraded"
"""A scheduled evaluation found the serving revision below its gate (True is the bad state)."""
COST_ACCOUNTED = "CostAccounted"
"""The serving revisions' GPUs have prices (False: cost in GPU-hours only; serving unaffected)."""
RECONCILE_ERROR = "ReconcileError"
"""True while the last pass could not finish (stage, object and the server's message; the reasons
are `runtime/failures.py` STAGE_REASONS). True is the bad state; cleared by a clean pass."""
STATUS_CORRECTED = "StatusCorrected"
"""True when status disagreed with the owned objects and was corrected from them (until the
spec changes); True is the notable state."""
SELF_REPORTED: frozenset[str] = frozenset({QUALITY_DEGRADED, RECONCILE_ERROR, STATUS_CORRECTED})
"""Conditions whose Events their stage posts itself (True is bad, so the generic rule misfires)."""
RECONCILING = "Reconciling"
"""True while work is under way (kstatus' abnormal-true condition: Flux reads it as InProgress)."""
STALLED = "Stalled"
"""True when only a person can move the object on (kstatus reads it as Failed, Argo CD's health
scripts as Degraded)."""

MODEL_READY_SET: tuple[str, ...] = (CREDENTIALS_READY, PROMPTS_READY, CACHE_READY, SCHEDULED, AVAILABLE)
"""Sub-conditions whose conjunction is the Model's Ready (absent ones do not count)."""


class Reason:
    """CamelCase reasons; messages say what to do."""

    # Ready / Available
    ALL_READY = "AllReady"
    REPLICAS_READY = "ReplicasReady"
    REPLICAS_NOT_READY = "ReplicasNotReady"
    PODS_NOT_READY = "PodsNeverReady"
    SCALED_TO_ZERO = "ScaledToZero"
    AVAILABLE_UNKNOWN = f"{AVAILABLE}Unknown"
    # Progressing
    ROLLING_UPDATE = "RollingUpdate"
    ROLLOUT_COMPLETE = "RolloutComplete"
    ROLLOUT_PAUSED = "RolloutPaused"
    ROLLOUT_ABORTED = "RolloutAborted"
    REVISION_BLOCKED = "RevisionBlocked"
    CANARY_PROGRESSING = "CanaryProgressing"
    # RolledBack
    ANALYSIS_FAILED = "AnalysisFailed"
    ABORTED = "Aborted"
    # EvalGatePassed
    EVAL_PASSED = "EvalPassed"
    EVAL_FAILED = "EvalFailed"
    EVAL_ERROR = "EvalError"
    EVAL_RUNNING = "EvalRunning"
    # Analysis (otherwise the worst measurement phase: Failed, Error, Inconclusive)
    ANALYSIS_SUCCESSFUL = "Successful"
    # Autoscaling / TrafficRouting
    UNSUPPORTED_METRIC = "UnsupportedMetric"
    HTTPROUTE_MISSING = "HTTPRouteMissing"
    # EvalGate Valid
    VALIDATED = "Validated"
    INVALID_ASSERTION = "InvalidAssertion"
    # CacheReady
    CACHE_LOADING = "Loading"
    CACHE_LOADED = "Loaded"
    CACHE_LOAD_FAILED = "LoadFailed"
    # Scheduled
    PLANNED = "Planned"
    NO_FITTING_NODE = "NoFittingNode"
    UNSCHEDULABLE = "Unschedulable"
    # Credentials / prompts
    SECRET_FOUND = "SecretFound"
    SECRET_MISSING = "SecretMissing"
    SECRET_KEY_MISSING = "SecretKeyMissing"
    PROMPTS_RESOLVED = "PromptsResolved"
    PROMPT_MISSING = "PromptVersionMissing"
    PROMPT_INVALID = "PromptVersionInvalid"
    # TrafficRouting
    ROUTE_ACCEPTED = "RouteAccepted"
    ROUTE_PENDING = "RouteNotYetAccepted"
    ROUTE_NOT_ACCEPTED = "RouteNotAccepted"
    REFS_NOT_RESOLVED = "RouteRefsNotResolved"
    GATEWAY_MISSING = "GatewayNotFound"
    PICKER_NOT_READY = "EndpointPickerNotReady"
    # StatusCorrected
    STABLE_REVISION_CORRECTED = "StableRevisionCorrected"
    # generic
    INVALID_SPEC = "InvalidSpec"


BLOCKING_REASONS = frozenset(
    {
        Reason.INVALID_SPEC,
        Reason.NO_FITTING_NODE,
        Reason.UNSCHEDULABLE,
        Reason.SECRET_MISSING,
        Reason.SECRET_KEY_MISSING,
        Reason.PROMPT_MISSING,
        Reason.PROMPT_INVALID,
        Reason.CACHE_LOAD_FAILED,
        Reason.PODS_NOT_READY,
    }
)
"""Reasons of a False Ready that no retry fixes: the Model is Stalled until a person acts."""

Progress = Literal["InProgress", "Stalled", "Current"]


def parse_conditions(raw: object) -> list[Condition]:
    """Conditions as read from a status anyone with status access may have written: entries that
    are not conditions are dropped (the next write replaces them with ours)."""
    parsed: list[Condition] = []
    for item in raw if isinstance(raw, list) else []:
        try:
            parsed.append(Condition.model_validate(item))
        except ValidationError:
            continue
    return parsed


def get_condition(conditions: Iterable[Condition], type_: str) -> Condition | None:
    """The condition of that type, if present."""
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Iterable[Condition], type_: str) -> bool:
    """Whether the condition exists and is True."""
    condition = get_condition(conditions, type_)
    return condition is not None and condition.status == "True"


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: Status,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None = None,
) -> list[Condition]:
    """A new list with `type_` set; `lastTransitionTime` moves only when status changes."""
    previous = get_condition(conditions, type_)
    transition = now if previous is None or previous.status != status else previous.last_transition_time
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=bounded(message),
        last_transition_time=transition or now,
        observed_generation=generation,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type_ else c for c in conditions]


def clear_condition(conditions: Sequence[Condition], type_: str) -> list[Condition]:
    """A new list without `type_` (for conditions that no longer apply)."""
    return [c for c in conditions if c.type != type_]


def roll_up_ready(
    conditions: Sequence[Condition],
    now: datetime,
    generation: int | None = None,
    required: Sequence[str] = MODEL_READY_SET,
    must_exist: Sequence[str] = (AVAILABLE,),
) -> list[Condition]:
    """Set Ready from `required`: True when every present one is True and every `must_exist`
    one is present; otherwise the first non-True one's status, reason and message."""
    for type_ in required:
        condition = get_condition(conditions, type_)
        if condition is None:
            if type_ in must_exist:
                return set_condition(
                    conditions,
                    READY,
                    "Unknown",
                    f"{type_}Unknown",
                    f"{type_} not yet observed",
                    now,
                    generation,
                )
            continue
        if condition.status != "True":
            return set_condition(
                conditions, READY, condition.status, condition.reason, condition.message, now, generation
            )
    return set_condition(conditions, READY, "True", Reason.ALL_READY, "", now, generation)


def set_progress(
    conditions: Sequence[Condition],
    progress: Progress,
    reason: str,
    message: str,
    now: datetime,
    generation: int | None = None,
) -> list[Condition]:
    """Reconciling / Stalled, the conditions kstatus (Flux) computes status from: at most one is
    present and True; both are cleared when the object is Current."""
    if progress == "Current":
        return clear_condition(clear_condition(conditions, RECONCILING), STALLED)
    type_, other = (RECONCILING, STALLED) if progress == "InProgress" else (STALLED, RECONCILING)
    return set_condition(clear_condition(conditions, other), type_, "True", reason, message, now, generation)


def model_progress(
    conditions: Sequence[Condition], phase: str, aborted: bool, rollout_message: str
) -> tuple[Progress, str, str]:
    """(progress, reason, message) of a Model for `set_progress`: Stalled after an abort or
    rollback, for an invalid spec and for a False Ready with a blocking reason; InProgress
    until the Model is Ready with nothing rolling out; Current then."""
    ready = get_condition(conditions, READY)
    rolled_back = get_condition(conditions, ROLLED_BACK)
    if aborted:
        reason = rolled_back.reason if rolled_back is not None and rolled_back.status == "True" else "Aborted"
        return "Stalled", reason, rollout_message or "the rollout was aborted"
    if ready is not None and ready.status != "True" and ready.reason in BLOCKING_REASONS:
        return "Stalled", ready.reason, ready.message
    if phase == "Ready":
        return "Current", "", ""
    progressing = get_condition(conditions, PROGRESSING)
    if progressing is not None and progressing.message:
        return "InProgress", progressing.reason, progressing.message
    if ready is not None and ready.status != "True":
        return "InProgress", ready.reason, ready.message
    return "InProgress", phase, f"Model is {phase}"


EVAL_RUN_PROGRESS: dict[str, tuple[Progress, Status]] = {
    "Pending": ("InProgress", "Unknown"),
    "Running": ("InProgress", "Unknown"),
    "Passed": ("Current", "True"),
    "Failed": ("Stalled", "False"),
    "Error": ("Stalled", "False"),
}
"""EvalRun phase -> (progress, Ready status): a finished run never changes again."""


def eval_run_conditions(phase: str, message: str, now: datetime) -> list[Condition]:
    """Ready and Reconciling/Stalled of an EvalRun in `phase` (written with every phase)."""
    progress, ready = EVAL_RUN_PROGRESS[phase]
    reason = f"Eval{phase}"
    message = message or f"the eval run is {phase.lower()}"
    conditions = set_condition([], READY, ready, reason, message, now)
    return set_progress(conditions, progress, reason, message, now)


def changed(before: Sequence[Condition], after: Sequence[Condition]) -> list[Condition]:
    """Conditions in `after` whose status, reason or message differ from `before` (for Events)."""
    result = []
    for condition in after:
        old = get_condition(before, condition.type)
        if old is None or (old.status, old.reason, old.message) != (
            condition.status,
            condition.reason,
            condition.message,
        ):
            result.append(condition)
    return result


def validity_conditions(
    obj: dict[str, Any],
    problem: str,
    valid: tuple[str, str],
    invalid_reason: str,
    now: datetime,
    types: tuple[str, ...] = (READY,),
) -> list[dict[str, Any]]:
    """`types` (Ready, and e.g. Valid) from a validation result, plus Stalled when invalid (only
    a new spec fixes it); unchanged conditions keep lastTransitionTime. `valid` is the
    (reason, message) of a valid object."""
    conditions = parse_conditions((obj.get("status") or {}).get("conditions"))
    generation = obj["metadata"].get("generation")
    reason, message = (invalid_reason, problem) if problem else valid
    for type_ in types:
        status: Status = "False" if problem else "True"
        conditions = set_condition(conditions, type_, status, reason, message, now, generation)
    progress = "Stalled" if problem else "Current"
    conditions = set_progress(conditions, progress, reason, message, now, generation)
    return [c.model_dump(by_alias=True, exclude_none=True, mode="json") for c in conditions]
