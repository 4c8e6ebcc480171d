"""Scale to zero and wake from zero: the autoscaler's decision for `minReplicas: 0`, and where a
cold start spent its time. Pure: the caller reads Prometheus and the pods.

A Model at zero has no pods, so no engine reports load; whatever holds the requests meanwhile
(the inference gateway's flow control, or the user's own proxy) is the only witness. Its
waiting-request count is the wake signal (`autoscaling.wakeSignal`):

* at zero, any waiting request wakes the Model to `minReplicasWhenActive` at once;
* while active, the normal algorithm (`autoscaler.decide`) scales it with
  `minReplicasWhenActive` as its floor;
* it goes back to zero only after `scaleToZeroAfter` of idleness: every pass in that time saw
  a load signal recommending 0 replicas *and* nothing waiting. A pass without data (either
  signal) ends the idle run: the operator never parks a Model because it cannot see its load.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from llmops_operator.api.common import LABEL_REVISION
from llmops_operator.api.model import AutoscalingSpec, WakeSignalSpec
from llmops_operator.api.model_status import AutoscalerState, ColdStart
from llmops_operator.autoscaling import decide as autoscaler
from llmops_operator.metrics_source.builtins import render_query
from llmops_operator.revisions import HASH_LENGTH

WOKEN = "WokenFromZero"
AT_ZERO = "AtZero"
TO_ZERO_PENDING = "ScaleToZeroPending"
SCALED_TO_ZERO = "ScaledToZero"

FLOW_CONTROL_QUEUE_METRICS = (
    "inference_extension_flow_control_queue_size",
    "llm_d_epp_flow_control_queue_size",
)
"""The endpoint picker's flow-control queue gauge (Gateway API Inference Extension), and llm-d's
renamed copy of it. Labelled with the `inference_pool` the request is queued for."""
POOL_CLOCK_SKEW = timedelta(seconds=2)
"""Pods created this long before the wake signal was seen still count as the wake's pods
(API server timestamps have one-second resolution)."""


@dataclass(frozen=True)
class Pending:
    """The wake signal at one instant: requests waiting for the Model (None: unreadable)."""

    value: float | None
    measured_at: datetime
    message: str = ""


def wake_query(signal: WakeSignalSpec, namespace: str, model: str) -> str:
    """PromQL for the requests waiting for `model`: the user's query, or the flow-control queue
    of the Model's InferencePools (`<model>-<revision hash>`)."""
    if signal.query is not None:
        return render_query(signal.query, {"namespace": namespace, "model": model})
    pools = "{{model}}-[0-9a-f]{" + str(HASH_LENGTH) + "}"
    selector = render_query(
        f'namespace="{{{{namespace}}}}", inference_pool=~"{pools}"', {"namespace": namespace, "model": model}
    )
    return " or ".join(f"sum({metric}{{{selector}}})" for metric in FLOW_CONTROL_QUEUE_METRICS)


def _waiting(pending: Pending | None, now: datetime) -> tuple[float | None, str]:
    if pending is None:
        return None, "the wake signal was not read"
    unread = pending.message or "the wake signal could not be read"
    return autoscaler.trusted(pending.value, pending.measured_at, now, "the wake signal", unread)


def _at_zero(
    policy: AutoscalingSpec, prev: AutoscalerState, waiting: float | None, why: str, now: datetime
) -> tuple[int, AutoscalerState]:
    """A Model at zero wakes on a waiting request (the cold start begins now), else stays there."""
    if waiting is not None and waiting > 0:
        target = policy.min_replicas_when_active
        return target, AutoscalerState(
            desired_replicas=target,
            last_scale_time=now,
            reason=WOKEN,
            message=f"{waiting:g} request(s) waiting for the Model at zero: 0 -> {target}",
            pending_requests=waiting,
            cold_start=ColdStart(signal_at=now, pending_requests=waiting),
        )
    message = why or "no request is waiting"
    return 0, AutoscalerState(
        desired_replicas=0,
        last_scale_time=prev.last_scale_time,
        reason=AT_ZERO,
        message=f"at zero: {message}",
        pending_requests=waiting,
        cold_start=prev.cold_start,
    )


