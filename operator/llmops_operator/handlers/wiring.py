"""kopf wiring: settings, watch events into caches and the work queue, and the reconcile workers.

Nothing here decides anything about a Model; see `handlers/model.py` for the reconcile pass and the
pure modules it calls.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kopf

from llmops_operator.api.common import GROUP, LABEL_MODEL, MANAGED_LABELS, VERSION
from llmops_operator.gpu.inventory import parse_node
from llmops_operator.handlers.eval_gates import reconcile_eval_gate
from llmops_operator.handlers.model import reconcile_model
from llmops_operator.handlers.prompt_versions import reconcile_prompt_version
from llmops_operator.kube.client import Kube, KubeError
from llmops_operator.kube.watch import KindWatch, covered, scopes
from llmops_operator.rollout.analysis.rounds import MeasurementRounds
from llmops_operator.runtime import cache_audit, health, memory
from llmops_operator.runtime.context import OperatorContext, configure_logging
from llmops_operator.runtime.leader import LeaderElector, LeaseConfig

log = logging.getLogger("llmops.runtime")
REGISTRY = kopf.OperatorRegistry()
"""The handlers below, and nothing else: importing this module changes no global state, and
`run_operator` hands kopf this registry."""
CONTEXT: OperatorContext | None = None
MANAGED = dict(MANAGED_LABELS)
STARTUP_GRACE_SECONDS = float(os.environ.get("LLMOPS_STARTUP_GRACE_SECONDS", "2"))
WORKERS = int(os.environ.get("LLMOPS_WORKERS", "32"))
"""Concurrent reconciles. Passes mostly wait on the API server, so this is well above the cores."""
OnEvent = Callable[[str, dict[str, Any]], None]
"""(event type, object) -> None: what a watch event does, on the event loop."""
DRAIN_SECONDS = 10.0
"""On SIGTERM, how long the passes in flight may take to finish before the Lease is released."""


class _RetryForever:
    """kopf's API request backoffs, never exhausted: with its default (about 90 s in all) an API
    server outage longer than that ends the watches for good."""

    def __iter__(self) -> Iterator[float]:
        return itertools.chain((1.0, 2.0, 4.0, 8.0), itertools.repeat(10.0))


def _ctx() -> OperatorContext:
    assert CONTEXT is not None, "the operator context is created before kopf starts"
    return CONTEXT


class NoDiffBase(kopf.DiffBaseStorage):
    """Only event handlers are registered, so kopf's change detection (create/update/delete
    causes) has nothing to compare: skip the deep copy of every body it makes per event."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


@kopf.on.login(registry=REGISTRY)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """The kubeconfig or in-cluster credentials, as kopf's default registry logs in."""
    return kopf.login_via_client(**kwargs)


