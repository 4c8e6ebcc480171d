"""The canary state machine, driven pass by pass against a simulated world.

Every pass round-trips the status through JSON, as the API server would: the machine must
resume from status alone.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops_operator.api.rollout import RolloutSpec, RolloutStatus
from llmops_operator.metrics_source.provider import QueryResult
from llmops_operator.rollout.analysis.assess import measure
from llmops_operator.rollout.machine import (
    Abort,
    Action,
    EmitEvent,
    EvalResult,
    Observed,
    Promote,
    RequeueAfter,
    RunAnalysis,
    ScaleRevision,
    StartEvalRun,
    step,
)

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
OLD, NEW = "old111", "new222"


def make_spec(
    steps: list[dict[str, Any]], metrics: list[dict[str, Any]] | None = None, **analysis: Any
) -> RolloutSpec:
    canary: dict[str, Any] = {"steps": steps}
    if metrics is not None:
        # World.measure judges point estimates, so the timing tested here is mode threshold's
        # (mode confidence's first look after a weight change: test_confidence_timing below).
        canary["analysis"] = {"interval": "30s", "mode": "threshold", "metrics": metrics, **analysis}
    return RolloutSpec.model_validate({"strategy": "Canary", "canary": canary})


TTFT = {"name": "ttft", "builtin": "timeToFirstTokenP95", "maxRatioToStable": 1.2}
ERRORS = {"name": "errors", "builtin": "errorRate", "max": 0.01}


@dataclass
class World:
    """Revisions, ready pods and metric values; ScaleRevision takes effect at once."""

    canary: str | None = NEW
    stable: str | None = OLD
    total: int = 4
    ready: dict[str, int] = field(default_factory=lambda: {OLD: 4})
    values: dict[tuple[str, str], QueryResult] = field(default_factory=dict)
    eval_result: EvalResult | None = None
    """What the gate's EvalRun reports, once a StartEvalRun created it."""
    eval_runs: list[StartEvalRun] = field(default_factory=list)
    traffic_blocked: str | None = None
    aborts: list[Abort] = field(default_factory=list)
    weights: list[int] = field(default_factory=list)
    measured: list[tuple[datetime, tuple[str, ...]]] = field(default_factory=list)

    def set(self, metric: str, canary: QueryResult, stable: QueryResult | None = None) -> None:
        self.values[(metric, NEW)] = canary
        self.values[(metric, OLD)] = stable or QueryResult.of(0.1)

    def observed(self, measurements: tuple = ()) -> Observed:
        return Observed(
            canary_revision=self.canary,
            stable_revision=self.stable,
            total_replicas=self.total,
            ready_replicas=dict(self.ready),
            measurements=measurements,
            eval_result=self.eval_result if self.eval_runs else None,
            traffic_blocked=self.traffic_blocked,
        )

    def measure(self, spec: RolloutSpec, names: tuple[str, ...], now: datetime) -> tuple:
        self.measured.append((now, names))
        assert spec.canary and spec.canary.analysis
        out = []
        for metric in spec.canary.analysis.metrics:
            if metric.name in names:
                canary = self.values.get((metric.name, NEW), QueryResult.of(0.1))
                stable = self.values.get((metric.name, OLD), QueryResult.of(0.1))
                out.append(measure(metric, canary, stable, spec.canary.analysis.on_no_data, now))
        return tuple(out)

    def apply(self, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, ScaleRevision):
                self.ready[a.revision] = a.replicas
            elif isinstance(a, Abort):
                self.aborts.append(a)
            elif isinstance(a, Promote):
                self.stable, self.canary = a.revision, None
            elif isinstance(a, StartEvalRun) and a not in self.eval_runs:
                self.eval_runs.append(a)


def run_pass(spec: RolloutSpec, status_json: str, world: World, now: datetime) -> tuple[list[Action], str]:
    """One reconcile pass as the lead's handler does it, status stored as JSON in between."""
    status = RolloutStatus.model_validate(json.loads(status_json))
    actions, new = step(spec, status, world.observed(), now)
    run = [a for a in actions if isinstance(a, RunAnalysis)]
    if run:
        measurements = world.measure(spec, run[0].metrics, now)
        actions, new = step(spec, status, world.observed(measurements), now)
        assert not any(isinstance(a, RunAnalysis) for a in actions), "measured, yet asked again"
    world.apply(actions)
    world.weights.append(new.weight)
    return actions, json.dumps(new.to_wire())


