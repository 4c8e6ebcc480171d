"""kopf wiring: settings, watch events into caches and the work queue, and the reconcile workers.

Nothing here decides anything about a Model; see `handlers/model.py` for the reconcile pass and the
pure modules it calls.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from llmops_operator.api.common import GROUP, LABEL_MODEL, MANAGED_LABELS, VERSION
from llmops_operator.handlers.eval_gates import reconcile_eval_gate
from llmops_operator.handlers.model import reconcile_model
from llmops_operator.handlers.prompt_versions import reconcile_prompt_version
from llmops_operator.runtime.context import OperatorContext, configure_logging

log = logging.getLogger("llmops.runtime")
CONTEXT: OperatorContext | None = None
MANAGED = dict(MANAGED_LABELS)
STARTUP_GRACE_SECONDS = float(os.environ.get("LLMOPS_STARTUP_GRACE_SECONDS", "2"))
WORKERS = int(os.environ.get("LLMOPS_WORKERS", "32"))
"""Concurrent reconciles. Passes mostly wait on the API server, so this is well above the cores."""


def _ctx() -> OperatorContext:
    assert CONTEXT is not None, "the operator context is created before kopf starts"
    return CONTEXT


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Only event handlers: kopf adds no finalizer or annotation to user objects."""
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.reconnect_backoff = 1.0
    settings.networking.request_timeout = 30
    ctx = _ctx()
    ctx.loop = asyncio.get_running_loop()
    ctx.queue.bind(ctx.loop)
    ctx.loop.set_default_executor(ThreadPoolExecutor(WORKERS + 4, thread_name_prefix="reconcile"))
    ctx.tasks.append(asyncio.create_task(_start_workers(ctx)))


async def _start_workers(ctx: OperatorContext) -> None:
    """Reconciles start after a grace period, so the watches of owned objects have listed first:
    a pass planned from an empty cache would take a live Deployment for a lost one."""
    await asyncio.sleep(STARTUP_GRACE_SECONDS)
    for _index in range(WORKERS):
        ctx.tasks.append(asyncio.create_task(ctx.queue.worker(_reconcile_async)))


@kopf.on.cleanup()
async def stop_workers(**_: Any) -> None:
    """On SIGTERM: no new passes, and the Events already decided are still posted."""
    _ctx().queue.close()
    for task in _ctx().tasks:
        task.cancel()
    await asyncio.to_thread(_ctx().events.shutdown, wait=True)


async def _reconcile_async(key: Any) -> float | None:
    return await asyncio.to_thread(reconcile_model, _ctx(), key)


def _enqueue_owner(obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    model = (meta.get("labels") or {}).get(LABEL_MODEL)
    if model:
        _ctx().queue.add((meta["namespace"], model))


@kopf.on.event(GROUP, VERSION, "models")
def model_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    obj = _ctx().store.on_event("Model", type, body)
    key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
    if type == "DELETED":
        _ctx().queue.forget(key)
        _ctx().forget_model(key)
    else:
        _ctx().queue.add(key)
    _refresh_used_by(obj)


def _refresh_used_by(model: dict[str, Any]) -> None:
    """PromptVersion usedBy follows Model bindings: re-check the versions this Model binds or
    is listed by (a status write happens only when usedBy changed)."""
    ctx = _ctx()
    namespace, name = model["metadata"]["namespace"], model["metadata"]["name"]
    bound = {p.get("name") for p in (model.get("spec") or {}).get("prompts") or []}
    for (pv_namespace, _), pv in list(ctx.store.prompt_versions.objects.items()):
        listed = name in ((pv.get("status") or {}).get("usedBy") or [])
        if pv_namespace == namespace and ((pv.get("spec") or {}).get("prompt") in bound or listed):
            reconcile_prompt_version(ctx, pv)


def _child_handler(kind: str, *resource: str, labels: dict[str, Any]) -> None:
    def handler(type: str | None, body: kopf.Body, **_: Any) -> None:
        _enqueue_owner(_ctx().store.on_event(kind, type, body))

    handler.__name__ = handler.__qualname__ = f"{kind.lower()}_event"
    kopf.on.event(*resource, labels=labels)(handler)


_child_handler("Deployment", "apps", "v1", "deployments", labels=MANAGED)
_child_handler("Service", "v1", "services", labels=MANAGED)
_child_handler("Job", "batch", "v1", "jobs", labels=MANAGED)
_child_handler("PersistentVolumeClaim", "v1", "persistentvolumeclaims", labels=MANAGED)
_child_handler("ConfigMap", "v1", "configmaps", labels=MANAGED)
_child_handler("Pod", "v1", "pods", labels={LABEL_MODEL: kopf.PRESENT})


@kopf.on.event(GROUP, VERSION, "evalruns", labels={LABEL_MODEL: kopf.PRESENT})
def eval_run_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    """An EvalRun feeds its Model's gate step, and is its EvalGate's last run."""
    ctx = _ctx()
    obj = ctx.store.on_event("EvalRun", type, body)
    _enqueue_owner(obj)
    gate = ctx.store.eval_gates.get(obj["metadata"]["namespace"], (obj.get("spec") or {}).get("gate", ""))
    if type != "DELETED" and gate is not None:
        reconcile_eval_gate(ctx, gate)


@kopf.on.event(GROUP, VERSION, "promptversions")
def prompt_version_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    """A new or changed PromptVersion may unblock Models that bind it, and gets validated."""
    ctx = _ctx()
    obj = ctx.store.on_event("PromptVersion", type, body)
    namespace = obj["metadata"]["namespace"]
    prompt = (obj.get("spec") or {}).get("prompt")
    for (model_ns, model_name), model in list(ctx.store.models.objects.items()):
        bound = [p.get("name") for p in (model.get("spec") or {}).get("prompts") or []]
        if model_ns == namespace and prompt in bound:
            ctx.queue.add((model_ns, model_name))
    if type != "DELETED":
        reconcile_prompt_version(ctx, obj)


@kopf.on.event(GROUP, VERSION, "evalgates")
def eval_gate_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    """Cache the gate for rollouts, and say at apply time when its assertions cannot compile."""
    obj = _ctx().store.on_event("EvalGate", type, body)
    if type != "DELETED":
        reconcile_eval_gate(_ctx(), obj)


@kopf.on.event("v1", "nodes")
def node_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    """GPU inventory for the planner."""
    name = body["metadata"]["name"]
    if type == "DELETED":
        _ctx().store.nodes.pop(name, None)
    else:
        _ctx().store.nodes[name] = {
            "labels": dict(body["metadata"].get("labels") or {}),
            "allocatable": dict((body.get("status") or {}).get("allocatable") or {}),
        }


def run_operator(args: argparse.Namespace) -> int:
    """Start kopf in this process; returns when it stops."""
    global CONTEXT
    configure_logging(args.log_format, args.verbose)
    CONTEXT = OperatorContext.from_args(args)
    queue = CONTEXT.queue
    CONTEXT.metrics.track_queue(lambda: len(queue))
    if args.metrics_port:
        CONTEXT.metrics.serve(args.metrics_address, args.metrics_port)
    namespaces = list(args.namespace or [])
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=True,
        )
    )
    return 0
