"""Cost arithmetic per serving revision: GPU-hours, token rates, cost per million tokens. Pure.

GPU-hours accrue per reconcile pass: the ready replicas seen at the previous pass times the
revision's GPUs per replica times the time since then. A pass sees every scale-up and
scale-down within one resync period, so the sum follows them; a gap longer than
`MAX_ACCRUAL_GAP` (the operator was down) is counted only up to that bound, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from llmops_operator.api.monitoring import CostStatus, RevisionCost
from llmops_operator.monitoring.prices import Prices

MAX_ACCRUAL_GAP = timedelta(minutes=10)
DEFAULT_REFRESH = timedelta(minutes=5)
"""How often an unchanged revision's record is brought up to date (a status write per Model);
a change of ready replicas, GPUs or product is accounted at once, so GPU-hours stay exact."""
SECONDS_PER_HOUR = 3600.0
MILLION = 1_000_000.0


@dataclass(frozen=True)
class Rates:
    """Tokens per second of one revision (None: its engine exports no such counter)."""

    input_tps: float | None = None
    output_tps: float | None = None


@dataclass(frozen=True)
class Serving:
    """One serving revision as observed: its GPUs per replica, ready replicas and GPU product."""

    revision: str
    gpus: int
    ready_replicas: int
    product: str | None


@dataclass(frozen=True)
class CostCondition:
    """The CostAccounted condition (None from `plan_cost`: no prices configured, clear it)."""

    status: str
    reason: str
    message: str


def accrue(
    previous: RevisionCost | None, revision: str, gpus: int, ready_replicas: int, now: datetime
) -> RevisionCost:
    """The revision's cost record at `now`: GPU time since the last pass added, at the ready
    replicas and GPUs seen then (left-point rule), and today's replicas remembered."""
    gpu_hours = 0.0
    if previous is not None and previous.revision == revision:
        gpu_hours = previous.gpu_hours
        if previous.accounted_at is not None:
            elapsed = min(max(now - previous.accounted_at, timedelta(0)), MAX_ACCRUAL_GAP)
            gpu_hours += (
                max(previous.ready_replicas, 0)
                * max(previous.gpus, 0)
                * (elapsed.total_seconds() / SECONDS_PER_HOUR)
            )
    return RevisionCost(
        revision=revision,
        gpus=max(gpus, 0),
        ready_replicas=max(ready_replicas, 0),
        accounted_at=now,
        gpu_hours=gpu_hours,
    )


def spend_per_hour(price_per_gpu_hour: float, gpus: int, ready_replicas: int) -> float:
    """What the revision's ready replicas cost per hour."""
    return price_per_gpu_hour * max(gpus, 0) * max(ready_replicas, 0)


def cost_per_million(spend_hourly: float, output_tokens_per_second: float | None) -> float | None:
    """Spend per million output tokens; None without output tokens (a revision with no
    traffic has no cost per token, not an infinite one) or without spend (nothing ready)."""
    if output_tokens_per_second is None or output_tokens_per_second <= 0 or spend_hourly <= 0:
        return None
    return spend_hourly / (output_tokens_per_second * SECONDS_PER_HOUR) * MILLION


def priced(
    record: RevisionCost,
    product: str | None,
    price_per_gpu_hour: float | None,
    input_tps: float | None,
    output_tps: float | None,
) -> RevisionCost:
    """The record with token rates and, when a price is known, cost filled in."""
    update: dict[str, object] = {
        "gpu_product": product,
        "input_tokens_per_second": _clean(input_tps),
        "output_tokens_per_second": _clean(output_tps),
        "price_per_gpu_hour": price_per_gpu_hour,
        "cost": None,
        "cost_per_million_output_tokens": None,
    }
    if price_per_gpu_hour is not None:
        update["cost"] = record.gpu_hours * price_per_gpu_hour
        spend = spend_per_hour(price_per_gpu_hour, record.gpus, record.ready_replicas)
        update["cost_per_million_output_tokens"] = cost_per_million(spend, _clean(output_tps))
    return record.model_copy(update=update)


