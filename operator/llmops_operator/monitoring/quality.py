"""Scheduled evaluations of the serving revision: history, trend and the degraded decision. Pure.

A scheduled EvalRun carries the label `llmops.dev/eval-schedule: <gate>`; gate-step runs do
not. History is bounded by metadata (labels and creation time), never by status: status is
user-writable, so it is no authority for deleting anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from llmops_operator.api.monitoring import QualityTrend

SCHEDULE_LABEL = "llmops.dev/eval-schedule"
"""Label of a scheduled EvalRun; its value is the gate's name."""
FINISHED = ("Passed", "Failed", "Error")
DegradedStatus = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class RunResult:
    """What the monitor needs of one EvalRun."""

    name: str
    gate: str
    revision: str
    created: datetime
    phase: str = "Pending"
    pass_rate: float | None = None
    score: float | None = None
    failing: tuple[str, ...] = ()
    below_full_pass: tuple[str, ...] = ()
    """Assertions that did not pass every case (named when the score drops)."""
    completed_at: datetime | None = None
    message: str = ""
    scheduled: bool = False

    @property
    def finished(self) -> bool:
        return self.phase in FINISHED


def _time(text: Any) -> datetime | None:
    if not text:
        return None
    if isinstance(text, datetime):
        return text
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def run_result(obj: Mapping[str, Any]) -> RunResult:
    """Read an EvalRun object (a plain dict as the API server returns it)."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    candidate = status.get("candidate") or {}
    finished = status.get("phase") in FINISHED
    return RunResult(
        name=meta.get("name", ""),
        gate=spec.get("gate", ""),
        revision=spec.get("revision", ""),
        created=_time(meta.get("creationTimestamp")) or datetime.fromtimestamp(0, UTC),
        phase=status.get("phase") or "Pending",
        pass_rate=candidate.get("passRate") if finished and candidate else None,
        score=candidate.get("score") if finished and candidate else None,
        failing=tuple(str(f) for f in status.get("failingAssertions") or []),
        below_full_pass=tuple(
            str(a.get("name"))
            for a in status.get("perAssertion") or []
            if a.get("passRate") is not None and float(a["passRate"]) < 1.0
        ),
        completed_at=_time(status.get("completedAt")),
        message=str(status.get("message") or ""),
        scheduled=SCHEDULE_LABEL in (meta.get("labels") or {}),
    )


def scheduled_runs(eval_runs: Iterable[Mapping[str, Any]], gate: str) -> list[RunResult]:
    """The gate's scheduled runs, oldest first (by creation time, then name)."""
    runs = [
        run_result(r)
        for r in eval_runs
        if ((r.get("metadata") or {}).get("labels") or {}).get(SCHEDULE_LABEL) == gate
    ]
    return sorted(runs, key=lambda r: (r.created, r.name))


def history_to_delete(runs: Sequence[RunResult], limit: int) -> list[str]:
    """Names of the oldest scheduled runs beyond the newest `limit` (runs as from scheduled_runs)."""
    ordered = sorted(runs, key=lambda r: (r.created, r.name))
    return [r.name for r in ordered[: max(0, len(ordered) - max(limit, 1))]]


def promotion_baseline(
    eval_runs: Iterable[Mapping[str, Any]], gate: str, revision: str, scheduled: Sequence[RunResult]
) -> RunResult | None:
    """The score at promotion: the newest Passed gate-step run of this gate on this revision,
    else the revision's first finished (not Error) scheduled run."""
    step_runs = [
        run_result(r)
        for r in eval_runs
        if (r.get("spec") or {}).get("gate") == gate
        and (r.get("spec") or {}).get("revision") == revision
        and SCHEDULE_LABEL not in ((r.get("metadata") or {}).get("labels") or {})
    ]
    passed = sorted((r for r in step_runs if r.phase == "Passed"), key=lambda r: (r.created, r.name))
    if passed:
        return passed[-1]
    mine = [r for r in scheduled if r.revision == revision and r.phase in ("Passed", "Failed")]
    return mine[0] if mine else None


