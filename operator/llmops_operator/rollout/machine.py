"""The canary state machine: pure, no Kubernetes, no clock.

`step(spec, status, observed, now) -> (actions, new_status)` is called on every pass (a kopf
handler or timer). Everything the machine knows about its progress is in `status` (the
Model's `status.rollout`), so an operator that restarts resumes from status alone. One pass:

1. Reset on a new canary revision, restart on a change of steps, abort / retry, promoteFull,
   promote one step (pause conditions cleared by a user).
2. Record the measurements the caller took (`observed.measurements`) and assess them.
   Failed (past failureLimit) aborts; Error (past consecutiveErrorLimit) pauses (errorPolicy
   Pause) or aborts (errorPolicy Abort); Inconclusive (past inconclusiveLimit) pauses. A pause
   of the analysis ends by itself once a round succeeds. While the latest measurements are not
   all Successful, or a round is still being measured, no step completes.
3. Walk steps while they complete (setWeight, pause, analysis, evalGate); after the last one,
   scale the canary to full size and promote it.
4. Desired state for this pass: ScaleRevision for both revisions (idempotent; the traffic
   weight is `status.weight`), RequeueAfter, Events, and `RunAnalysis(metrics)` when a round is
   due (lastMeasuredAt + interval <= now, so one that fell due while the operator was down is
   taken at once; `rollout.due` says which metrics are due): the caller measures them
   (`rollout.analysis.run.take_measurements`) and calls `step` again with them, same status.
   Inputs and actions: `rollout.actions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from llmops_operator.api.durations import parse_duration
from llmops_operator.api.rollout import (
    AnalysisStatus,
    CanaryStep,
    EvalRunStatus,
    PauseCondition,
    PauseReason,
    RolloutSpec,
    RolloutStatus,
    steps_hash,
)
from llmops_operator.rollout.actions import (
    Abort,
    Action,
    CanaryPass,
    EmitEvent,
    EvalResult,
    Observed,
    Promote,
    RequeueAfter,
    RunAnalysis,
    ScaleRevision,
    StartEvalRun,
)
from llmops_operator.rollout.analysis.assess import Verdict, assess, latest, record, reset_inconclusive
from llmops_operator.rollout.due import (
    background_active,
    current_step,
    due_at,
    due_metrics,
    fresh_measurement,
    inline_metrics,
)
from llmops_operator.rollout.traffic.replica import split

REPLICA_POLL_SECONDS = 10.0
EVAL_POLL_SECONDS = 15.0
EVAL_START_SECONDS = 0.5
"""After recording a new eval run in status: the pass that creates the EvalRun comes this soon."""


def step(
    spec: RolloutSpec, status: RolloutStatus, observed: Observed, now: datetime
) -> tuple[list[Action], RolloutStatus]:
    """One pass of the rollout: the actions to take and the new status (see module doc)."""
    if observed.canary_revision is None:
        return [], status
    canary_spec = spec.canary if spec.strategy == "Canary" else None
    steps = list(canary_spec.steps) if canary_spec else []
    analysis = canary_spec.analysis if canary_spec and canary_spec.analysis else None
    if analysis is not None and not analysis.metrics:
        analysis = None
    if observed.stable_revision is None or observed.stable_revision == observed.canary_revision:
        steps, analysis = [], None  # first deployment: nothing to compare with or protect
    p = CanaryPass(spec, observed, now, status.model_copy(deep=True), steps, analysis)

    _reset_or_restart(p, steps_hash(spec))
    if p.st.abort:
        if p.st.aborted_at is None:
            _abort(p, "aborted by user", None)
        return _finish(p)
    if p.st.aborted_at is not None:
        _restart(p, "Retry", f"retrying revision {p.canary} from step 0")
    _manual_promotion(p)
    _gate_retry(p)

    _analyse(p)
    if p.st.abort:
        return _finish(p)
    _walk(p)
    return _finish(p)


def _fresh_status(p: CanaryPass, h: str) -> RolloutStatus:
    return RolloutStatus(revision=p.canary, step_hash=h, step_started_at=p.now, weight=0)


def _reset_or_restart(p: CanaryPass, h: str) -> None:
    if p.st.revision != p.canary:
        p.st = _fresh_status(p, h)
        p.st.message = f"rolling out revision {p.canary}"
        p.event("RolloutStarted", f"rolling out revision {p.canary} in {len(p.steps)} steps")
    elif p.st.step_hash != h:
        if p.st.abort:
            p.st.step_hash = h
            return
        _restart(p, "StepsChanged", "the canary steps changed; restarting them from step 0")
        p.st.step_hash = h


def _restart(p: CanaryPass, reason: str, message: str) -> None:
    weight = 0 if p.st.abort or p.st.aborted_at else p.st.weight
    p.st = RolloutStatus(
        revision=p.canary,
        step_hash=p.st.step_hash,
        step_started_at=p.now,
        weight=weight,
        weight_changed_at=p.now if weight else None,
        message=message,
    )
    p.event(reason, message)


def _abort(p: CanaryPass, reason: str, metric: str | None) -> None:
    p.st.abort = True
    p.st.aborted_at = p.now
    p.st.message = f"rolled back revision {p.canary}: {reason}"
    p.st.pause_conditions = []
    p.st.controller_pause = False
    p.st.promote_full = False
    p.st.weight = 0
    p.st.weight_changed_at = p.now
    p.actions.append(Abort(p.canary, reason, metric))
    p.event("RolledBack", p.st.message, warning=True)


def _manual_promotion(p: CanaryPass) -> None:
    st = p.st
    if st.promote_full:
        if st.step_index < len(p.steps):
            st.step_index = len(p.steps)
            st.step_started_at = p.now
            p.event("PromotedFull", "promoted fully by user: skipping the remaining steps and analysis")
        st.pause_conditions = []
        st.controller_pause = False
        return
    if st.controller_pause and not st.pause_conditions:
        st.controller_pause = False
        st.analysis = reset_inconclusive(st.analysis)
        if st.step_index < len(p.steps):
            p.event("Promoted", f"promoted by user past step {st.step_index}")
            _advance(p)


def _gate_retry(p: CanaryPass) -> None:
    """A gate that could not be judged, whose run the user cleared (`kubectl llmops retry`:
    `status.rollout.evalRun` removed), runs again: a new EvalRun, the pause lifted."""
    if p.st.eval_run is None and _has_pause(p, "EvalGateError"):
        _unpause(p, "EvalGateError", f"eval gate at step {p.st.step_index} retried by user")


def _pause(p: CanaryPass, reason: PauseReason, message: str) -> None:
    if not any(c.reason == reason for c in p.st.pause_conditions):
        p.st.pause_conditions.append(PauseCondition(reason=reason, start_time=p.now, message=message))
        p.st.controller_pause = True
        p.event("Paused", f"{reason}: {message}", warning=reason != "PausedStep")
    p.st.message = f"paused ({reason}): {message}"


def _unpause(p: CanaryPass, reason: PauseReason, message: str) -> None:
    if any(c.reason == reason for c in p.st.pause_conditions):
        p.st.pause_conditions = [c for c in p.st.pause_conditions if c.reason != reason]
        p.st.controller_pause = bool(p.st.pause_conditions)
        p.event("Resumed", message)


def _advance(p: CanaryPass) -> None:
    done = p.st.step_index
    p.st.step_index += 1
    p.st.step_started_at = p.now
    # eval_run stays: the verdict of the gate just passed is read from status
    p.event("StepCompleted", f"step {done} completed ({_describe(p.steps[done])})")


def _describe(s: CanaryStep) -> str:
    if s.set_weight is not None:
        return f"setWeight {s.set_weight}"
    if s.pause is not None:
        return f"pause {s.pause.duration}" if s.pause.duration else "pause until promoted"
    if s.analysis is not None:
        return "analysis"
    assert s.eval_gate is not None
    return f"evalGate {s.eval_gate.name}"


# ---------------------------------------------------------------------------------------------
# analysis
# ---------------------------------------------------------------------------------------------


def _all_latest_successful(status: AnalysisStatus, names: Sequence[str]) -> bool:
    return all((m := latest(status, n)) is not None and m.phase == "Successful" for n in names)


def _analyse(p: CanaryPass) -> None:
    """Record this pass's measurements; abort or pause on the background verdict."""
    st = p.st
    if p.observed.measurements:
        for m in p.observed.measurements:
            before = latest(st.analysis, m.metric)
            if m.phase != "Successful" and (before is None or before.phase != m.phase):
                p.event(f"Analysis{m.phase}", m.message, warning=True)
        st.analysis = record(st.analysis, list(p.observed.measurements), p.now)
    if p.analysis is None or not background_active(p):
        return
    names = [m.name for m in p.analysis.metrics]
    if p.observed.measurements and _all_latest_successful(st.analysis, names):
        if _has_pause(p, "Inconclusive"):
            st.analysis = reset_inconclusive(st.analysis)
            _unpause(p, "Inconclusive", "analysis has data again and all metrics succeed; resuming")
        if _has_pause(p, "AnalysisError"):
            _unpause(p, "AnalysisError", "measurements work again and all metrics succeed; resuming")
    verdict = assess(p.analysis, st.analysis)
    if verdict.aborts:
        _abort_or_hold(p, verdict)
    elif verdict.phase == "Inconclusive":
        _pause(p, "Inconclusive", verdict.reason)


