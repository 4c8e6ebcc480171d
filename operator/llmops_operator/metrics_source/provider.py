"""Metric providers: run one query, answer a value, no data, or an error (never a guess).

`MetricProvider` is the seam the analysis code depends on; unit tests fake it. The only
implementation is `PrometheusProvider` (prometheus-api-client against a configurable URL).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

ResultKind = Literal["value", "no_data", "error"]


@dataclass(frozen=True)
class QueryResult:
    """The outcome of one query."""

    kind: ResultKind
    value: float | None = None
    message: str = ""

    @classmethod
    def of(cls, value: float) -> QueryResult:
        """A value; NaN and infinities are no data (0/0 when there was no traffic)."""
        if math.isnan(value) or math.isinf(value):
            return cls("no_data", message=f"query returned {value}")
        return cls("value", value)

    @classmethod
    def no_data(cls, message: str = "query returned no data") -> QueryResult:
        return cls("no_data", message=message)

    @classmethod
    def error(cls, message: str) -> QueryResult:
        return cls("error", message=message)


@dataclass(frozen=True)
class SeriesResult:
    """The samples of one instant query: each series' labels and value."""

    kind: ResultKind
    series: tuple[tuple[dict[str, str], float], ...] = field(default_factory=tuple)
    message: str = ""


class MetricProvider(Protocol):
    """Anything that can answer one PromQL query."""

    def query(self, promql: str) -> QueryResult:
        """Run the query now; never raise, report failures as `error` results."""
        ...

    def query_series(self, promql: str, at: datetime) -> SeriesResult:
        """Run the query evaluated at `at`; every series with its labels."""
        ...


_USERINFO = re.compile(r"//[^/@]*@")


def redact_url(url: str) -> str:
    """The URL without user:password, fit for messages and status."""
    return _USERINFO.sub("//***@", url)


class PrometheusProvider:
    """Queries Prometheus' instant query API through prometheus-api-client."""

    def __init__(
        self,
        url: str,
        timeout_seconds: float = 10.0,
        headers: dict[str, str] | None = None,
        retries: int = 1,
        reachable: Callable[[bool], None] | None = None,
    ) -> None:
        """`reachable` hears after each query whether Prometheus answered (even with an error)."""
        self.url = url.rstrip("/")
        self._reachable = reachable or (lambda _: None)
        # Few retries: an outage must surface as Error quickly, consecutiveErrorLimit absorbs blips.
        retry = Retry(total=retries, backoff_factor=0.2, status_forcelist=[502, 503, 504])
        self._client = PrometheusConnect(
            url=self.url,
            headers=headers,
            retry=retry,
            timeout=timeout_seconds,  # type: ignore[arg-type]
        )

    def query(self, promql: str) -> QueryResult:
        try:
            data = self._client.custom_query(promql)
        except Exception as err:  # connection refused, timeout, HTTP 4xx/5xx, bad JSON: all Errors
            return QueryResult.error(self._failed(err))
        self._reachable(True)
        return parse_result(data)

    def query_series(self, promql: str, at: datetime) -> SeriesResult:
        try:
            data = self._client.custom_query(promql, params={"time": f"{at.timestamp():.3f}"})
        except Exception as err:  # same as query(): every failure is an Error
            return SeriesResult("error", message=self._failed(err))
        self._reachable(True)
        return parse_series(data)

    def _failed(self, err: Exception) -> str:
        """Report reachability (an HTTP error status means Prometheus answered); describe."""
        self._reachable("HTTP Status Code" in str(err))
        return self._describe(err)

    def _describe(self, err: Exception) -> str:
        text = str(err)
        if "Connection refused" in text or "Max retries exceeded" in text or "NewConnectionError" in text:
            return f"Prometheus at {redact_url(self.url)} is unreachable: {type(err).__name__}"
        if "HTTP Status Code 400" in text or "HTTP Status Code 422" in text:
            return f"Prometheus rejected the query (bad query): {_error_detail(text)}"
        return f"Prometheus query failed ({redact_url(self.url)}): {type(err).__name__}: {text[:300]}"

    def close(self) -> None:
        self._client.close()


def _error_detail(text: str) -> str:
    match = re.search(r'\\?"error\\?"\s*:\s*\\?"(.*?)\\?"', text)
    return match.group(1)[:300] if match else text[:300]


def parse_result(data: Any) -> QueryResult:
    """Map the `data.result` of an instant query to one number.

    A vector with one sample gives its value, an empty vector no data, several samples an
    error (the query must aggregate to one number); a scalar `[ts, "v"]` gives its value.
    """
    try:
        if isinstance(data, list) and len(data) == 2 and not isinstance(data[0], dict):
            return QueryResult.of(float(data[1]))
        if not isinstance(data, list):
            return QueryResult.error(f"unexpected Prometheus result: {str(data)[:200]}")
        if not data:
            return QueryResult.no_data()
        if len(data) > 1:
            return QueryResult.error(
                f"query returned {len(data)} series; it must aggregate to one number (e.g. wrap it in sum())"
            )
        sample = data[0]
        return QueryResult.of(float(sample["value"][1]))
    except (KeyError, IndexError, TypeError, ValueError) as err:
        return QueryResult.error(f"unexpected Prometheus result ({err}): {str(data)[:200]}")


def parse_series(data: Any) -> SeriesResult:
    """Map the `data.result` of an instant vector query to (labels, value) per series."""
    try:
        if not isinstance(data, list) or (len(data) == 2 and not isinstance(data[0], dict)):
            return SeriesResult("error", message=f"expected a vector, got: {str(data)[:200]}")
        series = tuple((dict(sample.get("metric", {})), float(sample["value"][1])) for sample in data)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
        return SeriesResult("error", message=f"unexpected Prometheus result ({err}): {str(data)[:200]}")
    if not series:
        return SeriesResult("no_data", message="query returned no data")
    return SeriesResult("value", series)
