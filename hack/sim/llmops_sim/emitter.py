"""Simulated inference-engine metrics for Prometheus.

This emitter stands in for the traffic of the inference engines that cannot run here (vLLM,
TensorRT-LLM's ``trtllm-serve`` and Triton with ONNX Runtime need GPUs and images we do not have).
It serves ``/metrics`` in the Prometheus text format under the engines' real metric names, for any
set of simulated pods, so that Prometheus, the operator's analysis queries, the demo and the
benchmarks see the same series a real cluster would produce.

Every series carries the target labels ``namespace``, ``pod``, ``llmops_model`` and
``llmops_revision`` (the project's convention; the operator selects a revision with
``llmops_revision="<rev>"`` and ``namespace="<ns>"``) plus each engine's native labels.

Values are driven by the wall clock: counters and histograms accumulate at a request rate given by
the current *shape*. The noise is a production engine's: requests arrive as a Poisson process,
every request draws its own time to first token and inter-token latency from a log-normal
distribution (median and spread per shape, long right tail: p95 is about 2.3x the median at the
default spread) and fails by an independent Bernoulli draw (``error_rate``, default 0), so a p95 of
a few dozen requests swings as it would on a real server. ``seed`` makes a run repeatable (each
pod draws from its own stream).

Shapes, settable per revision or per pod while the emitter runs:

* ``steady``: constant rate, base latencies, no errors.
* ``latency_regression(factor)``: every latency multiplied by ``factor``.
* ``error_spike(rate)``: a fraction ``rate`` (0..1) of requests fail (HTTP 5xx / Triton failures).
* ``load(direction=rising|falling, rate)``: request rate changes by ``rate`` req/s every second.
* ``no_data(mode=absent|frozen)``: the series disappear (``absent``, default) or stay but stop
  changing (``frozen``: rate 0, no requests).
* ``token_shift(output_factor, prompt_factor)``: each request generates ``output_factor`` (default
  2) times the output tokens and reads ``prompt_factor`` (default 1) times the prompt tokens,
  while every latency stays as at the base lengths (a prompt change that makes answers longer
  at flat latency: the canary case the cost metrics catch).

Token counters (vLLM ``prompt_tokens_total`` / ``generation_tokens_total``) grow by the requests
served times the shape's tokens per request, so tokens per request read back from ``rate()``
equal the shape's. The application's feedback counter ``llmops_feedback_total{vote="up"|"down"}``
(see docs/monitoring.md) is exposed per pod when ``feedback_rate`` (votes per second) is above 0,
with ``feedback_positive`` (0..1) of the votes up; with the default rate 0 it is not exported,
like an application that exports no feedback.

Requests held for a Model at zero replicas (no pods, so no engine series) are served as the
endpoint picker's flow-control queue gauge, ``inference_extension_flow_control_queue_size`` with
``namespace`` and ``inference_pool`` labels: it stands in for the inference gateway that queues
requests while the Model wakes (``set_pending``).

Control it from Python (:class:`Emitter`) or over HTTP (``POST /control`` with JSON, see
:meth:`Emitter.control`), or run it standalone::

    python -m llmops_sim.emitter --port 0 --config pods.json
"""

from __future__ import annotations

import argparse
import json
import math
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

ENGINES = ("vllm", "tensorrt-llm", "onnxruntime")
SHAPES = ("steady", "latency_regression", "error_spike", "load", "no_data", "token_shift")