def _abort_or_hold(p: CanaryPass, verdict: Verdict) -> None:
    """Failed aborts; Error aborts only with errorPolicy Abort, otherwise the rollout holds."""
    assert p.analysis is not None
    if verdict.phase == "Error" and p.analysis.error_policy == "Pause":
        _pause(p, "AnalysisError", f"{verdict.reason}; holding until measurements work (errorPolicy Pause)")
    else:
        _abort(p, verdict.reason, verdict.metric)


def _background_verdict(p: CanaryPass) -> Verdict | None:
    """The background verdict at the current weight (None: no background analysis now)."""
    if p.analysis is None or not background_active(p):
        return None
    return assess(p.analysis, p.st.analysis)


def _only_pause(p: CanaryPass, reason: PauseReason) -> bool:
    return bool(p.st.pause_conditions) and all(c.reason == reason for c in p.st.pause_conditions)


def _has_pause(p: CanaryPass, reason: PauseReason) -> bool:
    return any(c.reason == reason for c in p.st.pause_conditions)


# ---------------------------------------------------------------------------------------------
# steps
# ---------------------------------------------------------------------------------------------


def _walk(p: CanaryPass) -> None:
    """Run steps while they complete; stop at the first that waits. No step completes while
    the background analysis at the current weight is not Successful."""
    for _ in range(len(p.steps) + 1):
        s = current_step(p)
        inline_inconclusive = s is not None and s.analysis is not None and _only_pause(p, "Inconclusive")
        if p.st.pause_conditions and not inline_inconclusive:
            p.requeue.append(_requeue_for_analysis(p))
            return
        if p.observed.measurements_pending and p.analysis is not None:
            p.st.message = f"holding at step {p.st.step_index}: waiting for the analysis measurements"
            return
        verdict = _background_verdict(p)
        inline = s is not None and s.analysis is not None  # an analysis step decides by itself
        if verdict is not None and verdict.phase != "Successful" and not inline:
            p.st.message = f"holding at step {p.st.step_index}: {verdict.reason}"
            return
        if s is None:
            _complete(p)
            return
        done = {
            "setWeight": _step_set_weight,
            "pause": _step_pause,
            "analysis": _step_analysis,
            "evalGate": _step_eval_gate,
        }[s.kind](p, s)
        if p.st.abort or not done:
            return
        _advance(p)