@dataclass(frozen=True)
class Decision:
    """QualityDegraded for one gate."""

    status: DegradedStatus
    reason: str
    message: str
    failing: tuple[str, ...] = field(default_factory=tuple)


def degraded(
    gate: str, latest: RunResult | None, baseline_score: float | None, max_score_drop: float | None
) -> Decision:
    """Degraded when the newest finished run failed the gate's criteria, or when its score is
    more than `max_score_drop` below the score at promotion. An Error run says nothing about
    quality (Unknown), and neither does no run yet."""
    if latest is None:
        return Decision("Unknown", "NotEvaluatedYet", f"gate {gate}: no scheduled run has finished yet")
    if latest.phase == "Error":
        return Decision(
            "Unknown",
            "EvalError",
            f"gate {gate}: scheduled run {latest.name} could not evaluate: {latest.message}".rstrip(": "),
        )
    if latest.phase == "Failed":
        failing = latest.failing or latest.below_full_pass
        return Decision(
            "True",
            "BelowPassCriteria",
            f"gate {gate}: scheduled run {latest.name} of revision {latest.revision} failed "
            f"(pass rate {_fmt(latest.pass_rate)}, score {_fmt(latest.score)}); "
            f"failing assertions: {', '.join(failing) or 'none named'}",
            failing,
        )
    if (
        max_score_drop is not None
        and baseline_score is not None
        and latest.score is not None
        and latest.score < baseline_score - max_score_drop - 1e-12
    ):
        return Decision(
            "True",
            "ScoreDropped",
            f"gate {gate}: score {_fmt(latest.score)} of run {latest.name} is more than "
            f"{_fmt(max_score_drop)} below {_fmt(baseline_score)} at promotion; "
            f"failing assertions: {', '.join(latest.below_full_pass) or 'none named'}",
            latest.below_full_pass,
        )
    return Decision(
        "False",
        "QualityHolds",
        f"gate {gate}: run {latest.name} passed (pass rate {_fmt(latest.pass_rate)}, "
        f"score {_fmt(latest.score)})",
    )


def combine(decisions: Sequence[Decision]) -> Decision:
    """One QualityDegraded over several gates: any degraded one wins, then an unknown one."""
    for status in ("True", "Unknown", "False"):
        matching = [d for d in decisions if d.status == status]
        if matching:
            failing = tuple(f for d in matching for f in d.failing)
            return Decision(status, matching[0].reason, "; ".join(d.message for d in matching), failing)  # type: ignore[arg-type]
    return Decision("Unknown", "NotEvaluatedYet", "no scheduled evaluation")


def trend(
    gate: str,
    revision: str,
    runs: Sequence[RunResult],
    baseline: RunResult | None,
    next_run_at: datetime | None,
) -> QualityTrend:
    """The trend of `revision` under `gate` from its scheduled runs (oldest first)."""
    mine = [r for r in runs if r.revision == revision]
    finished = [r for r in mine if r.finished and r.phase != "Error"]
    newest = mine[-1] if mine else None
    last = finished[-1] if finished else None
    scores = [r.score for r in finished if r.score is not None]
    return QualityTrend(
        gate=gate,
        revision=revision,
        last_run=newest.name if newest else None,
        last_phase=newest.phase if newest else None,
        last_completed_at=last.completed_at if last else None,
        last_pass_rate=last.pass_rate if last else None,
        last_score=last.score if last else None,
        best_score=max(scores) if scores else None,
        baseline_score=baseline.score if baseline else None,
        baseline_run=baseline.name if baseline else None,
        failing_assertions=list(last.failing) if last else [],
        next_run_at=next_run_at,
    )


def latest_finished(runs: Sequence[RunResult], revision: str) -> RunResult | None:
    """The newest finished run of `revision` (Error included: it makes the verdict Unknown)."""
    finished = [r for r in runs if r.revision == revision and r.finished]
    return finished[-1] if finished else None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
