"""Counter increases over a window from raw counter values, never from `increase()`.

Prometheus' `increase()` treats every series on its own: it extrapolates each one to the
window's edges (stopping where that series would reach zero, which depends on its own first
value) and detects a counter reset per series, adding the value before the drop to that series
only. A histogram's `le` series, and the 5xx and 2xx series of an error rate, are parts of one
count of requests, so treated apart they stop adding up. A pod whose counters go back while it
is young (a restart seen halfway, an exporter that served an older page once) has its whole
count added to the cumulative buckets that dropped and not to those that did not: a spike of
phantom observations in one bucket, which a bootstrap of the counts takes for evidence (a
healthy canary was rolled back on "p95 1.51x stable [1.46, 1.56]" so). A series born in the
window (a pod that started after the weight change, a 5xx series at its first error) loses
what it counted before its first scrape, and each of its series is stretched by its own factor.

Here a counter's increase is its last value in the window minus its value when the window
began, 0 when it did not exist then (it was born in the window); a pod any of whose counters
went back counts all of them from zero, since its values after the reset are one consistent
set of requests. No extrapolation: whole requests, each counted once. Pure, apart from the
PromQL text; `run.py` runs the queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

Labels = tuple[tuple[str, str], ...]
"""A series' labels, sorted, without `__name__`."""
Increase = tuple[Labels, float]
POD_LABELS = ("job", "instance", "namespace", "pod")
"""What names the process that exports a series: its counters reset together."""
AT_LABEL = "llmops_at"
"""Tags the two answers of `window_query` apart."""


def window_query(selector: str, span: str) -> str:
    """PromQL evaluated at a window's end: each series' last value in the window (also of a pod
    that went away during it) and how often it went back, told apart by `AT_LABEL`."""
    return (
        f'label_replace(last_over_time({selector}[{span}]), "{AT_LABEL}", "end", "", "") or '
        f'label_replace(resets({selector}[{span}]), "{AT_LABEL}", "resets", "", "")'
    )


def labels_of(metric: Mapping[str, str]) -> Labels:
    return tuple(sorted((k, v) for k, v in metric.items() if k not in ("__name__", AT_LABEL)))


@dataclass(frozen=True)
class Counter:
    """One counter series over a window."""

    labels: Labels
    end: float
    start: float | None = None
    """Its value when the window began; None when it did not exist yet."""
    reset: bool = False
    """It went back during the window."""

    @property
    def pod(self) -> tuple[str, ...]:
        found = dict(self.labels)
        return tuple(found.get(name, "") for name in POD_LABELS)

    @property
    def went_back(self) -> bool:
        return self.reset or (self.start is not None and self.end < self.start)


def counters(
    start: Iterable[tuple[Mapping[str, str], float]], window: Iterable[tuple[Mapping[str, str], float]]
) -> list[Counter]:
    """The counters from the values at the window's start (an instant query of the selector
    there) and the answer of `window_query` at its end."""
    before = {labels_of(m): v for m, v in start}
    ends: dict[Labels, float] = {}
    resets: dict[Labels, float] = {}
    for metric, value in window:
        (resets if metric.get(AT_LABEL) == "resets" else ends)[labels_of(metric)] = value
    return [Counter(k, v, before.get(k), resets.get(k, 0.0) > 0) for k, v in sorted(ends.items())]


def increases(groups: Sequence[Sequence[Counter]]) -> list[list[Increase]]:
    """Each counter's increase over the window, group by group (e.g. the 5xx and the other
    answers of an error rate). A pod any of whose counters went back, in any group, counts
    every one of its counters from zero."""
    back = {c.pod for group in groups for c in group if c.went_back}
    return [
        [(c.labels, max(0.0, c.end if c.pod in back or c.start is None else c.end - c.start)) for c in group]
        for group in groups
    ]