def _requeue_for_analysis(p: CanaryPass) -> float:
    due = due_at(p.analysis, p.st) if p.analysis is not None else None
    if due is None:
        return REPLICA_POLL_SECONDS
    return max(0.0, (due - p.now).total_seconds())


def _step_set_weight(p: CanaryPass, s: CanaryStep) -> bool:
    assert s.set_weight is not None
    target = s.set_weight
    dynamic = bool(p.spec.canary and p.spec.canary.dynamic_stable_scale)
    need = split(target, p.observed.total_replicas, dynamic).canary
    p.extra_canary = max(p.extra_canary, need)
    ready = p.ready(p.canary)
    if ready < need:
        p.st.message = f"step {p.st.step_index}: waiting for canary {p.canary}: {ready}/{need} replicas ready"
        p.requeue.append(REPLICA_POLL_SECONDS)
        return False
    if p.observed.traffic_blocked and target > p.st.weight:
        blocked = p.observed.traffic_blocked
        p.st.message = f"step {p.st.step_index}: holding at weight {p.st.weight}: {blocked}"
        p.requeue.append(REPLICA_POLL_SECONDS)
        return False
    if p.st.weight != target:
        p.event("WeightSet", f"canary {p.canary} weight {p.st.weight} -> {target}")
        p.st.weight = target
        p.st.weight_changed_at = p.now
    return True