# Base behaviour of a healthy replica; any of these can be overridden per shape via params.
BASE_PARAMS: dict[str, float] = {
    "rps": 5.0,  # requests per second per pod
    "ttft_seconds": 0.08,  # median time to first token
    "tpot_seconds": 0.02,  # median time per output token
    "prompt_tokens": 400.0,  # mean prompt length
    "output_tokens": 150.0,  # mean generated tokens
    "sigma": 0.5,  # log-normal spread of every latency (p95/p50 = e^(1.645 sigma) = 2.3)
    "error_rate": 0.0,  # background share of failed requests (Bernoulli per request)
    "queue_seconds": 0.005,  # median queueing delay (Triton)
    "max_running": 64.0,  # batch slots before requests wait
    "feedback_rate": 0.0,  # thumbs up/down votes per second per pod (0: no feedback exported)
    "feedback_positive": 0.9,  # share of votes that are thumbs up
}
FEEDBACK_METRIC = "llmops_feedback_total"
"""The application feedback counter the builtin `feedbackPositiveRate` reads (docs/monitoring.md)."""

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
TTFT_BUCKETS += (0.75, 1.0, 1.5, 2.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 40.0, 60.0)
E2E_BUCKETS += (120.0, 240.0, 480.0)
ITL_BUCKETS = (0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
ITL_BUCKETS += (0.75, 1.0, 2.5, 5.0)

FINISHED_REASONS = (("stop", 0.9), ("length", 0.1))
PAGE_EVERY_SECONDS = 0.25
"""How often the served page is rendered anew (Prometheus scrapes the dev cluster every 1 s)."""


@dataclass(frozen=True)
class SimPod:
    """One simulated serving pod: which revision of which Model it belongs to and its engine."""

    namespace: str
    pod: str
    engine: str
    model: str
    revision: str

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.pod)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SimPod:
        return cls(
            namespace=str(data["namespace"]),
            pod=str(data["pod"]),
            engine=str(data.get("engine", "vllm")),
            model=str(data["model"]),
            revision=str(data["revision"]),
        )

    def to_dict(self) -> dict[str, str]:
        return {
            "namespace": self.namespace,
            "pod": self.pod,
            "engine": self.engine,
            "model": self.model,
            "revision": self.revision,
        }


@dataclass(frozen=True)
class Shape:
    """A traffic shape and its parameters, effective from ``since`` (emitter clock)."""

    name: str = "steady"
    params: Mapping[str, Any] = field(default_factory=dict)
    since: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, got {self.name!r}")
        if self.name == "latency_regression" and float(self.params.get("factor", 2.0)) <= 0:
            raise ValueError("latency_regression needs factor > 0")
        if self.name == "error_spike" and not 0.0 <= float(self.params.get("rate", 0.5)) <= 1.0:
            raise ValueError("error_spike needs 0 <= rate <= 1")
        if self.name == "load" and self.params.get("direction", "rising") not in ("rising", "falling"):
            raise ValueError("load needs direction rising or falling")
        if self.name == "no_data" and self.params.get("mode", "absent") not in ("absent", "frozen"):
            raise ValueError("no_data needs mode absent or frozen")
        if self.name == "token_shift" and min(self.output_factor, self.prompt_factor) <= 0:
            raise ValueError("token_shift needs output_factor > 0 and prompt_factor > 0")
        if not 0.0 <= self.base("feedback_positive") <= 1.0 or self.base("feedback_rate") < 0:
            raise ValueError("feedback_rate must be >= 0 and 0 <= feedback_positive <= 1")
        extra = {"factor", "rate", "direction", "mode", "output_factor", "prompt_factor"}
        unknown = set(self.params) - set(BASE_PARAMS) - extra
        if unknown:
            raise ValueError(f"unknown shape params: {sorted(unknown)}")

    def base(self, name: str) -> float:
        return float(self.params.get(name, BASE_PARAMS[name]))

    @property
    def absent(self) -> bool:
        return self.name == "no_data" and self.params.get("mode", "absent") == "absent"

    def rps_at(self, now: float) -> float:
        """Request rate at ``now``; load shapes ramp linearly from the moment they were set."""
        rps = self.base("rps")
        if self.name == "no_data":
            return 0.0
        if self.name == "load":
            slope = float(self.params.get("rate", 1.0))
            elapsed = max(0.0, now - self.since)
            sign = 1.0 if self.params.get("direction", "rising") == "rising" else -1.0
            rps = max(0.0, rps + sign * slope * elapsed)
        return rps

    def mean_rps(self, start: float, end: float) -> float:
        """Average rate over [start, end]; exact for the piecewise-linear load ramp."""
        if end <= start:
            return self.rps_at(end)
        steps = 8
        width = (end - start) / steps
        return sum(self.rps_at(start + (i + 0.5) * width) for i in range(steps)) / steps

    @property
    def latency_factor(self) -> float:
        return float(self.params.get("factor", 2.0)) if self.name == "latency_regression" else 1.0

    @property
    def output_factor(self) -> float:
        return float(self.params.get("output_factor", 2.0)) if self.name == "token_shift" else 1.0

    @property
    def prompt_factor(self) -> float:
        return float(self.params.get("prompt_factor", 1.0)) if self.name == "token_shift" else 1.0

    @property
    def error_ratio(self) -> float:
        if self.name == "error_spike":
            return float(self.params.get("rate", 0.5))
        return self.base("error_rate")