def summarize(records: Sequence[RevisionCost], currency: str | None) -> CostStatus:
    """status.cost over the serving revisions: the pooled cost per million output tokens is
    the total spend rate over the total output token rate; unknown if any revision that
    spends is unpriced."""
    tokens = [r.output_tokens_per_second for r in records if r.output_tokens_per_second is not None]
    total_tps = sum(tokens) if tokens else None
    spending = [r for r in records if r.ready_replicas > 0 and r.gpus > 0]
    pooled: float | None = None
    if spending and all(r.price_per_gpu_hour is not None for r in spending):
        spend = sum(spend_per_hour(r.price_per_gpu_hour or 0.0, r.gpus, r.ready_replicas) for r in spending)
        pooled = cost_per_million(spend, total_tps)
    return CostStatus(
        currency=currency if any(r.price_per_gpu_hour is not None for r in records) else None,
        cost_per_million_output_tokens=pooled,
        output_tokens_per_second=total_tps,
        revisions=list(records),
    )


def _fresh(
    record: RevisionCost, item: Serving, price: float | None, rate: Rates, now: datetime, refresh: timedelta
) -> bool:
    """Whether the kept record still describes the revision (replicas, GPUs, product, price,
    whether it has traffic) and is recent enough."""
    observed = (item.ready_replicas, max(item.gpus, 0), item.product, price, bool(_clean(rate.output_tps)))
    kept = (
        record.ready_replicas,
        record.gpus,
        record.gpu_product,
        record.price_per_gpu_hour,
        bool(record.output_tokens_per_second),
    )
    recent = record.accounted_at is not None and timedelta(0) <= now - record.accounted_at < refresh
    return kept == observed and recent


def _clean(value: float | None) -> float | None:
    """Rates as Prometheus reports them; NaN/inf/negative (counter resets) are unknown."""
    if value is None or value != value or value in (float("inf"), float("-inf")) or value < 0:
        return None
    return value


def next_refresh(
    cost: CostStatus | None, now: datetime, refresh: timedelta = DEFAULT_REFRESH
) -> float | None:
    """Seconds until the first record that accrues (GPUs ready, or tokens flowing) is due to be
    brought up to date; None when none accrues (a pass then waits for a change). Passes at rest
    are driven by events, so this timer is what keeps GPU-hours within `MAX_ACCRUAL_GAP`."""
    due = [
        (record.accounted_at + refresh - now).total_seconds()
        for record in (cost.revisions if cost else [])
        if record.accounted_at is not None
        and (record.gpus * record.ready_replicas > 0 or record.output_tokens_per_second)
    ]
    return max(min(due), 0.0) if due else None


def plan_cost(
    previous: CostStatus | None,
    serving: Sequence[Serving],
    rates: Mapping[str, Rates],
    prices: Prices,
    now: datetime,
    refresh: timedelta = DEFAULT_REFRESH,
) -> tuple[CostStatus | None, CostCondition | None]:
    """status.cost and the CostAccounted condition for this pass. A missing or invalid price
    only turns money off (GPU-hours and tokens stay); it never blocks serving. A revision whose
    replicas, GPUs, product and price are unchanged keeps its record until `refresh` has passed,
    so a quiet Model's status is not rewritten on every pass."""
    if not serving:
        return None, None
    before = {r.revision: r for r in (previous.revisions if previous else [])}
    records = []
    unpriced: list[str] = []
    for item in serving:
        price = prices.price(item.product)
        if price is None and item.gpus > 0:
            unpriced.append(item.product or f"(unknown product of revision {item.revision})")
        kept = before.get(item.revision)
        rate = rates.get(item.revision, Rates())
        if kept is not None and _fresh(kept, item, price, rate, now, refresh):
            records.append(kept)
            continue
        record = accrue(kept, item.revision, item.gpus, item.ready_replicas, now)
        records.append(priced(record, item.product, price, rate.input_tps, rate.output_tps))
    summary = summarize(records, prices.currency)
    if prices.error:
        return summary, CostCondition(
            "False",
            "PriceTableInvalid",
            f"{prices.error}; cost is shown in GPU-hours only (serving is unaffected)",
        )
    if not prices.configured:
        return summary, None
    if unpriced:
        return summary, CostCondition(
            "False",
            "NoPrice",
            f"no price for GPU product {', '.join(sorted(set(unpriced)))} in the operator's price table "
            "(Helm value cost.gpuHourPrices); cost is shown in GPU-hours only",
        )
    return summary, CostCondition("True", "Priced", f"priced in {prices.currency}")