def _step_pause(p: CanaryPass, s: CanaryStep) -> bool:
    assert s.pause is not None
    if s.pause.duration is None:
        _pause(p, "PausedStep", f"step {p.st.step_index} waits until promoted")
        return False
    started = p.st.step_started_at or p.now
    end = started + parse_duration(s.pause.duration)
    if end <= p.now:
        return True
    remaining = (end - p.now).total_seconds()
    p.st.message = f"step {p.st.step_index}: pausing {s.pause.duration}, {remaining:.0f}s left"
    p.requeue.append(remaining)
    return False


def _step_analysis(p: CanaryPass, s: CanaryStep) -> bool:
    assert p.analysis is not None
    names = inline_metrics(p, s)
    fresh = {n: fresh_measurement(p, n) for n in names}
    if any(m is None for m in fresh.values()):
        p.st.message = f"step {p.st.step_index}: measuring {', '.join(names)}"
        return False
    measured = [m for m in fresh.values() if m is not None]
    failed = [m for m in measured if m.phase == "Failed"]
    if failed:
        _abort(p, f"analysis step {p.st.step_index}: {failed[0].message}", failed[0].metric)
        return False
    verdict = assess(p.analysis, p.st.analysis, names)
    if verdict.aborts:
        _abort_or_hold(p, verdict)
        return False
    errors = [m for m in measured if m.phase == "Error"]
    if errors:
        p.st.message = f"step {p.st.step_index}: analysis error, retrying: {errors[0].message}"
        p.requeue.append(_requeue_for_analysis(p))
        return False
    inconclusive = [m for m in measured if m.phase == "Inconclusive"]
    if inconclusive:
        _pause(p, "Inconclusive", f"analysis step {p.st.step_index}: {inconclusive[0].message}")
        return False
    _unpause(p, "Inconclusive", f"analysis step {p.st.step_index} succeeded; resuming")
    p.event("AnalysisSuccessful", f"analysis step {p.st.step_index}: all of {', '.join(names)} succeeded")
    return True


