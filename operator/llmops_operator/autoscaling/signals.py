"""Read a Model's autoscaling signal from Prometheus into `autoscaler.Signals`.

The per-engine PromQL lives in `metrics_source.builtins.SIGNALS` (one revision per query).
A Model can serve several revisions at once (during a rollout), so each revision is asked
two questions and the answers are combined here:

* how many pods report metrics: `count` over the per-pod series of the engine's
  waiting-requests gauge (every engine has one), i.e. the pods Prometheus scrapes;
* the signal: a per-pod mean for queueDepth and kvCacheUtilization, a sum for
  requestsPerSecond.

queueDepth becomes a total (mean x pods, summed over revisions), kvCacheUtilization a mean
weighted by pods, requestsPerSecond a sum. Any query error makes the whole reading no data
(`value=None` with the error in `message`): a partial sum would look like less load.
"""

from __future__ import annotations

from datetime import datetime

from llmops_operator.autoscaling.decide import Signals
from llmops_operator.metrics_source.builtins import SIGNALS, Engine, Selector, Signal, signal_query
from llmops_operator.metrics_source.provider import MetricProvider

_PER_POD_MEAN = "avg("


class UnsupportedSignalError(ValueError):
    """The engine does not export the metric the Model autoscales on (a spec problem)."""


def unsupported_signal(engine: str, metric: str) -> str | None:
    """Why `metric` cannot drive autoscaling for `engine`, or None when it can (for validation)."""
    if engine in SIGNALS.get(metric, {}):
        return None
    if metric not in SIGNALS:
        return f"autoscaling.metric {metric} is not a known signal; use one of {', '.join(SIGNALS)}"
    engines = ", ".join(SIGNALS[metric])
    return (
        f"autoscaling.metric {metric} is not exported by engine {engine} (available for: {engines}); "
        "use queueDepth or requestsPerSecond"
    )


def pod_count_query(engine: Engine, selector: Selector) -> str:
    """PromQL counting the revision's pods that report the waiting-requests gauge."""
    per_pod_mean = signal_query(engine, "queueDepth", selector)
    if per_pod_mean is None or not per_pod_mean.startswith(_PER_POD_MEAN):
        raise UnsupportedSignalError(f"no per-pod waiting-requests gauge for engine {engine}")
    return "count(" + per_pod_mean.removeprefix(_PER_POD_MEAN)


def read_signals(
    provider: MetricProvider,
    engine: str,
    namespace: str,
    model: str,
    revisions: list[str],
    metric: str,
    now: datetime,
) -> Signals | None:
    """The Model's load over the pods of `revisions`, measured at `now`.

    None when there is nothing to measure (no revisions). Raises UnsupportedSignalError when
    the engine does not export `metric`; call `unsupported_signal` first to report it nicely.
    """
    problem = unsupported_signal(engine, metric)
    if problem:
        raise UnsupportedSignalError(problem)
    if not revisions:
        return None
    eng: Engine = engine  # type: ignore[assignment]  # checked by unsupported_signal
    sig: Signal = metric  # type: ignore[assignment]
    pods_total = 0
    weighted = 0.0  # queueDepth: total waiting; kv: sum of per-pod utilization; rps: total rate
    for revision in dict.fromkeys(revisions):  # a revision listed twice is counted once
        selector = Selector(namespace, model, revision)
        count = provider.query(pod_count_query(eng, selector))
        if count.kind == "error":
            return _no_data(now, pods_total, f"counting pods of revision {revision}: {count.message}")
        pods = round(count.value or 0) if count.kind == "value" else 0
        if pods <= 0:
            continue  # a revision scaled to zero (or not scraped yet) carries no load
        query = signal_query(eng, sig, selector)
        assert query is not None  # checked by unsupported_signal
        reading = provider.query(query)
        if reading.kind == "error":
            return _no_data(now, pods, f"reading {metric} of revision {revision}: {reading.message}")
        if reading.kind == "no_data":
            if sig != "requestsPerSecond":
                return _no_data(now, pods, f"{pods} pods of revision {revision} report no {metric}")
            # The request counters appear with the first finished request: none yet is 0/s.
            reading_value = 0.0
        else:
            reading_value = reading.value or 0.0
        pods_total += pods
        weighted += reading_value if sig == "requestsPerSecond" else reading_value * pods
    if pods_total == 0:
        return _no_data(now, 0, f"no pod of revisions {', '.join(revisions)} reports metrics")
    value = weighted / pods_total if sig == "kvCacheUtilization" else weighted
    return Signals(value=value, ready_replicas=pods_total, measured_at=now)


def _no_data(now: datetime, pods: int, message: str) -> Signals:
    return Signals(value=None, ready_replicas=pods, measured_at=now, message=message)