def lognormal_mean(median: float, sigma: float) -> float:
    return median * math.exp(sigma * sigma / 2.0)


class Histogram:
    """A Prometheus histogram: observations counted per bucket (value <= le), plus count and sum."""

    def __init__(self, buckets: Iterable[float]) -> None:
        self.bounds = tuple(sorted(buckets))
        self._per_bucket = np.zeros(len(self.bounds) + 1, dtype=np.int64)
        self.sum = 0.0

    def observe(self, values: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Count each value once, or `weights` times (integers)."""
        if values.size == 0:
            return
        index = np.searchsorted(self.bounds, values, side="left")
        w = None if weights is None else weights.astype(np.int64)
        self._per_bucket += np.bincount(index, weights=w, minlength=len(self.bounds) + 1).astype(np.int64)
        self.sum += float(np.sum(values * (1 if weights is None else weights)))

    @property
    def cumulative(self) -> list[int]:
        """Observations <= each finite bound."""
        return np.cumsum(self._per_bucket)[:-1].tolist()

    @property
    def count(self) -> int:
        return int(self._per_bucket.sum())


@dataclass
class PodState:
    """Everything accumulated for one pod since it was added."""

    ttft: Histogram = field(default_factory=lambda: Histogram(TTFT_BUCKETS))
    e2e: Histogram = field(default_factory=lambda: Histogram(E2E_BUCKETS))
    itl: Histogram = field(default_factory=lambda: Histogram(ITL_BUCKETS))
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    requests_ok: int = 0
    requests_failed: int = 0
    prompt_tokens: float = 0.0
    generation_tokens: float = 0.0
    votes_up: float = 0.0
    votes_down: float = 0.0
    queue_us: float = 0.0
    compute_us: float = 0.0
    running: float = 0.0
    waiting: float = 0.0
    kv_usage: float = 0.0
    updated: float = 0.0


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _labels_text(labels: Mapping[str, str]) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())


class _Family:
    """Collects the samples of one metric family across pods, then renders them together."""

    def __init__(self, name: str, kind: str, help_text: str) -> None:
        self.name, self.kind, self.help_text = name, kind, help_text
        self.lines: list[str] = []

    def add(self, labels: Mapping[str, str], value: float, suffix: str = "") -> None:
        self.lines.append(f"{self.name}{suffix}{{{_labels_text(labels)}}} {_fmt(value)}")

    def add_histogram(self, labels: Mapping[str, str], hist: Histogram) -> None:
        # The label text once per histogram, not once per bucket: scrapes of many pods stay fast.
        base = _labels_text(labels)
        bucket = f"{self.name}_bucket{{{base}"
        for bound, cum in zip(hist.bounds, hist.cumulative, strict=True):
            self.lines.append(f'{bucket},le="{_fmt(bound)}"}} {cum}')
        total = hist.count
        self.lines.append(f'{bucket},le="+Inf"}} {total}')
        self.lines.append(f"{self.name}_count{{{base}}} {total}")
        self.lines.append(f"{self.name}_sum{{{base}}} {_fmt(hist.sum)}")

    def render(self) -> str:
        if not self.lines:
            return ""
        head = f"# HELP {self.name} {self.help_text}\n# TYPE {self.name} {self.kind}\n"
        return head + "\n".join(self.lines) + "\n"


class Emitter:
    """Serves simulated engine metrics over HTTP; pods and shapes can change while it runs.

    ``clock`` is injectable so tests can drive time; it defaults to :func:`time.monotonic`.
    """

    def __init__(
        self,
        pods: Iterable[SimPod | Mapping[str, Any]] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
        seed: int = 0,
    ) -> None:
        self._seed = seed
        self._page: bytes | None = None
        self._page_seq = 0
        self._renders = 0
        self._generation = 0
        self._stopping = threading.Event()
        self._renderer: threading.Thread | None = None
        self._host, self._port = host, port
        self._clock = clock
        self._lock = threading.RLock()
        self._pods: dict[tuple[str, str], SimPod] = {}
        self._state: dict[tuple[str, str], PodState] = {}
        # (kind, namespace or None, name) -> Shape; kind is "pod" or "revision"
        self._shapes: dict[tuple[str, str | None, str], Shape] = {}
        # (namespace, inference pool) -> requests queued by the (simulated) gateway
        self._pending: dict[tuple[str, str], float] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.set_pods(pods)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> Emitter:
        if self._server is not None:
            return self
        self._server = ThreadingHTTPServer((self._host, self._port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="llmops-emitter", daemon=True)
        self._thread.start()
        self._stopping.clear()
        self._renderer = threading.Thread(target=self._prerender, name="llmops-emitter-render", daemon=True)
        self._renderer.start()
        return self

    def _prerender(self) -> None:
        """Keep a fresh page ready, so a scrape is answered at once even on a loaded machine
        (rendering hundreds of pods takes longer than Prometheus' 1 s scrape timeout there)."""
        while not self._stopping.wait(PAGE_EVERY_SECONDS):
            generation = self._generation
            self._keep(*self._fresh_page(), generation=generation)

    def _fresh_page(self) -> tuple[int, bytes]:
        """A page rendered now, with its place in the order of renders."""
        with self._lock:
            self._renders += 1
            return self._renders, self.render().encode()

    def _keep(self, seq: int, page: bytes, generation: int | None = None) -> bytes:
        """Serve `page` from now on unless a later render is kept already (a real engine's
        counters never go back: an older page served after a newer one is a counter reset to
        Prometheus, in some `le` series only), or the pods or shapes changed while it rendered."""
        with self._lock:
            if seq > self._page_seq and generation in (None, self._generation):
                self._page, self._page_seq = page, seq
            return self._page or page

    def page(self) -> bytes:
        """The latest pre-rendered page (rendered now when there is none, e.g. after a change)."""
        page = self._page
        if page is None:
            page = self._keep(*self._fresh_page())
        return page

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        if self._renderer is not None:
            self._renderer.join(timeout=5)
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> Emitter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emitter not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123``; metrics are at ``url + "/metrics"``."""
        return f"http://{self._host}:{self.port}"

    @property
    def address(self) -> str:
        """``host:port``, the form Prometheus targets use."""
        return f"{self._host}:{self.port}"

    # ---- pods and shapes -------------------------------------------------------------------
    def set_pods(self, pods: Iterable[SimPod | Mapping[str, Any]]) -> None:
        """Replace the pod set; pods that stay keep their counters, new pods start at zero."""
        wanted = [p if isinstance(p, SimPod) else SimPod.from_dict(p) for p in pods]
        with self._lock:
            now = self._clock()
            self._advance_all(now)
            new_pods = {p.key: p for p in wanted}
            for key, pod in new_pods.items():
                old = self._pods.get(key)
                if old is None or old != pod:
                    self._state[key] = PodState(updated=now, rng=self._rng_for(pod))
            for key in set(self._pods) - set(new_pods):
                self._state.pop(key, None)
            if new_pods != self._pods:
                self._page, self._generation = None, self._generation + 1  # the next scrape shows it
            self._pods = new_pods

    def _rng_for(self, pod: SimPod) -> np.random.Generator:
        """Each pod its own stream; a pod re-added later draws anew (the clock is part of it)."""
        name = f"{pod.namespace}/{pod.pod}/{pod.revision}".encode()
        return np.random.default_rng([self._seed, zlib.crc32(name), int(self._clock() * 1000) & 0xFFFFFFFF])

    def add_pods(self, pods: Iterable[SimPod | Mapping[str, Any]]) -> None:
        with self._lock:
            self.set_pods([*self._pods.values(), *pods])

    def remove_pods(self, namespace: str, pods: Iterable[str]) -> None:
        gone = {(namespace, p) for p in pods}
        with self._lock:
            self.set_pods([p for k, p in self._pods.items() if k not in gone])

    @property
    def pods(self) -> list[SimPod]:
        with self._lock:
            return list(self._pods.values())

    def set_shape(
        self,
        shape: str = "steady",
        *,
        revision: str | None = None,
        pod: str | None = None,
        namespace: str | None = None,
        **params: Any,
    ) -> None:
        """Set the traffic shape of a revision or of one pod (optionally in one namespace only).

        A pod's own shape wins over its revision's; without either, a pod is ``steady``.
        """
        if (revision is None) == (pod is None):
            raise ValueError("give exactly one of revision= or pod=")
        with self._lock:
            now = self._clock()
            self._advance_all(now)
            key = ("pod", namespace, pod) if pod is not None else ("revision", namespace, str(revision))
            self._shapes[key] = Shape(shape, dict(params), since=now)
            self._page, self._generation = None, self._generation + 1  # the next scrape shows it

    def set_pending(self, namespace: str, pool: str, requests: float) -> None:
        """Requests the simulated gateway holds for an InferencePool (0 removes the series, as
        a flow-control queue with nothing in it reports nothing)."""
        if requests < 0 or not math.isfinite(requests):
            raise ValueError(f"pending requests must be a finite number >= 0, got {requests}")
        with self._lock:
            if requests == 0:
                self._pending.pop((namespace, pool), None)
            else:
                self._pending[(namespace, pool)] = float(requests)

    def clear_shapes(self) -> None:
        with self._lock:
            self._advance_all(self._clock())
            self._shapes.clear()
            self._page, self._generation = None, self._generation + 1  # the next scrape shows it

    def shape_of(self, pod: SimPod) -> Shape:
        for key in (
            ("pod", pod.namespace, pod.pod),
            ("pod", None, pod.pod),
            ("revision", pod.namespace, pod.revision),
            ("revision", None, pod.revision),
        ):
            if key in self._shapes:
                return self._shapes[key]
        return Shape("steady")

    def control(self, command: Mapping[str, Any]) -> dict[str, Any]:
        """Apply one JSON command (the body of ``POST /control``) and return the new state.

        ``{"op": "set_pods", "pods": [{namespace, pod, engine, model, revision}, ...]}``
        ``{"op": "add_pods", "pods": [...]}``, ``{"op": "remove_pods", "namespace": ns, "pods": [names]}``
        ``{"op": "set_shape", "revision"|"pod": ..., "namespace": optional, "shape": ..., "params": {...}}``
        ``{"op": "set_pending", "namespace": ns, "pool": name, "requests": n}``
        ``{"op": "clear_shapes"}``, ``{"op": "state"}``
        """
        op = command.get("op", "state")
        if op == "set_pods":
            self.set_pods(command.get("pods", []))
        elif op == "add_pods":
            self.add_pods(command.get("pods", []))
        elif op == "remove_pods":
            self.remove_pods(str(command["namespace"]), command.get("pods", []))
        elif op == "set_shape":
            self.set_shape(
                str(command.get("shape", "steady")),
                revision=command.get("revision"),
                pod=command.get("pod"),
                namespace=command.get("namespace"),
                **dict(command.get("params", {})),
            )
        elif op == "set_pending":
            self.set_pending(str(command["namespace"]), str(command["pool"]), float(command["requests"]))
        elif op == "clear_shapes":
            self.clear_shapes()
        elif op != "state":
            raise ValueError(f"unknown op {op!r}")
        return self.state()

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "pods": [p.to_dict() for p in self._pods.values()],
                "shapes": [
                    {kind: name, "namespace": ns, "shape": s.name, "params": dict(s.params)}
                    for (kind, ns, name), s in self._shapes.items()
                ],
                "pending": [
                    {"namespace": ns, "pool": pool, "requests": n} for (ns, pool), n in self._pending.items()
                ],
            }

    # ---- simulation ------------------------------------------------------------------------
    def _advance_all(self, now: float) -> None:
        for key, pod in self._pods.items():
            self._advance(pod, self._state[key], now)

    def _advance(self, pod: SimPod, st: PodState, now: float) -> None:
        """Account for the requests served between the last update and ``now``."""
        shape = self.shape_of(pod)
        start = max(st.updated, shape.since)
        dt = now - st.updated
        st.updated = now
        if dt <= 0:
            return
        rps = shape.mean_rps(start, now)
        rng = st.rng
        n = int(rng.poisson(rps * dt))
        factor = shape.latency_factor
        sigma = shape.base("sigma")
        ttft = shape.base("ttft_seconds") * factor
        tpot = shape.base("tpot_seconds") * factor
        out_tokens = shape.base("output_tokens")
        e2e = ttft + tpot * out_tokens
        failed = int(rng.binomial(n, min(1.0, max(0.0, shape.error_ratio))))
        ok = n - failed
        st.requests_ok += ok
        st.requests_failed += failed
        st.prompt_tokens += n * shape.base("prompt_tokens") * shape.prompt_factor
        st.generation_tokens += ok * out_tokens * shape.output_factor
        votes = shape.base("feedback_rate") * dt if shape.name != "no_data" else 0.0
        st.votes_up += votes * shape.base("feedback_positive")
        st.votes_down += votes * (1.0 - shape.base("feedback_positive"))
        if ok:
            # Each answered request: its own TTFT and its own inter-token latency for all its tokens
            # (latencies at the base output length: token_shift changes tokens, not latency).
            first = rng.lognormal(math.log(ttft), sigma, ok)
            per_token = rng.lognormal(math.log(tpot), sigma, ok)
            tokens = np.full(ok, max(1, round(out_tokens)))
            st.ttft.observe(first)
            st.itl.observe(per_token, tokens)
            st.e2e.observe(first + per_token * tokens)
        st.queue_us += n * lognormal_mean(shape.base("queue_seconds") * factor, sigma) * 1e6
        st.compute_us += n * lognormal_mean(e2e, sigma) * 1e6
        # Little's law for the in-flight count; what does not fit in the batch waits.
        current = shape.rps_at(now)
        in_flight = current * lognormal_mean(e2e, sigma)
        slots = shape.base("max_running")
        st.running = min(in_flight, slots)
        st.waiting = max(0.0, in_flight - slots)
        st.kv_usage = min(1.0, st.running / slots)

    def render(self) -> str:
        """The Prometheus text exposition for all pods, advanced to the current clock."""
        with self._lock:
            now = self._clock()
            self._advance_all(now)
            families: dict[str, _Family] = {}

            def fam(name: str, kind: str, help_text: str) -> _Family:
                if name not in families:
                    families[name] = _Family(name, kind, help_text)
                return families[name]

            for key, pod in sorted(self._pods.items()):
                if self.shape_of(pod).absent:
                    continue
                st = self._state[key]
                target = {
                    "namespace": pod.namespace,
                    "pod": pod.pod,
                    "llmops_model": pod.model,
                    "llmops_revision": pod.revision,
                }
                if self.shape_of(pod).base("feedback_rate") > 0 or st.votes_up + st.votes_down > 0:
                    votes = fam(FEEDBACK_METRIC, "counter", "Thumbs up/down votes on answers (application).")
                    votes.add({**target, "vote": "up"}, math.floor(st.votes_up))
                    votes.add({**target, "vote": "down"}, math.floor(st.votes_down))
                if pod.engine == "vllm":
                    _render_vllm(fam, target, pod, st)
                elif pod.engine == "tensorrt-llm":
                    _render_trtllm(fam, target, pod, st)
                else:
                    _render_triton(fam, target, pod, st)
            queue = fam(
                "inference_extension_flow_control_queue_size",
                "gauge",
                "Requests queued by the endpoint picker's flow control (simulated gateway).",
            )
            for (namespace, pool), requests in sorted(self._pending.items()):
                queue.add({"namespace": namespace, "inference_pool": pool, "priority": "0"}, requests)
            return "".join(f.render() for f in families.values())


FamilyFactory = Callable[[str, str, str], _Family]


def _render_vllm(fam: FamilyFactory, target: dict[str, str], pod: SimPod, st: PodState) -> None:
    labels = {**target, "model_name": pod.model, "engine": "0"}
    fam("vllm:num_requests_running", "gauge", "Requests in model execution batches.").add(
        labels, round(st.running)
    )
    fam("vllm:num_requests_waiting", "gauge", "Requests waiting.").add(labels, round(st.waiting))
    fam("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage, 1 means 100 percent.").add(labels, st.kv_usage)
    fam("vllm:gpu_cache_usage_perc", "gauge", "KV-cache usage (old name).").add(labels, st.kv_usage)
    fam("vllm:prompt_tokens_total", "counter", "Prefill tokens processed.").add(
        labels, math.floor(st.prompt_tokens)
    )
    fam("vllm:generation_tokens_total", "counter", "Generation tokens processed.").add(
        labels, math.floor(st.generation_tokens)
    )
    success = fam("vllm:request_success_total", "counter", "Successfully processed requests.")
    for reason, share in FINISHED_REASONS:
        success.add({**labels, "finished_reason": reason}, math.floor(st.requests_ok * share))
    fam("vllm:time_to_first_token_seconds", "histogram", "Time to first token in seconds.").add_histogram(
        labels, st.ttft
    )
    fam("vllm:e2e_request_latency_seconds", "histogram", "End to end latency in seconds.").add_histogram(
        labels, st.e2e
    )
    fam("vllm:inter_token_latency_seconds", "histogram", "Inter-token latency in seconds.").add_histogram(
        labels, st.itl
    )
    fam(
        "vllm:time_per_output_token_seconds", "histogram", "Time per output token (deprecated name)."
    ).add_histogram(labels, st.itl)
    http = fam("http_requests_total", "counter", "Total number of requests by method, status and handler.")
    http_labels = {**target, "handler": "/v1/chat/completions", "method": "POST"}
    http.add({**http_labels, "status": "2xx"}, st.requests_ok)
    http.add({**http_labels, "status": "5xx"}, st.requests_failed)


def _render_trtllm(fam: FamilyFactory, target: dict[str, str], pod: SimPod, st: PodState) -> None:
    labels = {**target, "model_name": pod.model, "engine_type": "trtllm"}
    fam("trtllm_num_requests_running", "gauge", "Requests currently running.").add(labels, round(st.running))
    fam("trtllm_num_requests_waiting", "gauge", "Requests waiting.").add(labels, round(st.waiting))
    fam("trtllm_kv_cache_utilization", "gauge", "KV cache utilization (0-1).").add(labels, st.kv_usage)
    success = fam("trtllm_request_success_total", "counter", "Successfully finished requests.")
    for reason, share in FINISHED_REASONS:
        success.add({**labels, "finished_reason": reason}, math.floor(st.requests_ok * share))
    fam("trtllm_time_to_first_token_seconds", "histogram", "Time to first token in seconds.").add_histogram(
        labels, st.ttft
    )
    fam("trtllm_e2e_request_latency_seconds", "histogram", "End to end latency in seconds.").add_histogram(
        labels, st.e2e
    )


def _render_triton(fam: FamilyFactory, target: dict[str, str], pod: SimPod, st: PodState) -> None:
    labels = {**target, "model": pod.model, "version": "1"}
    ok, failed = st.requests_ok, st.requests_failed
    fam("nv_inference_request_success", "counter", "Number of successful inference requests.").add(labels, ok)
    fam("nv_inference_request_failure", "counter", "Number of failed inference requests.").add(
        {**labels, "reason": "BACKEND"}, failed
    )
    fam("nv_inference_count", "counter", "Number of inferences performed.").add(labels, ok + failed)
    fam("nv_inference_exec_count", "counter", "Model executions performed.").add(labels, ok + failed)
    fam("nv_inference_request_duration_us", "counter", "Cumulative inference request duration in us.").add(
        labels, math.floor(st.queue_us + st.compute_us)
    )
    fam("nv_inference_queue_duration_us", "counter", "Cumulative inference queuing duration in us.").add(
        labels, math.floor(st.queue_us)
    )
    fam(
        "nv_inference_compute_infer_duration_us", "counter", "Cumulative compute inference duration in us."
    ).add(labels, math.floor(st.compute_us))
    fam("nv_inference_pending_request_count", "gauge", "Instantaneous number of pending requests.").add(
        labels, round(st.waiting)
    )


def _handler_for(emitter: Emitter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] == "/metrics":
                self._send(200, emitter.page(), "text/plain; version=0.0.4; charset=utf-8")
            elif self.path.split("?")[0] == "/control":
                self._send(200, json.dumps(emitter.state()).encode(), "application/json")
            elif self.path == "/healthz":
                self._send(200, b"ok\n", "text/plain")
            else:
                self._send(404, b"not found\n", "text/plain")

        def do_POST(self) -> None:
            if self.path != "/control":
                self._send(404, b"not found\n", "text/plain")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                command = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(command, dict):
                    raise ValueError("body must be a JSON object")
                result = emitter.control(command)
            except (ValueError, KeyError, TypeError) as err:
                self._send(400, json.dumps({"error": str(err)}).encode(), "application/json")
                return
            self._send(200, json.dumps(result).encode(), "application/json")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet: scraped every second
            return

    return Handler


def load_config(path: str) -> tuple[list[SimPod], list[dict[str, Any]]]:
    """Read ``{"pods": [...], "shapes": [{"revision"|"pod", "shape", "params"}...]}``."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    pods = [SimPod.from_dict(p) for p in data.get("pods", [])]
    return pods, list(data.get("shapes", []))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--config", help="JSON file with pods and initial shapes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-request noise")
    args = parser.parse_args(argv)
    pods, shapes = load_config(args.config) if args.config else ([], [])
    emitter = Emitter(pods, host=args.host, port=args.port, seed=args.seed).start()
    for shape in shapes:
        emitter.control({"op": "set_shape", **shape})
    print(f"llmops-sim emitter serving {emitter.url}/metrics ({len(pods)} pods)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emitter.stop()


if __name__ == "__main__":
    main()
