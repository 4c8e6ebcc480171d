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
from typing import Literal

from llmops_operator.api.common import Condition

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
    REFERENCE_GRANT_MISSING = "ReferenceGrantMissing"
    PICKER_NOT_READY = "EndpointPickerNotReady"
    # generic
    INVALID_SPEC = "InvalidSpec"


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
        message=message,
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
