"""Drop cache entries whose objects were deleted while a watch was down.

A watch that reconnects after a gap lists again, but kopf reports only what it finds, never
what vanished: an object deleted during the gap would stay in the cache forever (and a Model
would keep planning around a Deployment that is gone). Every `LLMOPS_CACHE_AUDIT_SECONDS` each
cache is compared with a LIST of the namespaces it holds (metadata only: names are all it needs);
what the list lacks and is not newer than the list is dropped, and its Model gets a pass.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from llmops_operator.api.common import LABEL_MANAGED_BY, LABEL_MODEL
from llmops_operator.kube.client import KubeError
from llmops_operator.runtime.context import OperatorContext

log = logging.getLogger("llmops.cache")
AUDIT_SECONDS = float(os.environ.get("LLMOPS_CACHE_AUDIT_SECONDS", "300"))
MANAGED_SELECTOR = f"{LABEL_MANAGED_BY}=llmops-operator"
AUDITED: dict[str, str | None] = {
    "Model": None,
    "Deployment": MANAGED_SELECTOR,
    "Service": MANAGED_SELECTOR,
    "Job": MANAGED_SELECTOR,
    "PersistentVolumeClaim": MANAGED_SELECTOR,
    "ConfigMap": MANAGED_SELECTOR,
    "Pod": LABEL_MODEL,
    "EvalRun": LABEL_MODEL,
}
"""Kind -> the label selector its watch uses."""


def audit(ctx: OperatorContext) -> int:
    """One comparison of every audited cache with the API server; returns entries dropped."""
    dropped = 0
    for kind, selector in AUDITED.items():
        cache = ctx.store.cache_for(kind)
        for namespace in sorted(cache.namespaces()):
            try:
                names, version = ctx.kube.list_names(kind, namespace, selector)
            except KubeError as exc:
                log.debug("cache audit of %s in %s failed: %s", kind, namespace, exc)
                continue
            gone = cache.drop_missing(namespace, names, int(version or 0))
            for obj in gone:
                _gone(ctx, kind, namespace, obj)
            dropped += len(gone)
    return dropped


def _gone(ctx: OperatorContext, kind: str, namespace: str, obj: dict[str, Any]) -> None:
    name = obj["metadata"]["name"]
    log.info("%s %s/%s was deleted while a watch was down; dropped from the cache", kind, namespace, name)
    ctx.forget_object(kind, namespace, name, obj["metadata"].get("uid"))
    model = name if kind == "Model" else (obj["metadata"].get("labels") or {}).get(LABEL_MODEL)
    if not model or ctx.loop is None:
        return
    key = (namespace, model)
    if kind == "Model":
        ctx.loop.call_soon_threadsafe(ctx.queue.forget, key)
        ctx.forget_model(key)
    else:
        ctx.loop.call_soon_threadsafe(ctx.queue.add, key)


async def audit_forever(ctx: OperatorContext, every: float = AUDIT_SECONDS) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(audit, ctx)
        except Exception:  # an audit must never stop the operator
            log.exception("cache audit failed")