def drive(
    spec: RolloutSpec,
    world: World,
    passes: int,
    tick: timedelta = timedelta(seconds=10),
    status: str = "{}",
    start: datetime = T0,
) -> tuple[list[Action], str, datetime]:
    """Run passes every `tick` until promoted or aborted; all actions, final status and time."""
    now, seen = start, []
    for _ in range(passes):
        actions, status = run_pass(spec, status, world, now)
        seen += actions
        if any(isinstance(a, (Promote, Abort)) for a in actions):
            break
        now += tick
    return seen, status, now


def events(actions: list[Action]) -> list[str]:
    return [a.reason for a in actions if isinstance(a, EmitEvent)]


def rollout(status_json: str) -> RolloutStatus:
    return RolloutStatus.model_validate(json.loads(status_json))


# --------------------------------------------------------------------------------------------


def test_healthy_canary_walks_every_step_and_is_promoted() -> None:
    spec = make_spec(
        [
            {"setWeight": 25},
            {"pause": {"duration": "1m"}},
            {"analysis": {}},
            {"setWeight": 50},
            {"evalGate": {"name": "quality"}},
            {"setWeight": 75},
        ],
        [TTFT, ERRORS],
    )
    world = World()
    world.set("ttft", QueryResult.of(0.1), QueryResult.of(0.1))
    world.set("errors", QueryResult.of(0.001))
    world.eval_result = EvalResult("Passed", name="run-1")
    actions, status, _ = drive(spec, world, passes=60)

    assert world.canary is None and world.stable == NEW, "the canary became the stable revision"
    assert not world.aborts
    done = [a.message for a in actions if isinstance(a, EmitEvent) and a.reason == "StepCompleted"]
    assert [m.split(" (")[0] for m in done] == [f"step {i} completed" for i in range(6)]
    assert "Promoted" in events(actions)
    assert any(isinstance(a, StartEvalRun) and a.gate == "quality" and a.revision == NEW for a in actions)
    # traffic only ever grew, ending at 100
    grow = [w for w in world.weights]
    assert grow == sorted(grow) and grow[-1] == 100
    final = rollout(status)
    assert final.weight == 100 and final.step_index == 6 and not final.abort


def test_canary_is_scaled_before_traffic_moves_and_stable_keeps_full_size() -> None:
    spec = make_spec([{"setWeight": 50}, {"pause": {}}])
    world = World(ready={OLD: 4})
    status = "{}"
    actions, status = run_pass(spec, status, World(ready={OLD: 4, NEW: 0}), T0)
    # canary not ready yet: asked to scale to 2, weight still 0, stable stays at 4
    assert ScaleRevision(NEW, 2) in actions and ScaleRevision(OLD, 4) in actions
    assert rollout(status).weight == 0 and rollout(status).step_index == 0
    world.ready[NEW] = 2
    actions, status = run_pass(spec, status, world, T0 + timedelta(seconds=5))
    assert rollout(status).weight == 50 and rollout(status).step_index == 1


def test_blocked_traffic_holds_the_weight_and_the_step_until_cleared() -> None:
    spec = make_spec([{"setWeight": 50}, {"pause": {}}])
    world = World(ready={OLD: 4, NEW: 2}, traffic_blocked="endpoint picker chat-x-epp is not ready")
    actions, status = run_pass(spec, "{}", world, T0)
    assert rollout(status).step_index == 0 and rollout(status).weight == 0
    assert "chat-x-epp" in rollout(status).message
    assert ScaleRevision(OLD, 4) in actions  # stable keeps its size meanwhile
    world.traffic_blocked = None
    actions, status = run_pass(spec, status, world, T0 + timedelta(seconds=10))
    assert rollout(status).weight == 50 and rollout(status).step_index == 1


