"""Pure scoring: case verdicts, aggregate scores, and the run's final phase.

A run with too many case errors is Error, never Passed or Failed: an unreachable
endpoint or judge says nothing about the candidate's quality.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from llmops_operator.api.evals import PassCriteria
from llmops_operator.evals.assertions import Outcome

EPSILON = 1e-9


@dataclass(frozen=True)
class AssertionOutcome:
    """One assertion's outcome on one case, with what scoring needs to know about it."""

    name: str
    type: str
    weight: float
    outcome: Outcome


@dataclass(frozen=True)
class CaseOutcome:
    """Everything that happened to one case on one side (candidate or baseline)."""

    id: str
    assertions: list[AssertionOutcome] = field(default_factory=list)
    error: str | None = None
    latency_ms: float | None = None
    output: str | None = None

    @property
    def effective_error(self) -> str | None:
        """The request error, or the first assertion that could not be evaluated."""
        if self.error:
            return self.error
        for item in self.assertions:
            if item.outcome.error:
                return f"{item.name}: {item.outcome.error}"
        return None


@dataclass(frozen=True)
class CaseVerdict:
    id: str
    passed: bool
    score: float
    failed: list[str]
    error: str | None


@dataclass(frozen=True)
class SideScores:
    pass_rate: float
    score: float
    latency_p95_ms: float | None
    cases: int
    passed: int
    errors: int


@dataclass(frozen=True)
class AssertionSummary:
    name: str
    type: str
    passed: int
    failed: int
    errors: int
    pass_rate: float
    mean_score: float | None


@dataclass(frozen=True)
class Verdict:
    phase: str
    message: str
    failing_assertions: list[str]


def judge_case(case: CaseOutcome, case_score: float | None = None) -> CaseVerdict:
    """A case passes when every weighted assertion passes, or its weighted score reaches `case_score`."""
    error = case.effective_error
    if error:
        return CaseVerdict(case.id, False, 0.0, [], error)
    gating = [a for a in case.assertions if a.weight > 0]
    failed = [a.name for a in gating if not a.outcome.passed]
    total_weight = sum(a.weight for a in gating)
    score = sum(a.weight * a.outcome.score for a in gating) / total_weight if total_weight else 1.0
    passed = score + EPSILON >= case_score if case_score is not None else not failed
    return CaseVerdict(case.id, passed, score, failed, None)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def side_scores(cases: list[CaseOutcome], verdicts: list[CaseVerdict]) -> SideScores:
    """Errored cases count in the denominator as not passed."""
    total = len(verdicts)
    passed = sum(v.passed for v in verdicts)
    errors = sum(v.error is not None for v in verdicts)
    latencies = [c.latency_ms for c in cases if c.latency_ms is not None and c.error is None]
    return SideScores(
        pass_rate=passed / total if total else 0.0,
        score=sum(v.score for v in verdicts) / total if total else 0.0,
        latency_p95_ms=percentile(latencies, 95),
        cases=total,
        passed=passed,
        errors=errors,
    )


def summarise_assertions(cases: list[CaseOutcome]) -> list[AssertionSummary]:
    """Per assertion across cases, in declaration order."""
    order: list[tuple[str, str]] = []
    buckets: dict[str, list[Outcome]] = {}
    for case in cases:
        if case.error:
            continue
        for item in case.assertions:
            if item.name not in buckets:
                order.append((item.name, item.type))
                buckets[item.name] = []
            buckets[item.name].append(item.outcome)
    summaries = []
    for name, kind in order:
        outcomes = buckets[name]
        errors = sum(o.error is not None for o in outcomes)
        evaluated = [o for o in outcomes if o.error is None]
        passed = sum(o.passed for o in evaluated)
        measured = [o.measured for o in evaluated if o.measured is not None]
        scores = measured if kind == "latency" else [o.score for o in evaluated]
        summaries.append(
            AssertionSummary(
                name=name,
                type=kind,
                passed=passed,
                failed=len(evaluated) - passed,
                errors=errors,
                pass_rate=passed / len(evaluated) if evaluated else 0.0,
                mean_score=sum(scores) / len(scores) if scores else None,
            )
        )
    return summaries


def _blamed(verdicts: list[CaseVerdict], assertions: list[AssertionSummary]) -> list[str]:
    """The weighted assertions that failed cases, in declaration order. A weight-0 assertion is
    recorded, never blamed: it decided no case (with a real model, similarity scores were named
    while the leak that failed the gate was not)."""
    blamed = {name for v in verdicts if not v.passed and v.error is None for name in v.failed}
    return [a.name for a in assertions if a.name in blamed]


def _first_error(verdicts: list[CaseVerdict]) -> str:
    for v in verdicts:
        if v.error:
            return f"case {v.id}: {v.error}"
    return ""


def _error_budget_exceeded(scores: SideScores, criteria: PassCriteria) -> bool:
    return scores.errors > 0 and scores.errors / scores.cases > criteria.max_error_rate + EPSILON


def verdict(
    candidate: SideScores,
    candidate_verdicts: list[CaseVerdict],
    assertions: list[AssertionSummary],
    criteria: PassCriteria,
    baseline: SideScores | None = None,
    baseline_verdicts: list[CaseVerdict] | None = None,
) -> Verdict:
    """Passed, Failed or Error, with the failing assertions and criteria named."""
    if candidate.cases == 0:
        return Verdict("Error", "no cases were run", [])
    if _error_budget_exceeded(candidate, criteria):
        return Verdict(
            "Error",
            f"{candidate.errors} of {candidate.cases} candidate cases errored "
            f"(maxErrorRate {criteria.max_error_rate:g}); first: {_first_error(candidate_verdicts)}",
            [],
        )
    if baseline is not None and _error_budget_exceeded(baseline, criteria):
        return Verdict(
            "Error",
            f"{baseline.errors} of {baseline.cases} baseline cases errored "
            f"(maxErrorRate {criteria.max_error_rate:g}); first: {_first_error(baseline_verdicts or [])}",
            [],
        )
    failing: list[str] = []
    reasons: list[str] = []
    if candidate.pass_rate + EPSILON < criteria.pass_rate:
        failing.extend(_blamed(candidate_verdicts, assertions))
        reasons.append(f"pass rate {candidate.pass_rate:.3f} < {criteria.pass_rate:g}")
    if criteria.latency_p95_ms is not None and (
        candidate.latency_p95_ms is None or candidate.latency_p95_ms > criteria.latency_p95_ms
    ):
        failing.append("latencyP95Ms")
        measured = "none" if candidate.latency_p95_ms is None else f"{candidate.latency_p95_ms:.0f}ms"
        reasons.append(f"latency p95 {measured} > {criteria.latency_p95_ms:g}ms")
    if baseline is not None and criteria.max_regression_vs_baseline is not None:
        regression = baseline.pass_rate - candidate.pass_rate
        if regression > criteria.max_regression_vs_baseline + EPSILON:
            failing.append("maxRegressionVsBaseline")
            reasons.append(
                f"pass rate {candidate.pass_rate:.3f} is {regression:.3f} below "
                f"baseline {baseline.pass_rate:.3f} (max {criteria.max_regression_vs_baseline:g})"
            )
    if failing or reasons:
        return Verdict(
            "Failed", "; ".join(reasons) + (f"; failing: {', '.join(failing)}" if failing else ""), failing
        )
    summary = f"pass rate {candidate.pass_rate:.3f} ({candidate.passed}/{candidate.cases})"
    if baseline is not None:
        summary += f", baseline {baseline.pass_rate:.3f}"
    return Verdict("Passed", summary, [])
