"""Builtin cost and feedback metrics: their PromQL, their traffic and vote gates, their verdicts."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.api.analysis import AnalysisSpec, MetricSpec
from llmops_operator.metrics_source.builtins import (
    CostRates,
    Selector,
    builtin_query,
    request_count_query,
    unsupported_builtins,
)
from llmops_operator.metrics_source.provider import QueryResult
from llmops_operator.rollout.analysis.run import take_measurements

NOW = datetime(2026, 12, 1, tzinfo=UTC)
SEL = Selector("team-a", "support", "new")
COST = CostRates({"new": 4.0, "old": 6.0}, priced=True)


class FakeProvider:
    """Answers by kind (vote/request count or metric) and revision."""

    def __init__(self, answers: dict[tuple[str, str], QueryResult]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def query(self, promql: str) -> QueryResult:
        self.asked.append(promql)
        kind = "count" if "increase(" in promql else "metric"
        revision = re.findall(r'llmops_revision="([^"]*)"', promql)[0]
        return self.answers.get((kind, revision), QueryResult.no_data())


def analysis(metric: dict, **extra: object) -> AnalysisSpec:
    return AnalysisSpec.model_validate({"metrics": [{"name": "cost", **metric}], **extra})


def test_cost_per_million_divides_the_revisions_spend_by_its_output_tokens() -> None:
    q = builtin_query("vllm", "costPerMillionOutputTokens", SEL, "1m", COST)
    assert q.startswith("4 / (sum(rate(vllm:generation_tokens_total{")
    assert 'llmops_revision="new"}[1m])) * 3600) * 1000000' in q


def test_cost_per_request_prices_tokens_per_request_at_the_models_cost_per_token() -> None:
    q = builtin_query("vllm", "costPerRequest", SEL, "1m", COST)
    assert "vllm:request_success_total{" in q
    # the Model's cost per token: total spend 10/h over every revision's tokens
    assert (
        '(10 / (sum(rate(vllm:generation_tokens_total{namespace="team-a", llmops_model="support"}[1m]))' in q
    )


def test_cost_builtins_need_the_spend_and_token_counters() -> None:
    with pytest.raises(ValueError, match="needs what each revision spends"):
        builtin_query("vllm", "costPerRequest", SEL)
    metric = MetricSpec(name="cost", builtin="costPerMillionOutputTokens", maxRatioToStable=1.3)
    (message,) = unsupported_builtins("onnxruntime", [metric])
    assert "Triton exports no token counters" in message
    assert unsupported_builtins("vllm", [metric]) == []


def test_feedback_is_the_share_of_up_votes_for_every_engine() -> None:
    up = 'llmops_feedback_total{namespace="team-a", llmops_model="support", llmops_revision="new", '
    for engine in ("vllm", "tensorrt-llm", "onnxruntime"):
        q = builtin_query(engine, "feedbackPositiveRate", SEL, "1h")  # type: ignore[arg-type]
        assert up + 'vote="up"}[1h]' in q
        count = request_count_query(engine, "feedbackPositiveRate", SEL, "1h")  # type: ignore[arg-type]
        assert count is not None and count.startswith("sum(increase(llmops_feedback_total{")


def test_canary_thirty_percent_more_expensive_fails_max_ratio_to_stable() -> None:
    spec = analysis({"builtin": "costPerRequest", "maxRatioToStable": 1.3})
    provider = FakeProvider(
        {
            ("count", "new"): QueryResult.of(500),
            ("count", "old"): QueryResult.of(500),
            ("metric", "new"): QueryResult.of(0.0024),
            ("metric", "old"): QueryResult.of(0.0012),
        }
    )
    (m,) = take_measurements(spec, ["cost"], provider, "vllm", "ns", "m", "new", "old", NOW, cost=COST)
    assert m.phase == "Failed"
    assert m.message == "cost: 0.0024 is 2x stable 0.0012 > maxRatioToStable 1.3"


def test_cost_of_a_canary_without_traffic_is_no_data() -> None:
    spec = analysis({"builtin": "costPerMillionOutputTokens", "max": 5}, onNoData="Failed")
    provider = FakeProvider({("count", "new"): QueryResult.of(0)})
    (m,) = take_measurements(spec, ["cost"], provider, "vllm", "ns", "m", "new", "old", NOW, cost=COST)
    assert m.phase == "Failed" and "served no requests" in m.message


@pytest.mark.parametrize("on_no_data", ["Inconclusive", "Failed"])
def test_no_votes_at_all_is_inconclusive_whatever_on_no_data_says(on_no_data: str) -> None:
    spec = analysis({"builtin": "feedbackPositiveRate", "min": 0.8, "window": "1h"}, onNoData=on_no_data)
    (m,) = take_measurements(spec, ["cost"], FakeProvider({}), "vllm", "ns", "m", "new", "old", NOW)
    assert m.phase == "Inconclusive"
    assert "too few feedback votes: canary received 0 in 1h" in m.message
    assert "llmops_feedback_total" in m.message


def test_enough_votes_are_judged() -> None:
    spec = analysis({"builtin": "feedbackPositiveRate", "min": 0.8}, minRequests=10)
    provider = FakeProvider({("count", "new"): QueryResult.of(40), ("metric", "new"): QueryResult.of(0.5)})
    (m,) = take_measurements(spec, ["cost"], provider, "vllm", "ns", "m", "new", None, NOW)
    assert m.phase == "Failed" and m.message == "cost: 0.5 < min 0.8"


def test_a_vote_count_error_is_an_error_not_a_pass() -> None:
    spec = analysis({"builtin": "feedbackPositiveRate", "min": 0.8})
    provider = FakeProvider({("count", "new"): QueryResult.error("down")})
    (m,) = take_measurements(spec, ["cost"], provider, "vllm", "ns", "m", "new", None, NOW)
    assert m.phase == "Error"


@given(
    canary=st.integers(min_value=0, max_value=100),
    stable=st.integers(min_value=0, max_value=100),
    min_votes=st.integers(min_value=0, max_value=50),
    share=st.floats(min_value=0, max_value=1),
)
def test_feedback_is_failed_only_on_enough_votes(
    canary: int, stable: int, min_votes: int, share: float
) -> None:
    spec = analysis(
        {"builtin": "feedbackPositiveRate", "minRatioToStable": 0.9}, minRequests=min_votes, onNoData="Failed"
    )
    provider = FakeProvider(
        {
            ("count", "new"): QueryResult.of(canary),
            ("count", "old"): QueryResult.of(stable),
            ("metric", "new"): QueryResult.of(share * 0.5),
            ("metric", "old"): QueryResult.of(0.9),
        }
    )
    (m,) = take_measurements(spec, ["cost"], provider, "vllm", "ns", "m", "new", "old", NOW)
    enough = min(canary, stable) >= max(min_votes, 1)
    assert m.phase in (("Failed", "Successful") if enough else ("Inconclusive",))
