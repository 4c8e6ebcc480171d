"""RolloutSpec / RolloutStatus: defaults, validation mirrored from the CEL rules, wire format."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from llmops_operator.api.analysis import AnalysisSpec, MetricSpec
from llmops_operator.api.durations import parse_duration
from llmops_operator.api.rollout import CanarySpec, CanaryStep, RolloutSpec, RolloutStatus, steps_hash

METRIC = {"name": "errors", "builtin": "errorRate", "max": 0.01}


def canary(steps: list[dict[str, Any]], metrics: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"strategy": "Canary", "canary": {"steps": steps}}
    if metrics is not None:
        body["canary"]["analysis"] = {"metrics": metrics}
    return body


def test_defaults_match_the_api_contract() -> None:
    spec = RolloutSpec.model_validate({})
    assert spec.strategy == "RollingUpdate" and spec.canary is None and spec.revision_history_limit == 5
    c = RolloutSpec.model_validate(canary([{"setWeight": 10}], [METRIC])).canary
    assert c is not None and c.analysis is not None
    a = c.analysis
    assert (a.interval, a.failure_limit, a.inconclusive_limit, a.consecutive_error_limit, a.on_no_data) == (
        "30s",
        None,
        3,
        4,
        "Inconclusive",
    )
    # failureLimit's default follows the mode: a Failed bound is evidence already, a point is not
    assert (a.mode, a.failures_allowed) == ("confidence", 0)
    assert a.model_copy(update={"mode": "threshold"}).failures_allowed == 1
    assert a.model_copy(update={"failure_limit": 2}).failures_allowed == 2
    assert c.dynamic_stable_scale is False and c.traffic_routing is None


def test_api_md_example_parses_and_round_trips() -> None:
    body = {
        "strategy": "Canary",
        "canary": {
            "steps": [
                {"evalGate": {"name": "support-quality"}},
                {"setWeight": 10},
                {"pause": {"duration": "5m"}},
                {"analysis": {}},
                {"setWeight": 50},
                {"pause": {"duration": "10m"}},
            ],
            "analysis": {
                "interval": "30s",
                "metrics": [
                    {"name": "error-rate", "builtin": "errorRate", "max": 0.01},
                    {"name": "ttft-p95", "builtin": "timeToFirstTokenP95", "maxRatioToStable": 1.2},
                    {"name": "custom", "query": 'sum(rate(m{revision="{{revision}}"}[1m]))', "max": 5},
                ],
            },
            "trafficRouting": {"gatewayAPI": {"httpRoute": "support"}},
        },
        "revisionHistoryLimit": 5,
    }
    spec = RolloutSpec.model_validate(body)
    assert [s.kind for s in spec.canary.steps] == [
        "evalGate",
        "setWeight",
        "pause",
        "analysis",
        "setWeight",
        "pause",
    ]
    assert spec.canary.traffic_routing.gateway_api.http_route == "support"
    assert RolloutSpec.model_validate(spec.to_wire()) == spec


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (canary([{}]), "exactly one of setWeight"),
        (canary([{"setWeight": 10, "pause": {}}]), "exactly one of setWeight"),
        (canary([{"setWeight": 101}]), "less than or equal to 100"),
        (canary([{"setWeight": -1}]), "greater than or equal to 0"),
        (canary([{"setWeight": 50}, {"setWeight": 20}]), "must not decrease"),
        (canary([{"analysis": {}}]), "analysis step but canary.analysis.metrics is empty"),
        (canary([{"analysis": {}}], []), "analysis step but canary.analysis.metrics is empty"),
        (canary([{"analysis": {"metrics": ["nope"]}}], [METRIC]), "unknown analysis metrics: nope"),
        (canary([{"pause": {"duration": "5 minutes"}}]), "String should match pattern"),
        (canary([{"setWeight": 1}], [{"name": "m", "max": 1}]), "exactly one of builtin, query or ratio"),
        (
            canary([{"setWeight": 1}], [{"name": "m", "builtin": "errorRate", "query": "up", "max": 1}]),
            "exactly one",
        ),
        (canary([{"setWeight": 1}], [{"name": "m", "builtin": "errorRate"}]), "at least one threshold"),
        (canary([{"setWeight": 1}], [METRIC, METRIC]), "unique, repeated: errors"),
        (
            canary([{"setWeight": 1}], [{"name": "m", "builtin": "tokensPerWatt", "max": 1}]),
            "Input should be",
        ),
        ({"strategy": "Canary"}, "strategy Canary needs rollout.canary"),
        (canary([{"setWeight": 1}] * 33), "at most 32"),
        ({"strategy": "Canary", "canary": {"steps": [], "surprise": 1}}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_specs_are_rejected_with_a_clear_message(body: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        RolloutSpec.model_validate(body)
    assert message in str(err.value)


def test_cel_rules_are_in_the_schema_for_the_api_server() -> None:
    rules = {
        name: [r["rule"] for r in model.model_json_schema()["x-kubernetes-validations"]]
        for name, model in {"step": CanaryStep, "canary": CanarySpec, "metric": MetricSpec}.items()
    }
    assert any("has(self.setWeight)" in r and "size() == 1" in r for r in rules["step"])
    assert any("isSorted()" in r for r in rules["canary"])
    assert any("size(self.analysis.metrics) > 0" in r for r in rules["canary"])
    assert any("[has(self.builtin), has(self.query), has(self.ratio)]" in r for r in rules["metric"])
    steps = CanarySpec.model_json_schema(by_alias=True)["properties"]["steps"]
    assert steps["maxItems"] == 32  # keeps the CEL cost estimate bounded


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("500ms", 0.5), ("2h", 7200)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5", "m5", "1d", "5 m", "-1s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_steps_hash_changes_with_steps_only() -> None:
    a = RolloutSpec.model_validate(canary([{"setWeight": 10}, {"pause": {}}], [METRIC]))
    b = RolloutSpec.model_validate(canary([{"setWeight": 10}, {"pause": {}}]))
    c = RolloutSpec.model_validate(canary([{"setWeight": 20}, {"pause": {}}]))
    assert steps_hash(a) == steps_hash(b) != steps_hash(c)


def test_status_round_trips_through_json_and_tolerates_unknown_fields() -> None:
    wire = {
        "revision": "abc",
        "stepIndex": 2,
        "weight": 10,
        "stepStartedAt": "2025-01-01T12:00:00Z",
        "pauseConditions": [{"reason": "PausedStep", "startTime": "2025-01-01T12:00:00Z"}],
        "controllerPause": True,
        "analysis": {
            "lastMeasuredAt": "2025-01-01T12:00:00Z",
            "measurements": [
                {"metric": "e", "phase": "Failed", "value": 0.5, "measuredAt": "2025-01-01T12:00:00Z"}
            ],
            "counts": {"e": {"failed": 1}},
        },
        "evalRun": {"gate": "g", "stepIndex": 0, "phase": "Running"},
        "fromANewerOperator": 1,
    }
    status = RolloutStatus.model_validate(wire)
    again = RolloutStatus.model_validate(json.loads(json.dumps(status.to_wire())))
    assert again == status and again.analysis.counts["e"].failed == 1


def test_every_field_is_documented() -> None:
    from llmops_operator.api import rollout as module

    for model in (RolloutSpec, RolloutStatus, CanarySpec, CanaryStep, MetricSpec, AnalysisSpec,
                  module.AnalysisStatus, module.Measurement, module.MetricCounts, module.PauseCondition,
                  module.EvalRunStatus, module.TrafficRouting, module.GatewayAPIRouting, module.PauseStep,
                  module.AnalysisStep, module.EvalGateStep):  # fmt: skip
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no docstring"


weights = st.lists(st.integers(-10, 120), min_size=1, max_size=10)


@given(weights)
def test_weights_are_accepted_exactly_when_in_range_and_non_decreasing(ws: list[int]) -> None:
    ok = all(0 <= w <= 100 for w in ws) and ws == sorted(ws)
    body = canary([{"setWeight": w} for w in ws])
    if ok:
        assert [s.set_weight for s in RolloutSpec.model_validate(body).canary.steps] == ws
    else:
        with pytest.raises(ValidationError):
            RolloutSpec.model_validate(body)
