"""`spec.monitoring` and `status.quality` / `status.cost` of a Model: what serves, watched.

Scheduled evaluations re-run an EvalGate against the revision that serves now; their trend and
the `QualityDegraded` condition are in status. Cost is computed from the engines' own token
counters, the revision's GPUs and the operator's price table (no built-in prices).

Monitoring is not hashed into the revision: changing a schedule never rolls anything out.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from llmops_operator.api.common import ApiModel, StatusModel, cel_rules, require_unique
from llmops_operator.api.durations import Duration, parse_duration

MAX_SCHEDULED_EVALUATIONS = 8
MIN_INTERVAL_SECONDS = 10
_CRON_FIELD = r"[0-9A-Za-z*/,?#LW-]+"
CRON_PATTERN = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
    rf"|{_CRON_FIELD}( +{_CRON_FIELD}){{4}})$"
)
"""The shape of a cron expression (five fields or a macro); croniter judges the values."""
ONE_SCHEDULE_MESSAGE = "schedule needs exactly one of cron or interval"
MIN_INTERVAL_MESSAGE = f"schedule.interval must be at least {MIN_INTERVAL_SECONDS}s"


class ScheduleSpec(ApiModel):
    """When a scheduled evaluation runs: a cron expression (UTC) or a fixed interval."""

    model_config = cel_rules(
        ("has(self.cron) != has(self.interval)", ONE_SCHEDULE_MESSAGE),
        (
            f"!has(self.interval) || duration(self.interval) >= duration('{MIN_INTERVAL_SECONDS}s')",
            MIN_INTERVAL_MESSAGE,
        ),
    )

    cron: str | None = Field(default=None, max_length=128, pattern=CRON_PATTERN)
    """Five-field cron expression in UTC (`*/30 * * * *`) or a macro (`@hourly`). Values that
    do not parse (e.g. minute 61) are reported by the `QualityDegraded` condition, reason
    InvalidSchedule; serving is never affected."""
    interval: Duration | None = None
    """Time between two runs, e.g. 10m, 1h (at least 10s)."""

    @model_validator(mode="after")
    def _exactly_one(self) -> ScheduleSpec:
        if (self.cron is None) == (self.interval is None):
            raise ValueError(ONE_SCHEDULE_MESSAGE)
        if self.interval is not None and parse_duration(self.interval).total_seconds() < MIN_INTERVAL_SECONDS:
            raise ValueError(f"{MIN_INTERVAL_MESSAGE} (got {self.interval})")
        return self


class ScheduledEvaluation(ApiModel):
    """Re-run one EvalGate against the serving revision on a schedule."""

    gate: str = Field(min_length=1, max_length=253)
    """Name of the EvalGate in the Model's namespace. Its dataset is read again at every run,
    so cases added to its ConfigMap are evaluated from the next run on."""
    schedule: ScheduleSpec
    """When to run."""
    history_limit: int = Field(default=10, ge=1, le=100)
    """Scheduled EvalRuns kept per gate (older ones are deleted)."""
    max_score_drop: float | None = Field(default=None, ge=0, le=1)
    """Degraded also when the mean case score falls more than this below the score at
    promotion (the revision's gate-step run, or else its first scheduled run). Unset: only
    the gate's pass criteria count."""
    on_degraded: Literal["Report"] = "Report"
    """What to do when quality degrades: Report (condition QualityDegraded and a Warning
    Event). Failing over to a previous revision is not built yet (see docs/monitoring.md)."""


class MonitoringSpec(ApiModel):
    """Watching the serving revision: scheduled evaluations."""

    evaluations: list[ScheduledEvaluation] = Field(
        default_factory=list,
        max_length=MAX_SCHEDULED_EVALUATIONS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["gate"]},
    )
    """Scheduled evaluations, one per gate."""

    @field_validator("evaluations")
    @classmethod
    def _unique_gates(cls, evaluations: list[ScheduledEvaluation]) -> list[ScheduledEvaluation]:
        require_unique([e.gate for e in evaluations], "one scheduled evaluation per gate, repeated")
        return evaluations


def cron_shape_ok(text: str) -> bool:
    """Whether `text` has the shape the CRD accepts (values are croniter's to judge)."""
    return re.fullmatch(CRON_PATTERN, text) is not None


# ---------------------------------------------------------------------------------------------
# status
# ---------------------------------------------------------------------------------------------


class QualityTrend(StatusModel):
    """The trend of one scheduled evaluation of the serving revision."""

    gate: str
    """EvalGate name."""
    revision: str | None = None
    """The revision the trend belongs to (a new serving revision starts a new trend)."""
    last_run: str | None = None
    """Name of the newest scheduled EvalRun."""
    last_phase: str | None = None
    """Its phase (Pending, Running, Passed, Failed, Error)."""
    last_completed_at: datetime | None = None
    """When the newest finished run completed."""
    last_pass_rate: float | None = None
    """Pass rate of the newest finished run."""
    last_score: float | None = None
    """Mean case score of the newest finished run."""
    best_score: float | None = None
    """Best score of this revision's runs."""
    baseline_score: float | None = None
    """Score at promotion: the revision's gate-step run, or else its first scheduled run."""
    baseline_run: str | None = None
    """The EvalRun the baseline comes from."""
    failing_assertions: list[str] = Field(default_factory=list)
    """Assertions (and criteria) that failed in the newest finished run."""
    next_run_at: datetime | None = None
    """When the next run is due."""


class RevisionCost(StatusModel):
    """Token throughput, GPU time and cost of one serving revision."""

    revision: str
    """Revision hash."""
    gpus: int = 0
    """GPUs per replica."""
    gpu_product: str | None = None
    """GPU product priced (`nvidia.com/gpu.product`)."""
    ready_replicas: int = 0
    """Ready replicas seen at `accountedAt` (GPU time until the next pass is counted with it)."""
    accounted_at: datetime | None = None
    """When GPU time was last added."""
    gpu_hours: float = 0.0
    """GPU-hours spent ready: replicas x GPUs x time ready, summed over scale-ups and -downs."""
    input_tokens_per_second: float | None = None
    """Prompt tokens per second (engine counters, over the cost window)."""
    output_tokens_per_second: float | None = None
    """Generated tokens per second."""
    price_per_gpu_hour: float | None = None
    """Price of one GPU-hour of `gpuProduct` from the operator's price table."""
    cost: float | None = None
    """gpuHours x pricePerGpuHour."""
    cost_per_million_output_tokens: float | None = None
    """Current cost rate divided by output token rate (none without traffic or price)."""


class CostStatus(StatusModel):
    """What the serving revisions cost (status.cost)."""

    currency: str | None = None
    """Currency of the operator's price table."""
    cost_per_million_output_tokens: float | None = None
    """Over all serving revisions: what a million generated tokens cost right now."""
    output_tokens_per_second: float | None = None
    """Over all serving revisions."""
    revisions: list[RevisionCost] = Field(default_factory=list, max_length=16)
    """Per serving revision, stable first."""
