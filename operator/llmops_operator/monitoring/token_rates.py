"""Token rates of every serving revision from the engines' counters, read from Prometheus in
bulk: two queries per refresh for all Models, not one per Model and pass (I/O).

Only vLLM's token counters are documented among the engines (docs/monitoring.md), so other
engines' revisions have no token rates (their GPU-hours are still counted).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

from llmops_operator.metrics_source.provider import redact_url
from llmops_operator.monitoring.cost import Rates

log = logging.getLogger("llmops.cost")
INPUT_COUNTERS = ("vllm:prompt_tokens_total",)
OUTPUT_COUNTERS = ("vllm:generation_tokens_total",)
BY = "namespace, llmops_model, llmops_revision"
RevisionKey = tuple[str, str, str]


class VectorSource(Protocol):
    def vector(self, promql: str) -> list[dict[str, Any]]:
        """The result vector of an instant query; raises on failure."""
        ...


class PrometheusVectors:
    """Instant vector queries through prometheus-api-client."""

    def __init__(self, url: str, timeout_seconds: float = 10.0) -> None:
        self.url = url
        retry = Retry(total=1, backoff_factor=0.2, status_forcelist=[502, 503, 504])
        self._client = PrometheusConnect(url=url, retry=retry, timeout=timeout_seconds)  # type: ignore[arg-type]

    def vector(self, promql: str) -> list[dict[str, Any]]:
        return list(self._client.custom_query(promql))


def rate_query(counters: tuple[str, ...], window: str) -> str:
    return " or ".join(f"sum by ({BY}) (rate({name}[{window}]))" for name in counters)


def parse_vector(result: list[dict[str, Any]]) -> dict[RevisionKey, float]:
    out: dict[RevisionKey, float] = {}
    for sample in result:
        labels = sample.get("metric") or {}
        key = (labels.get("namespace", ""), labels.get("llmops_model", ""), labels.get("llmops_revision", ""))
        try:
            out[key] = float(sample["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
    return out


class TokenRates:
    """Cached token rates of all revisions, refreshed at most every `refresh_seconds`."""

    def __init__(
        self,
        source: VectorSource,
        window: str = "2m",
        refresh_seconds: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source, self.window, self.refresh_seconds, self.clock = source, window, refresh_seconds, clock
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._input: dict[RevisionKey, float] = {}
        self._output: dict[RevisionKey, float] = {}
        self.error: str | None = None
        self.refreshes = 0

    def get(self, namespace: str, model: str, revision: str) -> Rates:
        self._refresh_if_stale()
        key = (namespace, model, revision)
        return Rates(self._input.get(key), self._output.get(key))

    def _refresh_if_stale(self) -> None:
        with self._lock:
            now = self.clock()
            if self._read_at is not None and now - self._read_at < self.refresh_seconds:
                return
            self._read_at = now
            try:
                inputs = parse_vector(self.source.vector(rate_query(INPUT_COUNTERS, self.window)))
                outputs = parse_vector(self.source.vector(rate_query(OUTPUT_COUNTERS, self.window)))
            except Exception as err:  # keep the last rates; cost is informative, never blocking
                url = getattr(self.source, "url", "")
                self.error = f"token rates from Prometheus {redact_url(url)} failed: {type(err).__name__}"
                log.warning("%s: %s", self.error, str(err)[:200])
                return
            self._input, self._output, self.error = inputs, outputs, None
            self.refreshes += 1