def test_dynamic_stable_scale_shrinks_stable_only_after_the_shift() -> None:
    spec = RolloutSpec.model_validate(
        {
            "strategy": "Canary",
            "canary": {"steps": [{"setWeight": 50}, {"pause": {}}], "dynamicStableScale": True},
        }
    )
    world = World(ready={OLD: 4, NEW: 0})
    actions, status = run_pass(spec, "{}", world, T0)
    assert ScaleRevision(OLD, 4) in actions  # weight still 0
    actions, status = run_pass(spec, status, world, T0 + timedelta(seconds=5))
    assert rollout(status).weight == 50 and ScaleRevision(OLD, 2) in actions


def test_ttft_regression_aborts_within_two_intervals_naming_metric_value_and_threshold() -> None:
    spec = make_spec([{"setWeight": 20}, {"pause": {"duration": "1h"}}], [TTFT], failureLimit=1)
    world = World()
    world.set("ttft", QueryResult.of(0.1), QueryResult.of(0.1))
    _, status, now = drive(spec, world, passes=12)  # healthy for 2 minutes
    assert not world.aborts
    world.set("ttft", QueryResult.of(0.15), QueryResult.of(0.1))
    start = now
    actions, status, end = drive(spec, world, passes=30, status=status, start=now)
    assert len(world.aborts) == 1
    reason = world.aborts[0].reason
    assert world.aborts[0].metric == "ttft"
    assert "ttft" in reason and "0.15" in reason and "maxRatioToStable 1.2" in reason
    assert end - start <= timedelta(seconds=60), "two intervals of 30s"
    # traffic back on stable, canary at zero
    assert (
        rollout(status).weight == 0 and ScaleRevision(NEW, 0) in actions and ScaleRevision(OLD, 4) in actions
    )
    final = rollout(status)
    assert final.abort and final.aborted_at is not None and "ttft" in final.message
    # stays aborted on later passes, without a second Abort action
    later, status = run_pass(spec, status, world, end + timedelta(minutes=5))
    assert not any(isinstance(a, Abort) for a in later) and rollout(status).weight == 0


def test_no_data_pauses_inconclusive_then_resumes_when_traffic_starts() -> None:
    spec = make_spec([{"setWeight": 20}, {"pause": {"duration": "1m"}}, {"setWeight": 40}], [ERRORS])
    world = World()
    world.set("errors", QueryResult.no_data())
    _, status, now = drive(spec, world, passes=20, tick=timedelta(seconds=30))
    paused = rollout(status)
    assert [c.reason for c in paused.pause_conditions] == ["Inconclusive"]
    assert paused.step_index == 1 and paused.analysis.counts["errors"].inconclusive > 3
    assert "inconclusiveLimit 3" in paused.pause_conditions[0].message
    assert not world.aborts and world.canary == NEW

    world.set("errors", QueryResult.of(0.0))
    actions, status, _ = drive(spec, world, passes=20, tick=timedelta(seconds=30), status=status, start=now)
    assert "Resumed" in events(actions) and world.stable == NEW and not world.aborts


def test_prometheus_errors_abort_only_after_consecutive_error_limit_and_never_promote() -> None:
    spec = make_spec(
        [{"setWeight": 20}, {"pause": {"duration": "30s"}}],
        [ERRORS],
        consecutiveErrorLimit=4,
        errorPolicy="Abort",
    )
    world = World()
    world.set("errors", QueryResult.of(0.0))
    _, status, now = drive(spec, world, passes=1)  # first round healthy, step 0 done
    world.set("errors", QueryResult.error("Prometheus at http://127.0.0.1:9 is unreachable"))
    for _ in range(40):
        now += timedelta(seconds=30)
        actions, status = run_pass(spec, status, world, now)
        assert not any(isinstance(a, Promote) for a in actions), "an error never promotes"
        if world.aborts:
            break
        assert rollout(status).step_index == 1, "the rollout holds while measurements fail"
        assert "unreachable" in rollout(status).message
    assert world.aborts and "consecutiveErrorLimit 4" in world.aborts[0].reason
    assert rollout(status).analysis.counts["errors"].consecutive_error == 5