def _step_eval_gate(p: CanaryPass, s: CanaryStep) -> bool:
    assert s.eval_gate is not None
    gate = s.eval_gate.name
    st = p.st
    p.extra_canary = max(p.extra_canary, 1)  # the gate needs a canary pod to talk to
    run = st.eval_run
    if run is None or run.step_index != st.step_index or run.gate != gate:
        if p.ready(p.canary) < 1:
            st.message = f"step {st.step_index}: eval gate {gate} waits for a ready canary pod"
            p.requeue.append(REPLICA_POLL_SECONDS)
            return False
        st.eval_run = EvalRunStatus(gate=gate, step_index=st.step_index, started_at=p.now, phase="Pending")
        p.event("EvalGateStarted", f"step {st.step_index}: evaluating revision {p.canary} with gate {gate}")
        # the EvalRun is created by the next pass, once this status (its name) is persisted
        st.message = f"step {st.step_index}: starting eval gate {gate}"
        p.requeue.append(EVAL_START_SECONDS)
        return False
    result = p.observed.eval_result
    if result is not None:
        run.phase = result.phase
        run.name = result.name or run.name
        run.message = result.message
    if result is None or result.phase in ("Pending", "Running"):
        p.actions.append(StartEvalRun(gate, p.canary, p.observed.stable_revision, st.step_index))
        st.message = f"step {st.step_index}: waiting for eval gate {gate}: " + (
            f"run {result.phase}" if result else "no EvalRun result reported yet (is the EvalGate available?)"
        )
        p.requeue.append(EVAL_POLL_SECONDS)
        return False
    if result.phase == "Passed":
        _unpause(p, "EvalGateError", f"eval gate {gate} passed")
        p.event(
            "EvalGatePassed",
            f"eval gate {gate} passed for revision {p.canary}: {result.message}".rstrip(": "),
        )
        return True
    if result.phase == "Failed":
        _abort(p, f"eval gate {gate} failed: {result.message or 'assertions failed'}", None)
        return False
    _pause(p, "EvalGateError", f"eval gate {gate} could not be judged: {result.message or 'error'}")
    return False


def _complete(p: CanaryPass) -> None:
    """After the last step: the canary to full size, then all traffic, then promote."""
    total = p.observed.total_replicas
    p.extra_canary = max(p.extra_canary, total)
    ready = p.ready(p.canary)
    if ready < total:
        p.st.message = f"all steps done; scaling canary {p.canary} to {total} replicas ({ready} ready)"
        p.requeue.append(REPLICA_POLL_SECONDS)
        return
    if p.st.weight != 100:
        p.event("Promoted", f"revision {p.canary} promoted to stable")
    p.st.weight = 100
    p.st.message = f"revision {p.canary} promoted to stable"
    p.actions.append(Promote(p.canary))


# ---------------------------------------------------------------------------------------------
# desired state
# ---------------------------------------------------------------------------------------------


def _finish(p: CanaryPass) -> tuple[list[Action], RolloutStatus]:
    st, obs = p.st, p.observed
    total = obs.total_replicas
    dynamic = bool(p.spec.canary and p.spec.canary.dynamic_stable_scale)
    if st.abort:
        canary_replicas, stable_replicas = 0, total
    else:
        ratio = split(st.weight, total, dynamic)
        canary_replicas = min(total, max(ratio.canary, p.extra_canary)) if total else 0
        stable_replicas = ratio.stable
    desired: list[Action] = [ScaleRevision(p.canary, canary_replicas)]
    if obs.stable_revision and obs.stable_revision != p.canary:
        desired.append(ScaleRevision(obs.stable_revision, stable_replicas))
    due = due_metrics(p)
    if due and not obs.measurements:
        desired.append(RunAnalysis(tuple(due)))
    elif p.analysis is not None and background_active(p) and not st.abort:
        p.requeue.append(_requeue_for_analysis(p))
    actions = desired + p.actions
    if p.requeue:
        actions.append(RequeueAfter(min(p.requeue)))
    actions.extend(p.events)
    return actions, st


__all__ = [
    "Abort",
    "Action",
    "EmitEvent",
    "EvalResult",
    "Observed",
    "Promote",
    "RequeueAfter",
    "RunAnalysis",
    "ScaleRevision",
    "StartEvalRun",
    "step",
]
