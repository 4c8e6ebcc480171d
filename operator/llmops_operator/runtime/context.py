"""Process-wide state of a running operator: API access, caches, queue, metrics, settings."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from llmops_operator.evals import verdict
from llmops_operator.evals.job import DEFAULT_ENDPOINT_TEMPLATE, eval_run_objects
from llmops_operator.gpu.model_facts import FactsCache, HuggingFaceHub
from llmops_operator.kube.client import Kube
from llmops_operator.monitoring.prices import Prices, load_prices
from llmops_operator.monitoring.token_rates import PrometheusVectors, TokenRates
from llmops_operator.retention import DEFAULT_EVAL_RUN_HISTORY
from llmops_operator.rollout.analysis.rounds import MeasurementRounds
from llmops_operator.runtime.applied import AppliedTable
from llmops_operator.runtime.failures import Backoff
from llmops_operator.runtime.leader import LeaderElector
from llmops_operator.runtime.metrics import OperatorMetrics
from llmops_operator.runtime.pass_cache import PassCache
from llmops_operator.runtime.queue import WorkQueue
from llmops_operator.runtime.store import Key, Store


@dataclass
class Settings:
    prometheus_url: str
    operator_image: str
    resync_seconds: float = 300.0
    """How often a Model at rest is looked at again: its unwatched inputs (Secret, HTTPRoute,
    load signal) are re-read and the pass is skipped when nothing changed."""
    full_resync_seconds: float = 3600.0
    """How often a Model is re-planned even when nothing it depends on changed (safety net)."""
    eval_endpoint_template: str = DEFAULT_ENDPOINT_TEMPLATE
    prometheus_timeout_seconds: float = 10.0
    """Per query, and the deadline of a round of analysis measurements (elapsed time)."""
    eval_run_history: int = DEFAULT_EVAL_RUN_HISTORY
    prices: Prices = field(default_factory=Prices)
    """The GPU price table (none: cost in GPU-hours only)."""
    cost_window: str = "2m"
    """rate() window of the token rates in status.cost."""
    cost_refresh_seconds: float = 300.0
    """How often an unchanged revision's status.cost record is rewritten."""


@dataclass
class OperatorContext:
    kube: Kube
    settings: Settings
    store: Store = field(default_factory=Store)
    queue: WorkQueue = field(default_factory=WorkQueue)
    passes: PassCache = field(default_factory=PassCache)
    """The last full pass per Model, to skip passes whose inputs did not change."""
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    applied: AppliedTable = field(default_factory=AppliedTable)
    """Body hash and generation of our last apply per owned object, to skip no-op applies (a
    different generation seen later is drift). Lost on restart, which costs one re-apply."""
    facts: FactsCache = field(default_factory=lambda: FactsCache(HuggingFaceHub()))
    """Model size and architecture from the Hub, looked up once per repo and revision."""
    events: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="events")
    )
    """Posts Events off the reconcile path, in order per submit."""
    verdict_key: bytes = b""
    """Master key eval verdicts are checked with (`evals/verdict.py`); loaded at startup."""
    token_rates: TokenRates | None = None
    """Token rates of all revisions from Prometheus, read in bulk (None: cost accounting off)."""
    backoff: Backoff = field(default_factory=Backoff)
    """Failed passes in a row per Model: the delay before its next try."""
    loop: asyncio.AbstractEventLoop | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    watches: list[Any] = field(default_factory=list)
    """The `kube.watch.KindWatch`es of the busiest owned kinds (started with the operator)."""
    watch_namespaces: list[str] = field(default_factory=list)
    """The namespaces watched (empty: all of them)."""
    leader: LeaderElector | None = None
    """None: leader election is off and this process always reconciles."""
    rounds: MeasurementRounds | None = None
    """Analysis measurements in flight (created once the event loop runs)."""
    cache_synced: bool = False
    """The watches have listed (reconciles may start)."""
    leader_first_pass: bool = False
    """Set on becoming the leader until the first pass after it finished (logged)."""

    def leading(self) -> bool:
        """Whether this replica may reconcile and write."""
        return self.leader is None or self.leader.leading.is_set()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> OperatorContext:
        settings = Settings(
            prometheus_url=args.prometheus_url,
            operator_image=args.operator_image,
            resync_seconds=args.resync_seconds,
            full_resync_seconds=args.full_resync_seconds,
            eval_endpoint_template=args.eval_endpoint_template,
            prices=load_prices(args.gpu_prices),
            cost_window=args.cost_window,
            cost_refresh_seconds=args.cost_refresh_seconds,
            prometheus_timeout_seconds=args.prometheus_timeout_seconds,
            eval_run_history=args.eval_run_history,
        )
        if settings.prices.error:
            logging.getLogger("llmops.cost").error(
                "cost accounting without prices: %s", settings.prices.error
            )
        kube = Kube()
        ctx = cls(
            kube=kube,
            verdict_key=verdict.load_master_key(kube),
            settings=settings,
            token_rates=TokenRates(PrometheusVectors(args.prometheus_url), window=args.cost_window),
        )
        # Hub lookups on their own threads: a reconcile worker never waits on the network
        ctx.facts = FactsCache(
            HuggingFaceHub(),
            executor=ThreadPoolExecutor(2, thread_name_prefix="model-facts"),
            on_ready=ctx.requeue,
        )
        return ctx

    def requeue(self, keys: set[Any]) -> None:
        """Queue these Models for a pass (e.g. once the Hub answered for them)."""
        for key in keys:
            self.queue.add(key)

    def forget_model(self, key: Key) -> None:
        """A deleted Model: nothing kept per Model outlives it (issue 15)."""
        namespace, name = key
        self.metrics.forget(namespace, name)
        self.passes.forget(key)
        self.backoff.succeeded(key)  # its failure count, when it was deleted while failing
        self.applied.forget_model(namespace, name)
        self.kube.events.forget_involved(namespace, "Model", name)
        if self.rounds is not None:
            self.rounds.forget(key)

    def forget_object(self, kind: str, namespace: str, name: str, uid: str | None = None) -> None:
        """An object is gone (watch DELETED, the cache audit, our delete): its last apply and
        write go, and a deleted EvalRun's identity objects, which garbage collection removes
        without an event we watch."""
        keys = [(kind, namespace, name)]
        if kind == "EvalRun":
            keys += [(k, namespace, n) for k, n in eval_run_objects(name)]
        self.applied.forget(keys)
        if uid:
            self.passes.forget_written(uid)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": self.formatTime(record),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


def configure_logging(log_format: str, verbose: bool) -> None:
    """plain: one line per record; json: one JSON object per line; full: with logger and thread."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    elif log_format == "full":
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(name)s %(threadName)s] %(message)s")
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    if not verbose:  # kopf reports every successful event handler at INFO
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
