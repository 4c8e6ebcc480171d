"""Metrics declared as a ratio of counters (`metrics[].ratio`): validation of the user's
selectors, and verdicts with confidence bounds on their counts (issue 16, build item 1)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from llmops_operator.api.analysis import SERIES_SELECTOR_PATTERN, AnalysisSpec, CounterRatio
from llmops_operator.api.rollout import RolloutStatus
from llmops_operator.metrics_source.builtins import Selector, metric_query, ratio_counters
from llmops_operator.metrics_source.provider import QueryResult, SeriesResult
from llmops_operator.rollout.analysis.run import take_measurements

NOW = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
EVENTS = (
    'app_refusals_total{namespace="{{namespace}}", llmops_model="{{model}}", llmops_revision="{{revision}}"}'
)
TOTAL = (
    'app_answers_total{namespace="{{namespace}}", llmops_model="{{model}}", llmops_revision="{{revision}}"}'
)


def ratio_metric(**thresholds: float) -> dict[str, object]:
    return {"name": "refusals", "ratio": {"events": EVENTS, "total": TOTAL}, **thresholds}


class RatioCounters:
    """Answers the counter queries of the two selectors per revision: (events, total) served by
    one pod born in the window; no point queries."""

    def __init__(self, counts: dict[str, tuple[int, int]]) -> None:
        self.counts = counts
        self.queries: list[str] = []

    def query(self, promql: str) -> QueryResult:
        raise AssertionError(f"mode confidence judges counts, not a point query: {promql}")

    def query_series(self, promql: str, at: datetime) -> SeriesResult:
        self.queries.append(promql)
        revision = re.search(r'llmops_revision="([^"]*)"', promql).group(1)  # type: ignore[union-attr]
        if "last_over_time" not in promql:
            return SeriesResult("no_data")  # born in the window
        events, total = self.counts[revision]
        value = events if "app_refusals_total" in promql else total
        return SeriesResult("value", (({"pod": f"{revision}-0", "llmops_at": "end"}, float(value)),))


def measure(counts: dict[str, tuple[int, int]], **thresholds: float) -> tuple[str, str, RatioCounters]:
    spec = AnalysisSpec.model_validate({"metrics": [ratio_metric(**thresholds)]})
    provider = RatioCounters(counts)
    rollout = RolloutStatus(weight=25, weight_changed_at=NOW - timedelta(seconds=60))
    [m] = take_measurements(spec, ["refusals"], provider, "vllm", "ns", "chat", "new", "old", NOW, rollout)
    return m.phase, m.message, provider


@pytest.mark.parametrize(
    ("canary", "stable", "phase"),
    [
        ((1, 90), (2, 900), "Inconclusive"),  # 1.1% on 90 answers: no evidence either way
        ((60, 1000), (10, 1000), "Failed"),  # 6x the stable's share
        ((200, 40000), (240, 40000), "Successful"),
    ],
)
def test_a_ratio_of_counters_is_judged_with_bounds_like_error_rate(
    canary: tuple[int, int], stable: tuple[int, int], phase: str
) -> None:
    got, message, provider = measure({"new": canary, "old": stable}, maxRatioToStable=1.5)
    assert got == phase, message
    assert message.startswith("refusals: rate ") and "x stable [" in message, message
    assert all("increase(" not in q and "rate(" not in q for q in provider.queries)
    assert any(
        'app_refusals_total{namespace="ns", llmops_model="chat", llmops_revision="new"}' in q
        for q in provider.queries
    )


def test_a_ratio_max_is_judged_on_the_canary_alone_and_min_requests_counts_total() -> None:
    phase, message, provider = measure({"new": (40, 1000)}, max=0.01)
    assert phase == "Failed", message
    assert all('llmops_revision="old"' not in q for q in provider.queries)  # no stable needed
    phase, message, _ = measure({"new": (0, 7)}, max=0.01)
    assert phase == "Inconclusive" and "canary served 7 requests" in message, message


def test_mode_threshold_renders_one_point_query() -> None:
    spec = AnalysisSpec.model_validate({"mode": "threshold", "metrics": [ratio_metric(max=0.02)]})
    q = metric_query(spec.metrics[0], "vllm", "ns", "chat", "r1")
    labels = 'namespace="ns", llmops_model="chat", llmops_revision="r1"'
    assert q == (
        f"(sum(rate(app_refusals_total{{{labels}}}[2m])) or vector(0)) / "
        f"sum(rate(app_answers_total{{{labels}}}[2m]))"
    )


@pytest.mark.parametrize(
    ("events", "why"),
    [
        ("sum(app_refusals_total)", "pattern"),  # a function: the operator reads counters itself
        ("app_refusals_total", "must select one revision"),
        ('app_refusals_total{pod="{{window}}", llmops_revision="{{revision}}"}', "unknown placeholder"),
        ('app_refusals_total{llmops_revision="{{revision}}"}[5m]', "pattern"),
        ('app refusals{llmops_revision="{{revision}}"}', "pattern"),
    ],
)
def test_bad_selectors_are_rejected_saying_why(events: str, why: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(why)):
        CounterRatio.model_validate({"events": events, "total": TOTAL})


def test_a_metric_has_exactly_one_source() -> None:
    with pytest.raises(ValidationError, match="exactly one of builtin, query or ratio"):
        AnalysisSpec.model_validate({"metrics": [{**ratio_metric(max=0.1), "builtin": "errorRate"}]})


NAME = st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,20}", fullmatch=True)
VALUE = st.one_of(
    st.sampled_from(["{{revision}}", "{{ revision }}", "{{namespace}}", "{{model}}", "{{window}}", "{{x}}"]),
    st.text(st.characters(blacklist_characters='"\\{}', blacklist_categories=("Cs",)), max_size=12),
)
MATCHER = st.tuples(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), st.sampled_from(["=", "!=", "=~"]), VALUE)


@settings(max_examples=200, deadline=None)
@given(name=NAME, matchers=st.lists(MATCHER, max_size=4), braces=st.booleans())
def test_any_accepted_selector_renders_to_one_revisions_series(
    name: str, matchers: list[tuple[str, str, str]], braces: bool
) -> None:
    """Whatever a user writes: accepted means a series selector holding {{revision}} and only
    known placeholders, and it renders (with plain values) to a selector of that revision."""
    body = ", ".join(f'{label}{op}"{value}"' for label, op, value in matchers)
    selector = f"{name}{{{body}}}" if braces or matchers else name
    placeholders = [v for _, _, v in matchers if v.startswith("{{")]
    valid = bool(re.fullmatch(SERIES_SELECTOR_PATTERN, selector)) and any(
        p.replace(" ", "") == "{{revision}}" for p in placeholders
    )
    valid = valid and all(
        p.replace(" ", "") in ("{{revision}}", "{{namespace}}", "{{model}}") for p in placeholders
    )
    try:
        ratio = CounterRatio.model_validate({"events": selector, "total": TOTAL})
    except ValidationError:
        assert not valid, selector
        return
    assert valid, selector
    spec = AnalysisSpec.model_validate(
        {"metrics": [{"name": "r", "ratio": ratio.model_dump(by_alias=True), "max": 0.1}]}
    )
    events, total = ratio_counters(spec.metrics[0], Selector("ns", "chat", "r-1"))
    assert "{{" not in events and "}}" not in events
    assert events.startswith(name)
    assert 'llmops_revision="r-1"' in total
