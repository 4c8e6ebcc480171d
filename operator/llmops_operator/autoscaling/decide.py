"""The LLM-signal autoscaler: one pure decision per reconcile pass, resumable from status.

`decide(policy, signals, state, current, now)` turns the Model's load (waiting requests, KV
cache utilization or requests per second, read by `autoscaling_signals.read_signals`) into a
replica count. The caller writes the count to the Deployments and the returned
`AutoscalerState` to `status.autoscaler`; the user's spec is never written.

The algorithm, in order:

1. `current` is clamped into [minReplicas, maxReplicas]: a bounds change applies at once.
2. No usable signal (no `Signals`, no value, a stale or non-finite value): hold the clamped
   count. Prometheus being down never scales a Model to zero or anywhere else.
3. Recommendation: `ceil(total / target)` for the sum-type metrics (queueDepth,
   requestsPerSecond), `ceil(ready * mean / target)` for kvCacheUtilization, clamped to the
   bounds. The KV mean is taken over the ready pods, so it is multiplied by the ready count,
   not by the desired count: pods still loading weights would otherwise compound every pass.
4. Above current: scale up now, at most to `max(2 * current, current + 1)` per decision.
5. Below current: stabilize like the HPA. The first lower recommendation opens a window
   (`belowTargetSince`); only when every recommendation for `scaleDownDelaySeconds` has been
   lower does the count drop, to the highest recommendation seen in that window. A
   recommendation at or above current, or a pass without data, closes the window.

Nothing here reads the clock or does I/O, so the same inputs always give the same answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from llmops_operator.api.model import AutoscalingSpec
from llmops_operator.api.model_status import AutoscalerState

SIGNAL_MAX_AGE = timedelta(minutes=2)
"""Signals measured longer ago than this are treated as no data."""
_CEIL_EPSILON = 1e-9
"""Float noise (e.g. 3.0000000001 waiting requests) must not cost a whole replica."""
SUM_METRICS = frozenset({"queueDepth", "requestsPerSecond"})

# Reasons written to status.autoscaler.reason (CamelCase, stable; the message says the numbers).
SCALED_UP = "ScaledUp"
SCALED_DOWN = "ScaledDown"
STEADY = "Steady"
SCALE_DOWN_PENDING = "ScaleDownPending"
LIMITED_BY_MAX = "LimitedByMaxReplicas"
NO_DATA = "NoData"
CLAMPED = "Clamped"


@dataclass(frozen=True)
class Signals:
    """The Model's load at one instant, over the ready pods of its serving revisions."""

    value: float | None
    """queueDepth: total waiting requests; requestsPerSecond: total finished requests/s;
    kvCacheUtilization: mean utilization 0-1. None when it could not be measured."""
    ready_replicas: int
    """Pods the value was measured over."""
    measured_at: datetime
    """When the value was read (signals older than SIGNAL_MAX_AGE are ignored)."""
    message: str = ""
    """Why `value` is None (e.g. Prometheus unreachable), for status."""


MAX_RECOMMENDATION = 1_000_000
"""Cap on a recommendation before bounds, so a huge signal cannot overflow."""


def clamp(replicas: int, policy: AutoscalingSpec) -> int:
    """`replicas` within [minReplicas, maxReplicas]."""
    return max(policy.min_replicas, min(policy.max_replicas, replicas))


def trusted(
    value: float | None, measured_at: datetime, now: datetime, what: str, unread: str
) -> tuple[float | None, str]:
    """`value` if it can be trusted (read, finite, not negative, fresh), else None and why
    (`unread` when there is no value)."""
    if value is None:
        return None, unread
    if not math.isfinite(value) or value < 0:
        return None, f"{what} {value} is not a usable number"
    if now - measured_at > SIGNAL_MAX_AGE:
        return None, f"{what} measured at {measured_at.isoformat()} is stale"
    return value, ""


def usable_value(signals: Signals | None, now: datetime) -> tuple[float | None, str]:
    """The signal value if it can be trusted, else None and why."""
    if signals is None:
        return None, "no signals were read"
    unread = signals.message or "the metric query returned no data"
    return trusted(signals.value, signals.measured_at, now, "the metric value", unread)


def recommend(policy: AutoscalingSpec, value: float, ready_replicas: int) -> int | None:
    """Replicas for this load, before bounds; None if the signal cannot say (KV with no pods)."""
    if policy.metric in SUM_METRICS:
        load = value / policy.target
    elif ready_replicas <= 0:
        return None
    else:
        load = ready_replicas * value / policy.target
    if not math.isfinite(load) or load > MAX_RECOMMENDATION:
        return MAX_RECOMMENDATION  # an absurd reading asks for the most; bounds apply after
    return max(0, math.ceil(load - _CEIL_EPSILON))