def decide(
    policy: AutoscalingSpec,
    signals: autoscaler.Signals | None,
    pending: Pending | None,
    state: AutoscalerState | None,
    current: int,
    now: datetime,
) -> tuple[int, AutoscalerState]:
    """Replicas and status.autoscaler for this pass (see module doc); `autoscaler.decide` as it
    is when the Model does not scale to zero."""
    if not policy.scales_to_zero:
        return autoscaler.decide(policy, signals, state, current, now)
    prev = state or AutoscalerState(desired_replicas=current)
    waiting, why = _waiting(pending, now)
    if current <= 0:
        return _at_zero(policy, prev, waiting, why, now)
    active = policy.model_copy(update={"min_replicas": policy.min_replicas_when_active})
    replicas, new = autoscaler.decide(active, signals, state, current, now)
    value, _ = autoscaler.usable_value(signals, now)
    ready = signals.ready_replicas if signals else 0
    idle = (
        value is not None
        and autoscaler.recommend(policy, value, ready) == 0
        and waiting is not None
        and waiting == 0
    )
    carried = new.model_copy(update={"pending_requests": waiting, "cold_start": prev.cold_start})
    if not idle:
        return replicas, carried
    since = prev.idle_since if prev.idle_since is not None and prev.idle_since <= now else now
    delay = policy.scale_to_zero_after_seconds
    idle_for = (now - since).total_seconds()
    if idle_for >= delay:
        return 0, carried.model_copy(
            update={
                "desired_replicas": 0,
                "last_scale_time": now,
                "idle_since": None,
                "below_target_since": None,
                "stabilized_recommendation": None,
                "reason": SCALED_TO_ZERO,
                "message": f"idle for {idle_for:.0f}s (scaleToZeroAfter {policy.scale_to_zero_after}): "
                f"{current} -> 0",
            }
        )
    remaining = math.ceil(delay - idle_for)
    return replicas, carried.model_copy(
        update={
            "idle_since": since,
            "reason": TO_ZERO_PENDING if replicas == current else new.reason,
            "message": f"{new.message}; idle, to zero in {remaining}s unless requests arrive",
        }
    )


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _condition_time(pod: Mapping[str, Any], type_: str) -> datetime | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_ and c.get("status") == "True":
            return _time(c.get("lastTransitionTime"))
    return None


def _started(pod: Mapping[str, Any]) -> datetime | None:
    starts = [
        _time(((c.get("state") or {}).get("running") or {}).get("startedAt"))
        for c in (pod.get("status") or {}).get("containerStatuses") or []
    ]
    known = [s for s in starts if s is not None]
    return min(known) if known else None


def _earliest(values: Sequence[datetime | None]) -> datetime | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def observe_cold_start(
    cold: ColdStart | None, pods: Sequence[Mapping[str, Any]], revision: str | None
) -> ColdStart | None:
    """Fill the phases of the last wake from the pods of `revision` created since its signal
    (scheduled, container started, Ready). Phases already recorded are kept."""
    if cold is None or cold.ready_at is not None or revision is None:
        return cold
    since = cold.signal_at - POOL_CLOCK_SKEW
    woken = [
        p
        for p in pods
        if ((p.get("metadata") or {}).get("labels") or {}).get(LABEL_REVISION) == revision
        and (_time((p.get("metadata") or {}).get("creationTimestamp")) or since) >= since
        and not (p.get("metadata") or {}).get("deletionTimestamp")
    ]
    scheduled = cold.scheduled_at or _earliest([_condition_time(p, "PodScheduled") for p in woken])
    started = cold.started_at or _earliest([_started(p) for p in woken])
    ready = _earliest([_condition_time(p, "Ready") for p in woken])
    seconds = None if ready is None else max(0.0, (ready - cold.signal_at).total_seconds())
    return cold.model_copy(
        update={
            "scheduled_at": scheduled,
            "started_at": started,
            "ready_at": ready,
            "seconds_to_ready": seconds,
        }
    )