def test_restart_resumes_from_status_and_takes_an_overdue_measurement_at_once() -> None:
    spec = make_spec([{"setWeight": 20}, {"pause": {"duration": "10m"}}], [ERRORS])
    world = World()
    world.set("errors", QueryResult.of(0.0))
    _, status, now = drive(spec, world, passes=3)
    before = rollout(status)
    assert before.step_index == 1 and before.analysis.last_measured_at is not None
    # operator down for 5 minutes: the first pass after restart measures at once
    later = now + timedelta(minutes=5)
    actions, _ = step(spec, before, world.observed(), later)
    assert any(isinstance(a, RunAnalysis) and a.metrics == ("errors",) for a in actions)
    # a fresh process reading only the JSON status continues the same pause and promotes at its end
    fresh = World(ready={OLD: 4, NEW: 1})
    fresh.set("errors", QueryResult.of(0.0))
    actions, status = run_pass(spec, status, fresh, later)
    assert rollout(status).step_index == 1 and not any(isinstance(a, Promote) for a in actions)
    actions, status = run_pass(spec, status, fresh, now + timedelta(minutes=11))
    assert any(isinstance(a, ScaleRevision) and a.revision == NEW and a.replicas == 4 for a in actions)
    actions, status = run_pass(spec, status, fresh, now + timedelta(minutes=11, seconds=40))
    assert Promote(NEW) in actions


def test_measurement_not_due_is_not_requested_and_requeue_points_at_next_due() -> None:
    spec = make_spec([{"setWeight": 20}, {"pause": {}}], [ERRORS])
    world = World()
    world.set("errors", QueryResult.of(0.0))
    _, status, _ = drive(spec, world, passes=3)
    last = rollout(status).analysis.last_measured_at
    assert last is not None
    actions, _ = step(spec, rollout(status), world.observed(), last + timedelta(seconds=10))
    assert not any(isinstance(a, RunAnalysis) for a in actions)
    assert RequeueAfter(20.0) in actions
    actions, _ = step(spec, rollout(status), world.observed(), last + timedelta(seconds=30))
    assert RunAnalysis(("errors",)) in actions


def test_pause_until_promoted_then_clearing_the_pause_promotes_one_step() -> None:
    spec = make_spec([{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}])
    world = World()
    _, status, _ = drive(spec, world, passes=5)
    st = rollout(status)
    assert (
        st.step_index == 1
        and [c.reason for c in st.pause_conditions] == ["PausedStep"]
        and st.controller_pause
    )
    user = st.model_copy(update={"pause_conditions": []})  # kubectl patch --subresource=status
    actions, status = run_pass(spec, json.dumps(user.to_wire()), world, T0 + timedelta(minutes=1))
    assert rollout(status).step_index == 2 and "Promoted" in events(actions)  # waits for canary pods
    actions, status = run_pass(spec, status, world, T0 + timedelta(minutes=1, seconds=10))
    st = rollout(status)
    assert st.step_index == 3 and st.weight == 50
    assert [c.reason for c in st.pause_conditions] == ["PausedStep"]


def test_promote_full_skips_remaining_steps_and_analysis() -> None:
    spec = make_spec([{"setWeight": 20}, {"pause": {"duration": "1h"}}, {"setWeight": 50}], [ERRORS])
    world = World()
    world.set("errors", QueryResult.no_data())
    _, status, now = drive(spec, world, passes=3)
    user = rollout(status).model_copy(update={"promote_full": True})
    actions, status = run_pass(spec, json.dumps(user.to_wire()), world, now)
    assert "PromotedFull" in events(actions)
    assert ScaleRevision(NEW, 4) in actions
    actions, status = run_pass(spec, status, world, now + timedelta(seconds=5))
    assert Promote(NEW) in actions and not any(isinstance(a, RunAnalysis) for a in actions)


def test_user_abort_then_retry_restarts_from_step_zero() -> None:
    spec = make_spec([{"setWeight": 20}, {"pause": {}}])
    world = World()
    _, status, now = drive(spec, world, passes=3)
    aborted = rollout(status).model_copy(update={"abort": True})
    actions, status = run_pass(spec, json.dumps(aborted.to_wire()), world, now)
    assert world.aborts[0].reason == "aborted by user"
    assert rollout(status).weight == 0 and ScaleRevision(NEW, 0) in actions
    retry = rollout(status).model_copy(update={"abort": False})
    actions, status = run_pass(spec, json.dumps(retry.to_wire()), world, now + timedelta(minutes=1))
    st = rollout(status)
    assert "Retry" in events(actions) and st.aborted_at is None and not st.abort
    assert st.step_index == 0 and ScaleRevision(NEW, 1) in actions