@kopf.on.startup(registry=REGISTRY)
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Only event handlers: kopf adds no finalizer or annotation to user objects."""
    settings.posting.level = logging.INFO
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.reconnect_backoff = 1.0
    settings.networking.request_timeout = 30
    settings.networking.error_backoffs = _RetryForever()
    ctx = _ctx()
    loop = ctx.loop = asyncio.get_running_loop()
    ctx.queue.bind(loop)
    loop.set_default_executor(ThreadPoolExecutor(WORKERS + 4, thread_name_prefix="reconcile"))
    ctx.rounds = MeasurementRounds(ctx.settings.prometheus_timeout_seconds, on_done=ctx.queue.add)
    if ctx.leader is not None:
        ctx.queue.open.clear()  # standby until the Lease is ours
        ctx.leader.on_started = lambda: loop.call_soon_threadsafe(_became_leader, ctx)
        ctx.leader.on_stopped = lambda: loop.call_soon_threadsafe(ctx.queue.open.clear)
    _start_watches(ctx, loop)
    ctx.tasks.append(asyncio.create_task(_start_workers(ctx)))


def _start_watches(ctx: OperatorContext, loop: asyncio.AbstractEventLoop) -> None:
    """One `KindWatch` per kind of `WATCHED` and namespace (or one across all)."""
    watched, counts = scopes(ctx.watch_namespaces)
    for kind, api_version, selector, on_event in WATCHED:
        for namespace in watched:

            def cached(kind: str = kind, namespace: str | None = namespace) -> dict[str, dict[str, Any]]:
                return covered(ctx.store.cache_for(kind).objects, namespace, counts)

            def deliver(type_: str, obj: dict[str, Any], on_event: OnEvent = on_event) -> None:
                if counts((obj.get("metadata") or {}).get("namespace") or ""):
                    loop.call_soon_threadsafe(on_event, type_, obj)

            watch = KindWatch(ctx.kube, kind, api_version, selector, namespace, deliver, cached)
            ctx.watches.append(watch)
            watch.start()


async def _start_workers(ctx: OperatorContext) -> None:
    """Reconciles start once the watches of owned objects have listed (and after a grace period
    for kopf's): a pass planned from an empty cache would take a live Deployment for a lost one.
    Leader election starts then too: a standby's caches are warm, so its takeover is one pass."""
    await asyncio.sleep(STARTUP_GRACE_SECONDS)
    while not all(watch.listed.is_set() for watch in ctx.watches):
        await asyncio.sleep(0.1)
    ctx.cache_synced = True
    for _index in range(WORKERS):
        ctx.tasks.append(asyncio.create_task(ctx.queue.worker(_reconcile_async)))
    ctx.tasks.append(asyncio.create_task(cache_audit.audit_forever(ctx)))
    ctx.tasks.append(asyncio.create_task(memory.trim_forever()))
    if ctx.leader is not None:
        ctx.leader.start()


def _became_leader(ctx: OperatorContext) -> None:
    """Every Model gets a pass at once, and PromptVersion / EvalGate status is re-checked
    (their status writes were skipped while standing by)."""
    ctx.leader_first_pass = True
    ctx.queue.open.set()
    for key in list(ctx.store.models.objects):
        ctx.queue.add(key)
    assert ctx.loop is not None
    for pv in list(ctx.store.prompt_versions.objects.values()):
        ctx.loop.run_in_executor(None, reconcile_prompt_version, ctx, pv)
    for gate in list(ctx.store.eval_gates.objects.values()):
        ctx.loop.run_in_executor(None, reconcile_eval_gate, ctx, gate)


@kopf.on.cleanup(registry=REGISTRY)
async def stop_workers(**_: Any) -> None:
    """On SIGTERM: no new passes, the Lease is released once the passes in flight are done
    (so the next replica takes over at once), and the Events already decided are still posted."""
    ctx = _ctx()
    ctx.queue.open.clear()
    ctx.queue.close()
    for watch in ctx.watches:
        watch.stop.set()
    await ctx.queue.drained(timeout=DRAIN_SECONDS)
    for task in ctx.tasks:
        task.cancel()
    if ctx.rounds is not None:
        ctx.rounds.shutdown()
    if ctx.leader is not None:
        await asyncio.to_thread(ctx.leader.stop, True)
    await asyncio.to_thread(ctx.events.shutdown, wait=True)


async def _reconcile_async(key: Any) -> float | None:
    ctx = _ctx()
    requeue = await asyncio.to_thread(reconcile_model, ctx, key)
    if ctx.leader_first_pass and ctx.leading():
        ctx.leader_first_pass = False  # takeover time = kill of the old leader -> this line
        log.info("first reconcile pass as leader done at %.3f (unix time)", time.time())
    return requeue


def cache_event(kind: str, type_: str | None, body: Any) -> dict[str, Any]:
    """The watch event into its cache; a deleted object's apply and write records go too."""
    ctx = _ctx()
    obj = ctx.store.on_event(kind, type_, body)
    if type_ == "DELETED":
        meta = obj["metadata"]
        ctx.forget_object(kind, meta["namespace"], meta["name"], meta.get("uid"))
    return obj


def _enqueue_owner(obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    model = (meta.get("labels") or {}).get(LABEL_MODEL)
    if model:
        _ctx().queue.add((meta["namespace"], model))


def model_event(type_: str, event_object: dict[str, Any]) -> None:
    """On the event loop (a cache update and a queue add, no I/O); only re-checking
    PromptVersions this Model binds or is listed by goes to a thread."""
    ctx = _ctx()
    obj = cache_event("Model", type_, event_object)
    key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
    if type_ == "DELETED":
        ctx.queue.forget(key)
        ctx.forget_model(key)
    else:
        ctx.queue.add(key)
    versions = _used_by_versions(ctx, obj, deleted=type_ == "DELETED")
    if versions and ctx.loop is not None:
        ctx.loop.run_in_executor(None, _refresh_used_by, ctx, versions)


def owned_event(kind: str) -> OnEvent:
    """An owned object's event: into its cache, and its Model gets a pass."""

    def on_event(type_: str, obj: dict[str, Any]) -> None:
        _enqueue_owner(cache_event(kind, type_, obj))

    return on_event


def _used_by_versions(
    ctx: OperatorContext, model: dict[str, Any], deleted: bool = False
) -> list[dict[str, Any]]:
    """PromptVersions whose usedBy disagrees with this Model: bound but not listed, or listed
    but no longer bound. Re-checking every version of a bound prompt on every Model event cost
    each status write of N Models (versions x N) validations: the soak's 200 Models and 21
    versions spent most of the operator's CPU so."""
    namespace, name = model["metadata"]["namespace"], model["metadata"]["name"]
    bound = (
        set()
        if deleted
        else {(p.get("name"), p.get("version")) for p in (model.get("spec") or {}).get("prompts") or []}
    )
    found = []
    for (pv_namespace, _), pv in list(ctx.store.prompt_versions.objects.items()):
        if pv_namespace != namespace:
            continue
        spec = pv.get("spec") or {}
        listed = name in ((pv.get("status") or {}).get("usedBy") or [])
        if ((spec.get("prompt"), spec.get("version")) in bound) != listed:
            found.append(pv)
    return found


def _refresh_used_by(ctx: OperatorContext, versions: list[dict[str, Any]]) -> None:
    """PromptVersion usedBy follows Model bindings (a status write happens only when usedBy
    changed)."""
    for pv in versions:
        reconcile_prompt_version(ctx, pv)


def _child_handler(kind: str, *resource: str, labels: dict[str, Any]) -> None:
    async def handler(type: str | None, event: kopf.RawEvent, **_: Any) -> None:
        # on the event loop: a cache update and a queue add, no I/O, so no hop to a thread
        _enqueue_owner(cache_event(kind, type, event["object"]))

    handler.__name__ = handler.__qualname__ = f"{kind.lower()}_event"
    kopf.on.event(*resource, labels=labels, registry=REGISTRY)(handler)


_child_handler("Job", "batch", "v1", "jobs", labels=MANAGED)
_child_handler("PersistentVolumeClaim", "v1", "persistentvolumeclaims", labels=MANAGED)
_child_handler("ConfigMap", "v1", "configmaps", labels=MANAGED)

WATCHED: list[tuple[str, str, str, OnEvent]] = []
"""(kind, apiVersion, label selector, what an event does) of the kinds watched without kopf
(`kube/watch.py`): the Models and the owned kinds whose events are most of a Model's, from
create to Ready (kopf spent about 2 ms of CPU per event on them)."""


def watch_kind(kind: str, api_version: str, selector: str, on_event: OnEvent | None = None) -> None:
    """Watch `kind`; by default an event goes into its cache and wakes the owning Model."""
    WATCHED.append((kind, api_version, selector, on_event or owned_event(kind)))


watch_kind("Model", f"{GROUP}/{VERSION}", "", model_event)
watch_kind("Deployment", "apps/v1", cache_audit.MANAGED_SELECTOR)
watch_kind("Service", "v1", cache_audit.MANAGED_SELECTOR)
watch_kind("Pod", "v1", LABEL_MODEL)


@kopf.on.event(GROUP, VERSION, "evalruns", labels={LABEL_MODEL: kopf.PRESENT}, registry=REGISTRY)
def eval_run_event(type: str | None, event: kopf.RawEvent, **_: Any) -> None:
    """An EvalRun feeds its Model's gate step, and is its EvalGate's last run."""
    ctx = _ctx()
    obj = cache_event("EvalRun", type, event["object"])
    _enqueue_owner(obj)
    gate = ctx.store.eval_gates.get(obj["metadata"]["namespace"], (obj.get("spec") or {}).get("gate", ""))
    if type != "DELETED" and gate is not None:
        reconcile_eval_gate(ctx, gate)


@kopf.on.event(GROUP, VERSION, "promptversions", registry=REGISTRY)
def prompt_version_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    """A new or changed PromptVersion may unblock Models that bind it, and gets validated."""
    ctx = _ctx()
    obj = cache_event("PromptVersion", type, body)
    namespace = obj["metadata"]["namespace"]
    prompt = (obj.get("spec") or {}).get("prompt")
    for (model_ns, model_name), model in list(ctx.store.models.objects.items()):
        bound = [p.get("name") for p in (model.get("spec") or {}).get("prompts") or []]
        if model_ns == namespace and prompt in bound:
            ctx.queue.add((model_ns, model_name))
    if type != "DELETED":
        reconcile_prompt_version(ctx, obj)


@kopf.on.event(GROUP, VERSION, "evalgates", registry=REGISTRY)
def eval_gate_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    """Cache the gate for rollouts, and say at apply time when its assertions cannot compile."""
    obj = cache_event("EvalGate", type, body)
    if type != "DELETED":
        reconcile_eval_gate(_ctx(), obj)


@kopf.on.event("v1", "nodes", registry=REGISTRY)
def node_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    """GPU inventory for the planner; a Warning Event on a node whose GPU labels do not parse
    (once per change of what is wrong), which is then left out of planning."""
    ctx = _ctx()
    meta = body["metadata"]
    name = meta["name"]
    if type == "DELETED":
        ctx.store.nodes.pop(name, None)
        ctx.kube.events.forget_involved("default", "Node", name)
        return
    before = ctx.store.nodes.get(name)
    if (
        before is not None
        and meta.get("resourceVersion")
        and before.resource_version == meta["resourceVersion"]
    ):
        return  # parsed already (a relist repeats every node)
    node = parse_node(name, body)
    ctx.store.nodes[name] = node
    if node.problem and node.problem != (before.problem if before else None):
        involved = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": meta.get("uid")}}
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        message = f"{node.problem}; node {name} is left out of GPU planning until it is fixed"
        ctx.events.submit(_post_node_event, ctx, involved, message, stamp)


def _post_node_event(ctx: OperatorContext, involved: dict[str, Any], message: str, stamp: str) -> None:
    try:
        ctx.kube.post_event(involved, "Warning", "InvalidGpuLabels", message, stamp)
    except KubeError as exc:
        log.warning("could not post Event on node %s: %s", involved["metadata"]["name"], exc)


SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _own_namespace() -> str:
    """The namespace the operator runs in (the Lease lives there); `default` outside a pod."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    except OSError:
        return "default"


def _health_sources(ctx: OperatorContext, stall_seconds: float) -> health.HealthSources:
    leader = ctx.leader
    started = ctx.queue.last_progress  # without election this process leads from the start
    return health.HealthSources(
        work=lambda: ctx.queue.work,
        busy_since=lambda: ctx.queue.busy_since,
        last_progress=lambda: ctx.queue.last_progress,
        leading_since=(lambda: leader.leading_since) if leader is not None else (lambda: started),
        cache_synced=lambda: ctx.cache_synced,
        stall_seconds=stall_seconds,
    )


def run_operator(args: argparse.Namespace) -> int:
    """Start kopf in this process; returns when it stops."""
    global CONTEXT
    memory.cap_arenas()
    configure_logging(args.log_format, args.verbose)
    CONTEXT = OperatorContext.from_args(args)
    CONTEXT.watch_namespaces = list(args.namespace or [])
    if args.leader_elect:
        patience = args.renew_deadline_seconds / 2  # a hung API server must not outlast the deadline
        CONTEXT.leader = LeaderElector(
            Kube(CONTEXT.kube.api, timeout=(min(5.0, patience), patience)),
            LeaseConfig(
                name=args.leader_election_id,
                namespace=args.leader_election_namespace or _own_namespace(),
                # the pod name in a cluster; outside one, host name plus a random part, so two
                # processes on one machine never both think they hold the Lease
                identity=args.leader_election_identity or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}",
                lease_duration=args.lease_duration_seconds,
                renew_deadline=args.renew_deadline_seconds,
                retry_period=args.retry_period_seconds,
            ),
        )
    queue = CONTEXT.queue
    CONTEXT.metrics.track_queue(lambda: len(queue))
    if args.metrics_port:
        CONTEXT.metrics.serve(args.metrics_address, args.metrics_port)
    if args.health_port:
        try:
            health.serve(args.health_address, args.health_port, _health_sources(CONTEXT, args.stall_seconds))
        except OSError as exc:  # visible, and the kubelet's probes fail: never silent
            log.error("cannot serve /healthz and /readyz on port %s: %s", args.health_port, exc)
    namespaces = list(args.namespace or [])
    asyncio.run(
        kopf.operator(
            registry=REGISTRY,
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=True,
        )
    )
    return 0
