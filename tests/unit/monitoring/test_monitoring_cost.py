"""Cost arithmetic (GPU-hours over scale-ups and -downs, zero traffic) and the price table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.monitoring import cost, prices

T0 = datetime(2026, 12, 1, 10, tzinfo=UTC)
H100 = "NVIDIA-H100-80GB-HBM3"


def walk(replicas_per_minute: list[int], gpus: int = 2) -> float:
    """GPU-hours after one pass per minute seeing these ready replicas."""
    record = None
    for minute, ready in enumerate(replicas_per_minute):
        record = cost.accrue(record, "r1", gpus, ready, T0 + timedelta(minutes=minute))
    assert record is not None
    return record.gpu_hours


def test_gpu_hours_follow_scale_ups_and_downs() -> None:
    # 1 replica for 30 min, 3 for 30 min, then 0 for 60 min: (30*1 + 30*3) min * 2 GPUs = 4 GPU-hours
    passes = [1] * 30 + [3] * 30 + [0] * 61
    assert walk(passes) == pytest.approx(4.0)


def test_first_pass_and_zero_replicas_cost_nothing() -> None:
    assert walk([4]) == 0.0
    assert walk([0] * 100) == 0.0


def test_a_long_gap_counts_only_up_to_the_bound() -> None:
    first = cost.accrue(None, "r1", 1, 1, T0)
    later = cost.accrue(first, "r1", 1, 1, T0 + timedelta(days=1))
    assert later.gpu_hours == pytest.approx(cost.MAX_ACCRUAL_GAP.total_seconds() / 3600)


def test_a_clock_going_back_adds_nothing() -> None:
    first = cost.accrue(None, "r1", 1, 1, T0)
    assert cost.accrue(first, "r1", 1, 1, T0 - timedelta(minutes=5)).gpu_hours == 0.0


def test_another_revisions_record_is_not_carried_over() -> None:
    other = cost.accrue(None, "r0", 8, 8, T0).model_copy(update={"gpu_hours": 100.0})
    assert cost.accrue(other, "r1", 1, 1, T0 + timedelta(minutes=1)).gpu_hours == 0.0


def test_cost_per_million_output_tokens() -> None:
    # 2 replicas x 1 GPU x $3/h = $6/h; 1000 tokens/s = 3.6M tokens/h -> $1.666.../M
    record = cost.accrue(None, "r1", 1, 2, T0)
    priced = cost.priced(record, H100, 3.0, 500.0, 1000.0)
    assert priced.cost_per_million_output_tokens == pytest.approx(6 / 3.6)


def test_zero_traffic_has_no_cost_per_token_but_still_costs() -> None:
    record = cost.accrue(cost.accrue(None, "r1", 1, 2, T0), "r1", 1, 2, T0 + timedelta(hours=0.1))
    priced = cost.priced(record, H100, 3.0, 0.0, 0.0)
    assert priced.cost_per_million_output_tokens is None
    assert priced.cost == pytest.approx(0.6)
    assert cost.priced(record, H100, 3.0, None, None).cost_per_million_output_tokens is None


def test_without_a_price_only_gpu_hours_and_tokens_are_reported() -> None:
    record = cost.priced(cost.accrue(None, "r1", 1, 2, T0), None, None, 10.0, float("nan"))
    assert (record.cost, record.cost_per_million_output_tokens, record.output_tokens_per_second) == (
        None,
        None,
        None,
    )
    summary = cost.summarize([record], "USD")
    assert summary.currency is None and summary.cost_per_million_output_tokens is None


def test_pooled_cost_is_total_spend_over_total_tokens() -> None:
    a = cost.priced(cost.accrue(None, "r1", 1, 3, T0), H100, 2.0, 0, 900.0)
    b = cost.priced(cost.accrue(None, "r2", 2, 1, T0), H100, 2.0, 0, 100.0)
    summary = cost.summarize([a, b], "EUR")
    # spend (3*1 + 1*2) * 2 = $10/h over 1000 tokens/s
    assert summary.cost_per_million_output_tokens == pytest.approx(10 / 3.6)
    assert summary.currency == "EUR" and summary.output_tokens_per_second == 1000.0


def test_an_unpriced_spending_revision_makes_the_pool_unknown() -> None:
    a = cost.priced(cost.accrue(None, "r1", 1, 3, T0), H100, 2.0, 0, 900.0)
    b = cost.priced(cost.accrue(None, "r2", 1, 1, T0), "NVIDIA-L4", None, 0, 100.0)
    assert cost.summarize([a, b], "USD").cost_per_million_output_tokens is None


@given(
    passes=st.lists(st.integers(min_value=0, max_value=64), min_size=1, max_size=120),
    gpus=st.integers(min_value=0, max_value=8),
)
def test_gpu_hours_are_the_left_riemann_sum_of_ready_replicas(passes: list[int], gpus: int) -> None:
    expected = sum(passes[:-1]) * gpus / 60
    assert walk(passes, gpus) == pytest.approx(expected)


@given(
    price=st.floats(min_value=0.01, max_value=100),
    gpus=st.integers(min_value=1, max_value=8),
    ready=st.integers(min_value=1, max_value=64),
    tps=st.floats(min_value=0.001, max_value=1e6),
)
def test_double_the_tokens_for_the_same_spend_halves_the_cost_per_token(
    price: float, gpus: int, ready: int, tps: float
) -> None:
    spend = cost.spend_per_hour(price, gpus, ready)
    one, two = cost.cost_per_million(spend, tps), cost.cost_per_million(spend, 2 * tps)
    assert one is not None and two is not None and one == pytest.approx(2 * two)


# ---- price table ----------------------------------------------------------------------------


def test_price_table_from_json_or_yaml() -> None:
    table = prices.load_prices('{"currency": "EUR", "gpuHourPrices": {"NVIDIA-H100-80GB-HBM3": 2.5}}')
    assert table.configured and table.price(H100) == 2.5 and table.currency == "EUR"
    assert table.price("NVIDIA-L4") is None
    yaml_table = prices.load_prices("gpuHourPrices:\n  NVIDIA-L4: 0.8\n")
    assert yaml_table.price("NVIDIA-L4") == 0.8 and yaml_table.currency == "USD"


def test_no_price_table_means_no_prices_and_no_error() -> None:
    for text in (None, "", "  \n", "null"):
        table = prices.load_prices(text)
        assert not table.configured and table.error is None and table.price(H100) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"gpuHourPrices": {"NVIDIA-L4": -1}}', "a GPU-hour costs 0 or more"),
        ('{"gpuHourPrices": {"NVIDIA-L4": "cheap"}}', "gpuHourPrices.NVIDIA-L4"),
        ('{"gpuHourPrices": {"NVIDIA-L4": .nan}}', "finite"),
        ('{"prices": {}}', "prices"),
        ("[1, 2]", "must be a mapping"),
        ("{", "not JSON or YAML"),
    ],
)
def test_bad_price_tables_are_reported_not_used(text: str, message: str) -> None:
    table = prices.load_prices(text)
    assert table.table is None and table.error is not None and message in table.error
    assert table.price(H100) is None


@given(products=st.dictionaries(st.text(min_size=1, max_size=20), st.floats(allow_nan=True), max_size=5))
def test_any_price_table_is_either_loaded_with_valid_prices_or_rejected(products: dict[str, float]) -> None:
    table = prices.load_prices(__import__("json").dumps({"gpuHourPrices": products}))
    if table.table is None:
        assert table.error
    else:
        assert all(0 <= p < float("inf") for p in table.table.gpu_hour_prices.values())


# ---- the cost stage -------------------------------------------------------------------------

PRICED = prices.load_prices('{"currency": "EUR", "gpuHourPrices": {"NVIDIA-H100-80GB-HBM3": 3.0}}')


def test_plan_cost_accrues_and_prices_each_serving_revision() -> None:
    serving = [cost.Serving("r1", 1, 2, H100)]
    first, condition = cost.plan_cost(None, serving, {}, PRICED, T0)
    later, _ = cost.plan_cost(
        first, serving, {"r1": cost.Rates(100.0, 1000.0)}, PRICED, T0 + timedelta(minutes=6)
    )
    assert condition is not None and (condition.status, condition.reason) == ("True", "Priced")
    assert later is not None
    (record,) = later.revisions
    assert record.gpu_hours == pytest.approx(0.2) and record.cost == pytest.approx(0.6)
    assert later.cost_per_million_output_tokens == pytest.approx(6 / 3.6)
    assert later.currency == "EUR"


def test_a_missing_price_is_a_condition_and_gpu_hours_go_on() -> None:
    summary, condition = cost.plan_cost(None, [cost.Serving("r1", 1, 2, "NVIDIA-L4")], {}, PRICED, T0)
    assert condition is not None and condition.reason == "NoPrice" and "NVIDIA-L4" in condition.message
    assert summary is not None and summary.revisions[0].cost is None


def test_an_invalid_price_table_is_a_condition() -> None:
    broken = prices.load_prices('{"gpuHourPrices": {"NVIDIA-L4": -2}}')
    _, condition = cost.plan_cost(None, [cost.Serving("r1", 1, 1, "NVIDIA-L4")], {}, broken, T0)
    assert condition is not None and condition.reason == "PriceTableInvalid"
    assert "0 or more" in condition.message and "serving is unaffected" in condition.message


def test_without_prices_there_is_no_condition_and_nothing_serving_no_cost() -> None:
    assert cost.plan_cost(None, [cost.Serving("r1", 1, 1, H100)], {}, prices.Prices(), T0)[1] is None
    assert cost.plan_cost(None, [], {}, PRICED, T0) == (None, None)


def test_an_unchanged_revision_keeps_its_record_until_the_refresh() -> None:
    serving = [cost.Serving("r1", 1, 2, H100)]
    rates = {"r1": cost.Rates(1.0, 2.0)}
    first, _ = cost.plan_cost(None, serving, rates, PRICED, T0, timedelta(minutes=5))
    quiet, _ = cost.plan_cost(first, serving, rates, PRICED, T0 + timedelta(minutes=4), timedelta(minutes=5))
    assert quiet == first  # no status write for a quiet Model
    scaled = [cost.Serving("r1", 1, 5, H100)]
    after, _ = cost.plan_cost(first, scaled, rates, PRICED, T0 + timedelta(minutes=4), timedelta(minutes=5))
    assert after is not None and after.revisions[0].gpu_hours == pytest.approx(2 * 4 / 60)
    assert after.revisions[0].ready_replicas == 5


def test_a_revision_that_accrues_asks_for_its_refresh_and_an_idle_one_does_not() -> None:
    """Passes at rest are driven by events: the refresh timer keeps GPU-hours within the accrual
    gap for revisions that spend, and a Model that spends nothing is left alone."""
    spending = cost.accrue(None, "r1", 2, 1, T0)
    idle = cost.accrue(None, "r2", 0, 1, T0)
    refresh = timedelta(minutes=5)
    status = cost.summarize([spending, idle], None)
    assert cost.next_refresh(status, T0 + timedelta(minutes=1), refresh) == 240.0
    assert cost.next_refresh(status, T0 + timedelta(minutes=9), refresh) == 0.0
    assert cost.next_refresh(cost.summarize([idle], None), T0, refresh) is None
    assert cost.next_refresh(None, T0, refresh) is None
    assert refresh <= cost.MAX_ACCRUAL_GAP
