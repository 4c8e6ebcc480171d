"""OpenAI-compatible chat completions client: bounded concurrency, timeouts, retries.

Retries cover what a healthy server may still do under load (429, 5xx, dropped
connections, timeouts), with exponential back-off; other 4xx are the caller's bug
and fail at once. Latency is measured on the attempt that succeeded.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504}) | frozenset(range(505, 600))
MAX_BACKOFF_SECONDS = 8.0


class EndpointError(RuntimeError):
    """The endpoint did not answer usefully after all retries (`status`: its last HTTP status)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Completion:
    content: str
    latency_ms: float
    attempts: int


def api_base(endpoint: str) -> str:
    """`http://host:8000` and `http://host:8000/v1/` both mean `http://host:8000/v1`."""
    base = endpoint.rstrip("/")
    if urlsplit(base).path in ("", "/"):
        base += "/v1"
    return base


RESPONSE_FORMAT_STYLES = ("json_schema", "json_object")
"""How a JSON schema is asked for: OpenAI's and vLLM's `json_schema`, or `json_object` with a
`schema` (llama-cpp-python's server, which rejects `json_schema`)."""


def request_body(
    model: str,
    messages: list[dict[str, str]],
    parameters: dict[str, Any],
    response_format: dict[str, Any] | None,
    format_style: str = "json_schema",
) -> dict[str, Any]:
    """Chat completions request from a prompt's camelCase parameters."""
    names = {
        "temperature": "temperature",
        "maxTokens": "max_tokens",
        "topP": "top_p",
        "seed": "seed",
        "stop": "stop",
        "presencePenalty": "presence_penalty",
        "frequencyPenalty": "frequency_penalty",
    }
    body: dict[str, Any] = {"model": model, "messages": messages}
    for key, wire in names.items():
        if parameters.get(key) is not None:
            body[wire] = parameters[key]
    if response_format is not None and format_style == "json_object":
        body["response_format"] = {"type": "json_object", "schema": response_format}
    elif response_format is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": response_format},
        }
    return body


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process, shared by every endpoint's client: building one
    loads the CA bundle (about 0.1 s of CPU), which a run with a baseline and judges paid each time."""
    return httpx.create_ssl_context()


class ChatClient:
    """One endpoint; at most `concurrency` requests in flight."""

    def __init__(
        self,
        endpoint: str,
        *,
        concurrency: int = 4,
        timeout_seconds: float = 60.0,
        retries: int = 3,
        backoff_seconds: float = 0.5,
        api_key: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base = api_base(endpoint)
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self._semaphore = asyncio.Semaphore(concurrency)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers=headers,
            transport=transport,
            verify=tls_context(),
        )

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            retry_after = response.headers.get("retry-after", "")
            if retry_after.replace(".", "", 1).isdigit():
                return min(float(retry_after), MAX_BACKOFF_SECONDS)
        return min(self.backoff_seconds * 2**attempt, MAX_BACKOFF_SECONDS)

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[dict[str, Any], float, int]:
        last_problem = ""
        for attempt in range(self.retries + 1):
            response: httpx.Response | None = None
            async with self._semaphore:
                started = time.perf_counter()
                try:
                    response = await self._http.post(f"{self.base}{path}", json=body)
                except httpx.TimeoutException:
                    last_problem = "request timed out"
                except httpx.TransportError as exc:
                    last_problem = f"connection failed: {type(exc).__name__}: {exc}"
                latency_ms = (time.perf_counter() - started) * 1000
            if response is not None:
                if response.status_code < 400:
                    try:
                        return response.json(), latency_ms, attempt + 1
                    except ValueError as exc:
                        raise EndpointError(f"{self.base}{path}: response is not JSON") from exc
                last_problem = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code not in RETRYABLE_STATUS:
                    raise EndpointError(f"{self.base}{path}: {last_problem}", response.status_code)
            if attempt < self.retries:
                await asyncio.sleep(self._delay(attempt, response))
        raise EndpointError(f"{self.base}{path}: {last_problem} (after {self.retries + 1} attempts)")

    async def complete(
        self,
        model: str,
        messages: list[dict[str, str]],
        parameters: dict[str, Any] | None = None,
        response_format: dict[str, Any] | None = None,
        format_style: str = "json_schema",
    ) -> Completion:
        """One chat completion; raises EndpointError when the endpoint cannot answer."""
        body = request_body(model, messages, parameters or {}, response_format, format_style)
        payload, latency_ms, attempts = await self._post("/chat/completions", body)
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise EndpointError(f"{self.base}/chat/completions: response has no choices[0].message") from exc
        return Completion(content=content or "", latency_ms=latency_ms, attempts=attempts)

    async def first_model(self) -> str:
        """The first model id the endpoint serves, for callers that did not name one."""
        try:
            response = await self._http.get(f"{self.base}/models")
            response.raise_for_status()
            return str(response.json()["data"][0]["id"])
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise EndpointError(f"{self.base}/models: cannot list models: {exc}") from exc