def max_step_up(current: int) -> int:
    """At most double per decision (and always at least one more), so a spike in one scrape
    cannot jump a Model from 1 to maxReplicas of GPUs."""
    return max(2 * current, current + 1)


def decide(
    policy: AutoscalingSpec,
    signals: Signals | None,
    state: AutoscalerState | None,
    current: int,
    now: datetime,
) -> tuple[int, AutoscalerState]:
    """The replica count for the Model now and the state to store in status.autoscaler.

    `current` is the replica count the operator last asked for (status.autoscaler.desiredReplicas,
    or the serving Deployments' spec.replicas before the first decision), not the ready count.
    """
    prev = state or AutoscalerState(desired_replicas=current)
    value, why_no_value = usable_value(signals, now)
    rec = None if value is None else recommend(policy, value, signals.ready_replicas if signals else 0)
    if rec is None:
        why = why_no_value or f"{policy.metric} was measured over 0 ready pods"
        choice = _without_recommendation(policy, current, why)
    else:
        assert value is not None
        choice = _with_recommendation(policy, prev, current, value, rec, now)
    changed = choice.replicas != prev.desired_replicas or choice.replicas != current
    return choice.replicas, AutoscalerState(
        desired_replicas=choice.replicas,
        recommendation=None if rec is None else clamp(rec, policy),
        last_value=value,
        last_scale_time=now if changed else prev.last_scale_time,
        below_target_since=choice.since,
        stabilized_recommendation=choice.stabilized,
        reason=choice.reason,
        message=choice.message,
    )


@dataclass(frozen=True)
class _Choice:
    replicas: int
    reason: str
    message: str
    since: datetime | None = None
    """When recommendations fell below the current count (scale-down window), if they did."""
    stabilized: int | None = None
    """Highest recommendation seen in that window."""


def _without_recommendation(policy: AutoscalingSpec, current: int, why: str) -> _Choice:
    """No usable reading: hold (within bounds)."""
    base = clamp(current, policy)
    if base != current:
        return _Choice(base, CLAMPED, f"{why}; moved {current} replicas into bounds: {base}")
    return _Choice(base, NO_DATA, f"{why}; holding {base} replicas")


def _with_recommendation(
    policy: AutoscalingSpec, prev: AutoscalerState, current: int, value: float, rec: int, now: datetime
) -> _Choice:
    """Up at once (at most double), steady, or down after a full delay of lower readings."""
    base = clamp(current, policy)
    bounded = clamp(rec, policy)
    seen = f"{policy.metric} {value:g} (target {policy.target:g} per replica) recommends {rec}"
    if bounded > base:
        target = min(bounded, max_step_up(base))
        limited = f", limited to {target} this step (at most double)" if target < bounded else ""
        return _Choice(target, SCALED_UP, f"{seen}: {base} -> {target}{limited}")
    if bounded == base:
        if base != current:
            return _Choice(base, CLAMPED, f"{seen}; moved {current} replicas into bounds: {base}")
        if rec > policy.max_replicas:
            return _Choice(base, LIMITED_BY_MAX, f"{seen}; at maxReplicas {policy.max_replicas}")
        return _Choice(base, STEADY, f"{seen}; holding {base} replicas")
    return _scale_down(policy, prev, base != current, base, bounded, seen, now)


def _scale_down(
    policy: AutoscalingSpec,
    prev: AutoscalerState,
    clamped: bool,
    base: int,
    bounded: int,
    seen: str,
    now: datetime,
) -> _Choice:
    """bounded < base: scale down only after a full delay of lower recommendations."""
    since = prev.below_target_since
    if since is None or since > now:  # a window opens (a future start is clock skew: restart it)
        since, stab = now, bounded
    else:
        stab = max(bounded, prev.stabilized_recommendation or bounded)
    delay = timedelta(seconds=policy.scale_down_delay_seconds)
    if now - since >= delay:
        target = min(base, stab)
        return _Choice(
            target,
            SCALED_DOWN,
            f"{seen}; lower for {policy.scale_down_delay_seconds}s: {base} -> {target} "
            f"(highest recommendation in that window)",
        )
    remaining = math.ceil((since + delay - now).total_seconds())
    reason = CLAMPED if clamped else SCALE_DOWN_PENDING
    message = f"{seen}; scaling {base} -> {stab} if it stays lower for {remaining}s more"
    return _Choice(base, reason, message, since=since, stabilized=stab)