def test_a_change_of_steps_restarts_them_and_a_new_revision_starts_over() -> None:
    spec = make_spec([{"setWeight": 20}, {"pause": {}}])
    world = World()
    _, status, now = drive(spec, world, passes=3)
    assert rollout(status).step_index == 1
    edited = make_spec([{"setWeight": 10}, {"pause": {}}])
    actions, status = run_pass(edited, status, world, now)
    assert "StepsChanged" in events(actions) and rollout(status).weight == 10
    world.canary = "third333"
    world.ready["third333"] = 0
    actions, status = run_pass(edited, status, world, now)
    st = rollout(status)
    assert st.revision == "third333" and st.step_index == 0 and st.weight == 0
    assert "RolloutStarted" in events(actions)


def test_a_gate_that_errored_runs_again_when_the_user_clears_its_run() -> None:
    spec = make_spec([{"evalGate": {"name": "quality"}}, {"setWeight": 20}, {"pause": {}}])
    world = World(ready={OLD: 4, NEW: 1}, eval_result=EvalResult("Error", "r1", "judge unreachable"))
    status = "{}"
    for second in (0, 10, 20):
        _, status = run_pass(spec, status, world, T0 + timedelta(seconds=second))
    assert [c.reason for c in rollout(status).pause_conditions] == ["EvalGateError"]
    first = rollout(status).eval_run
    assert first is not None

    retried = json.loads(status)
    del retried["evalRun"]  # what `kubectl llmops retry` writes for an errored gate
    world.eval_result = None
    actions, status = run_pass(spec, json.dumps(retried), world, T0 + timedelta(seconds=30))
    st = rollout(status)
    assert not st.pause_conditions and st.step_index == 0 and "Resumed" in events(actions)
    assert st.eval_run is not None and st.eval_run.started_at != first.started_at  # a new run's name
    actions, status = run_pass(spec, status, world, T0 + timedelta(seconds=31))
    assert StartEvalRun("quality", NEW, OLD, 0) in actions
    world.eval_result = EvalResult("Passed", "r2", "pass rate 0.95")
    _, status = run_pass(spec, status, world, T0 + timedelta(seconds=40))
    assert rollout(status).step_index >= 1 and not world.aborts


@pytest.mark.parametrize(
    ("result", "expect"),
    [
        (EvalResult("Passed", "r", "pass rate 0.95"), "next"),
        (EvalResult("Failed", "r", "contains 'refund': 4/10 failed"), "abort"),
        (EvalResult("Error", "r", "judge unreachable"), "paused"),
        (EvalResult("Running", "r"), "wait"),
        (None, "blocked"),
    ],
)
def test_eval_gate(result: EvalResult | None, expect: str) -> None:
    spec = make_spec([{"evalGate": {"name": "quality"}}, {"setWeight": 20}, {"pause": {}}])
    world = World(ready={OLD: 4, NEW: 0})
    actions, status = run_pass(spec, "{}", world, T0)
    # the gate needs one canary pod, even at weight 0
    assert ScaleRevision(NEW, 1) in actions and rollout(status).weight == 0
    world.eval_result = result
    actions, status = run_pass(spec, status, world, T0 + timedelta(seconds=10))
    # the run is recorded in status first and created by the next pass (its name comes from
    # persisted status), so the pass that records it asks for no EvalRun yet
    assert rollout(status).eval_run is not None and not any(isinstance(a, StartEvalRun) for a in actions)
    created, status = run_pass(spec, status, world, T0 + timedelta(seconds=11))
    assert StartEvalRun("quality", NEW, OLD, 0) in created
    actions2, status = run_pass(spec, status, world, T0 + timedelta(minutes=30))
    actions += created
    st = rollout(status)
    if expect == "next":
        assert st.step_index >= 2 and "EvalGatePassed" in events(actions + actions2)
    elif expect == "abort":
        assert (
            world.aborts and "4/10 failed" in world.aborts[0].reason and "quality" in world.aborts[0].reason
        )
    elif expect == "paused":
        assert [c.reason for c in st.pause_conditions] == [
            "EvalGateError"
        ] and "judge unreachable" in st.message
        assert st.step_index == 0 and not world.aborts
    else:
        assert st.step_index == 0 and not world.aborts and not st.pause_conditions
        assert StartEvalRun("quality", NEW, OLD, 0) in actions2
        if expect == "blocked":
            assert "no EvalRun result" in st.message


