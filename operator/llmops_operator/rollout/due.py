"""When the canary machine measures: which analysis metrics are due this pass (background
rounds at their interval, an inline analysis step until it has fresh data) and the step the
rollout is on. Pure reads of a `CanaryPass`; `machine` acts on them.
"""

from __future__ import annotations

from datetime import datetime

from llmops_operator.api.analysis import AnalysisSpec
from llmops_operator.api.rollout import CanaryStep, Measurement, RolloutStatus
from llmops_operator.rollout.actions import CanaryPass
from llmops_operator.rollout.analysis.assess import latest


def background_active(p: CanaryPass) -> bool:
    """Whether background analysis runs now: traffic on the canary, not being promoted in full."""
    return p.analysis is not None and p.st.weight > 0 and not p.st.promote_full


def inline_metrics(p: CanaryPass, s: CanaryStep) -> list[str]:
    """The metrics an analysis step judges: its own list, else every metric of the analysis."""
    assert p.analysis is not None and s.analysis is not None
    return list(s.analysis.metrics) if s.analysis.metrics else [m.name for m in p.analysis.metrics]


def fresh_measurement(p: CanaryPass, name: str) -> Measurement | None:
    """The latest measurement of `name` taken since the current step started."""
    m = latest(p.st.analysis, name)
    started = p.st.step_started_at
    if m is None or (started is not None and m.measured_at < started):
        return None
    return m


def due_at(analysis: AnalysisSpec, st: RolloutStatus) -> datetime | None:
    """When the next round falls due: one interval after the last; in mode confidence also
    not before one interval after the weight was set, so that the first look at a weight
    judges data from after the change only (None: at once)."""
    times = [t + analysis.interval_delta for t in (st.analysis.last_measured_at,) if t is not None]
    if analysis.mode == "confidence" and st.weight_changed_at is not None:
        times.append(st.weight_changed_at + analysis.interval_delta)
    return max(times) if times else None


def interval_due(p: CanaryPass) -> bool:
    """Whether a round is due now (`due_at` has passed)."""
    assert p.analysis is not None
    due = due_at(p.analysis, p.st)
    return due is None or due <= p.now


def settled(p: CanaryPass) -> bool:
    """Whether the data since the weight change is old enough to look at (mode confidence)."""
    assert p.analysis is not None
    changed = p.st.weight_changed_at
    return p.analysis.mode != "confidence" or changed is None or changed + p.analysis.interval_delta <= p.now


def due_metrics(p: CanaryPass) -> list[str]:
    """Metrics to measure now (background round and/or the inline analysis step)."""
    if p.analysis is None or p.st.abort:
        return []
    due: list[str] = []
    if background_active(p) and interval_due(p):
        due = [m.name for m in p.analysis.metrics]
    s = current_step(p)
    if s is not None and s.analysis is not None and not p.st.promote_full:
        inline = inline_metrics(p, s)
        missing = any(fresh_measurement(p, n) is None for n in inline) and settled(p)
        if missing or interval_due(p):
            due += [n for n in inline if n not in due]
    return due


def current_step(p: CanaryPass) -> CanaryStep | None:
    """The step the rollout is on (None past the last one)."""
    return p.steps[p.st.step_index] if p.st.step_index < len(p.steps) else None