def test_inline_analysis_step_failure_aborts_at_once() -> None:
    spec = make_spec(
        [{"setWeight": 20}, {"analysis": {"metrics": ["errors"]}}, {"pause": {}}],
        [ERRORS, TTFT],
        failureLimit=3,
    )
    world = World()
    world.set("ttft", QueryResult.of(0.1))
    world.set("errors", QueryResult.of(0.5))
    drive(spec, world, passes=3)
    assert len(world.aborts) == 1 and world.aborts[0].metric == "errors"
    reason = world.aborts[0].reason
    assert reason.startswith("analysis step 1") and "0.5" in reason and "max 0.01" in reason


def test_inline_analysis_step_passes_when_all_its_metrics_succeed() -> None:
    spec = make_spec([{"setWeight": 20}, {"analysis": {}}, {"pause": {}}], [ERRORS, TTFT])
    world = World()
    world.set("ttft", QueryResult.of(0.1))
    world.set("errors", QueryResult.of(0.0))
    actions, status, _ = drive(spec, world, passes=4)
    assert "AnalysisSuccessful" in events(actions) and rollout(status).step_index == 2


def test_first_deployment_without_stable_is_promoted_directly() -> None:
    spec = make_spec([{"setWeight": 20}, {"pause": {}}], [ERRORS])
    world = World(stable=None, ready={NEW: 4})
    actions, _ = run_pass(spec, "{}", world, T0)
    assert Promote(NEW) in actions


def test_nothing_to_roll_out_is_a_no_op() -> None:
    spec = make_spec([{"setWeight": 20}])
    status = RolloutStatus()
    assert step(spec, status, Observed(canary_revision=None, stable_revision=OLD, total_replicas=2), T0) == (
        [],
        status,
    )


step_strategy = st.one_of(
    st.integers(0, 100).map(lambda w: ("w", w)),
    st.sampled_from(["10s", "1m", "5m"]).map(lambda d: ("p", d)),
    st.just(("a", None)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(step_strategy, min_size=0, max_size=8), st.integers(1, 6), st.booleans())
def test_healthy_canary_with_any_valid_steps_is_promoted_and_traffic_never_drops(
    raw: list[tuple[str, Any]], total: int, dynamic: bool
) -> None:
    weights = sorted(w for kind, w in raw if kind == "w")
    steps: list[dict[str, Any]] = []
    for kind, value in raw:
        if kind == "w":
            steps.append({"setWeight": weights.pop(0)})
        elif kind == "p":
            steps.append({"pause": {"duration": value}})
        else:
            steps.append({"analysis": {}})
    spec = RolloutSpec.model_validate(
        {
            "strategy": "Canary",
            "canary": {
                "steps": steps,
                "dynamicStableScale": dynamic,
                "analysis": {"interval": "30s", "metrics": [ERRORS]},
            },
        }
    )
    world = World(total=total, ready={OLD: total})
    world.set("errors", QueryResult.of(0.0))
    actions, _, _ = drive(spec, world, passes=400, tick=timedelta(seconds=15))
    assert world.stable == NEW and not world.aborts
    assert world.weights == sorted(world.weights)
    for a in actions:
        if isinstance(a, ScaleRevision) and a.revision == OLD:
            assert a.replicas >= 1 or world.weights[-1] == 100


def test_prometheus_errors_past_the_limit_pause_by_default_and_resume_when_it_answers() -> None:
    """errorPolicy Pause (the default): a monitoring outage holds the canary, never rolls it
    back and never promotes it; it goes on by itself once measurements work again."""
    spec = make_spec([{"setWeight": 20}, {"pause": {"duration": "30s"}}], [ERRORS], consecutiveErrorLimit=2)
    world = World()
    world.set("errors", QueryResult.of(0.0))
    _, status, now = drive(spec, world, passes=1)
    world.set("errors", QueryResult.error("Prometheus at http://127.0.0.1:9 is unreachable"))
    seen: list[Action] = []
    for _ in range(12):
        now += timedelta(seconds=30)
        actions, status = run_pass(spec, status, world, now)
        seen += actions
        assert not any(isinstance(a, (Promote, Abort)) for a in actions), "an outage decides nothing"
    held = rollout(status)
    assert [c.reason for c in held.pause_conditions] == ["AnalysisError"]
    assert "unreachable" in held.pause_conditions[0].message and "errorPolicy Pause" in held.message
    assert held.step_index == 1 and not world.aborts
    assert events(seen).count("Paused") == 1, "one Event for the pause, not one per round"
    world.set("errors", QueryResult.of(0.0))
    actions, status, _ = drive(spec, world, passes=10, tick=timedelta(seconds=30), status=status, start=now)
    assert "Resumed" in events(actions) and world.stable == NEW and not world.aborts


def test_no_step_completes_while_a_round_of_measurements_is_still_running() -> None:
    spec = make_spec([{"setWeight": 20}, {"pause": {"duration": "5m"}}], [ERRORS])
    world = World()
    world.set("errors", QueryResult.of(0.0))
    _, status, now = drive(spec, world, passes=2)
    assert rollout(status).step_index == 1
    now += timedelta(minutes=10)  # the pause is over and a round is due
    pending = Observed(NEW, OLD, 4, dict(world.ready), measurements_pending=True)
    for _ in range(3):
        actions, new = step(spec, rollout(status), pending, now)
        assert new.step_index == 1 and not any(isinstance(a, Promote) for a in actions)
        assert "waiting for the analysis measurements" in new.message
    drive(spec, world, passes=5, status=status, start=now)
    assert world.stable == NEW, "with the measurements in, the rollout goes on"


def test_confidence_timing_first_look_one_interval_after_each_weight_change() -> None:
    """Mode confidence: the first look at a weight judges only data from after the change."""
    spec = make_spec(
        [{"setWeight": 20}, {"analysis": {}}, {"setWeight": 50}, {"analysis": {}}],
        [ERRORS],
        mode="confidence",
    )
    world = World()
    world.set("errors", QueryResult.of(0.0))
    _, status, _ = drive(spec, world, passes=40, tick=timedelta(seconds=5))
    final = rollout(status)
    assert world.canary is None and world.stable == NEW, final.message
    changes = [T0]  # setWeight 20 completes at T0 or later
    first_looks = [t for t, _ in world.measured]
    assert first_looks[0] >= changes[0] + timedelta(seconds=30)
    assert final.analysis.counts["errors"].looks == len(world.measured)
    # after setWeight 50 the analysis step waited one interval again
    gaps = [b - a for a, b in itertools.pairwise(first_looks)]
    assert all(g >= timedelta(seconds=30) for g in gaps)


def test_confidence_requeue_points_at_one_interval_after_the_weight_change() -> None:
    spec = make_spec([{"setWeight": 20}, {"pause": {}}], [ERRORS], mode="confidence")
    world = World()
    _, status = run_pass(spec, "{}", world, T0)  # scales the canary up
    set_at = T0 + timedelta(seconds=5)
    actions, status = run_pass(spec, status, world, set_at)
    st = rollout(status)
    assert st.weight == 20 and st.weight_changed_at == set_at
    assert not any(isinstance(a, RunAnalysis) for a in actions)
    assert RequeueAfter(30.0) in actions
    actions, _ = step(spec, st, world.observed(), set_at + timedelta(seconds=29))
    assert not any(isinstance(a, RunAnalysis) for a in actions)
    actions, _ = step(spec, st, world.observed(), set_at + timedelta(seconds=30))
    assert RunAnalysis(("errors",)) in actions
