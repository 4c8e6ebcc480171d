"""Executing a Model's plan against the API server: server-side apply of owned objects (skipped
when the body and the object are unchanged since our last apply), scaling, deletes, one status
merge patch guarded by resourceVersion, then Events off the reconcile path."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llmops_operator import conditions as cond
from llmops_operator.api.common import API_VERSION, LABEL_MODEL
from llmops_operator.hashing import digest
from llmops_operator.kube.client import KubeError, NotFound
from llmops_operator.model_plan import ModelPlan
from llmops_operator.redact import bounded
from llmops_operator.runtime.applied import Applied
from llmops_operator.runtime.context import OperatorContext
from llmops_operator.runtime.failures import Failure, with_reconcile_error

log = logging.getLogger("llmops.apply")
CREATE_ONCE = frozenset({"Job", "EvalRun"})
"""Kinds created once and never re-applied: a Job's pod template is immutable (a new operator
image would get 422 on every pass), and an EvalRun's status belongs to its eval Job."""


def _fingerprint(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("generation") or meta.get("resourceVersion") or "")


def apply_owned(ctx: OperatorContext, obj: dict[str, Any]) -> None:
    """Server-side apply unless the same body was applied and nobody changed the object since."""
    meta = obj["metadata"]
    key = (obj["kind"], meta["namespace"], meta["name"])
    cache = _cache(ctx, obj["kind"])
    observed = cache.get(meta["namespace"], meta["name"]) if cache else None
    body_hash = digest(obj)
    last = ctx.applied.get(key)
    if last is not None and last.body_hash == body_hash:
        if cache is None:
            return  # not watched (ServiceAccount, Role, ...): applied once per operator start
        if observed is not None and last.fingerprint == _fingerprint(observed):
            return
    result = ctx.kube.apply(obj)
    model = (meta.get("labels") or {}).get(LABEL_MODEL)
    ctx.applied.put(key, Applied(body_hash, _fingerprint(result), model))
    if cache is not None:
        ctx.passes.wrote(result)
        cache.upsert(result)


def create_once(ctx: OperatorContext, obj: dict[str, Any]) -> None:
    """Create a Job or EvalRun unless it exists; an existing one is left as it is (a changed
    Job comes with a new name)."""
    meta = obj["metadata"]
    cache = ctx.store.cache_for(obj["kind"])
    if cache.get(meta["namespace"], meta["name"]) is not None:
        return
    created = ctx.kube.create_if_absent(obj)
    if created is not None:
        ctx.passes.wrote(created)
        cache.upsert(created)


def _cache(ctx: OperatorContext, kind: str) -> Any:
    try:
        return ctx.store.cache_for(kind)
    except KeyError:
        return None


def merge_patch(current: Any, desired: Any) -> Any:
    """RFC 7386 merge patch turning `current` into `desired` (None = nothing to change)."""
    if not isinstance(current, dict) or not isinstance(desired, dict):
        return None if current == desired else desired
    patch: dict[str, Any] = {}
    for key in current.keys() - desired.keys():
        patch[key] = None
    for key, value in desired.items():
        if key not in current:
            patch[key] = value
            continue
        sub = merge_patch(current[key], value)
        if sub is not None or (value is None and current[key] is not None):
            patch[key] = sub
    return patch or None


def execute(ctx: OperatorContext, model: dict[str, Any], plan: ModelPlan, now: datetime) -> PassResult:
    """Apply, scale, delete, route, status, Events, in that order. A step the API server refuses
    is recorded and the others still run (a rejected canary never blocks an abort, a rollback or
    the stable revision's scaling); the status then carries ReconcileError naming it."""
    meta = model["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    failures: list[Failure] = []
    for obj in plan.apply:
        step = create_once if obj["kind"] in CREATE_ONCE else apply_owned
        _attempt(failures, "apply", obj["kind"], obj["metadata"]["name"], step, ctx, obj)
    for deployment, replicas in plan.scale.items():
        _attempt(failures, "scale", "Deployment", deployment, _scale, ctx, namespace, deployment, replicas)
    for kind, object_name in plan.delete:
        _attempt(failures, "delete", kind, object_name, _delete, ctx, kind, namespace, object_name)
    if plan.route_patch is not None:
        route = plan.route_patch["metadata"]["name"]
        _attempt(failures, "route", plan.route_patch["kind"], route, ctx.kube.apply, plan.route_patch)
    status, warning = with_reconcile_error(plan.status, failures, now, meta.get("generation"))
    events = [*plan.events, ("Warning", cond.RECONCILE_ERROR, warning[1])] if warning else plan.events
    patch = merge_patch(model.get("status") or {}, status)
    if patch:
        try:
            result = ctx.kube.patch_status(
                "Model", namespace, name, patch, resource_version=meta.get("resourceVersion")
            )
        except NotFound:
            return PassResult(None, failures)
        except KubeError as exc:
            if exc.status == 409:
                raise  # a user wrote status since we read it: plan again from theirs
            failures.append(Failure("status", f"Model {name}", exc.message or str(exc)))
            record_failure(ctx, model, failures, now)
            return PassResult(None, failures)
        ctx.passes.wrote(result)
        ctx.store.models.upsert(result)
    if events:
        involved = {**model, "apiVersion": API_VERSION, "kind": "Model"}
        ctx.events.submit(_post_events, ctx, involved, events, now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    ctx.metrics.record_model(namespace, name, plan.status, ctx.store.eval_runs.owned_by(namespace, name))
    if any(reason == "RolledBack" for _, reason, _ in plan.events):
        ctx.metrics.count_rollback(namespace, name)
    ctx.metrics.set_monitoring(namespace, name, plan.status)
    for gate in plan.scheduled_evaluations:
        ctx.metrics.count_scheduled_evaluation(namespace, name, gate)
    return PassResult(plan.requeue_after, failures)


@dataclass(frozen=True)
class PassResult:
    requeue_after: float | None
    """The plan's own next pass (None: nothing scheduled)."""
    failures: list[Failure]
    """Steps the API server refused (empty for a clean pass)."""
    skipped: bool = False
    """Nothing the pass depends on changed, so it planned nothing (runtime/pass_cache.py)."""


def record_failure(
    ctx: OperatorContext, model: dict[str, Any], failures: list[Failure], now: datetime
) -> None:
    """ReconcileError on a Model whose pass could not write its planned status: only the
    conditions are patched (the rest of its status is kept as it was)."""
    meta = model["metadata"]
    status, warning = with_reconcile_error(model.get("status") or {}, failures, now, meta.get("generation"))
    write_status(
        ctx,
        "Model",
        model,
        {"conditions": status["conditions"]},
        (cond.RECONCILE_ERROR, warning[1]) if warning else None,
    )


def _attempt(failures: list[Failure], stage: str, kind: str, name: str, step: Any, *args: Any) -> None:
    """Run one step; a refusal is recorded for the condition and logged in one line."""
    try:
        step(*args)
    except NotFound as exc:  # e.g. the namespace is being deleted
        log.warning("%s %s %s: not found: %s", stage, kind, name, bounded(exc))
        failures.append(Failure(stage, f"{kind} {name}", f"not found: {exc}"))
    except KubeError as exc:
        log.warning("%s %s %s refused: %s", stage, kind, name, bounded(exc))
        failures.append(Failure(stage, f"{kind} {name}", exc.message or str(exc)))


def _scale(ctx: OperatorContext, namespace: str, deployment: str, replicas: int) -> None:
    current = ctx.store.deployments.get(namespace, deployment)
    before = (current or {}).get("spec", {}).get("replicas")
    if current is None or before == replicas:
        return
    patch = {"spec": {"replicas": replicas}}
    if before is not None and replicas < before:  # only what the cache saw is scaled down
        version = current["metadata"]["resourceVersion"]
        result = ctx.kube.patch_guarded("Deployment", namespace, deployment, patch, version)
    else:
        result = ctx.kube.patch("Deployment", namespace, deployment, patch)
    ctx.passes.wrote(result)
    ctx.store.deployments.upsert(result)


def _delete(ctx: OperatorContext, kind: str, namespace: str, object_name: str) -> None:
    cache = _cache(ctx, kind)
    uid = None
    if cache is None:  # not watched (an eval run's ServiceAccount, Role, ...): by its name
        ctx.kube.delete(kind, namespace, object_name)
    else:
        observed = cache.get(namespace, object_name)
        if observed is None:
            return  # never delete what this replica did not observe
        if not ctx.kube.delete(kind, namespace, object_name, observed=observed):
            return
        cache.remove(namespace, object_name)
        uid = observed["metadata"].get("uid")
    # forget the last apply: an object of an unwatched kind (InferencePool) is applied again
    # when a later pass wants it back (e.g. a retried revision), and nothing stays behind
    ctx.forget_object(kind, namespace, object_name, uid)


def _post_events(
    ctx: OperatorContext, involved: dict[str, Any], events: list[tuple[str, str, str]], stamp: str
) -> None:
    """Events go out after the status write, off the reconcile path: they inform, never decide."""
    meta = involved["metadata"]
    for type_, reason, message in events:
        try:
            ctx.kube.post_event(involved, type_, reason, message, stamp)
        except KubeError as exc:
            log.warning("could not post Event %s on %s/%s: %s", reason, meta["namespace"], meta["name"], exc)


def write_status(
    ctx: OperatorContext,
    kind: str,
    obj: dict[str, Any],
    status: dict[str, Any],
    warning: tuple[str, str] | None,
) -> None:
    """Patch the status, then post the Warning Event (reason, message) if there is one. Only the
    leader writes (a new leader re-checks every PromptVersion and EvalGate)."""
    meta = obj["metadata"]
    if not ctx.leading():
        return
    try:
        ctx.kube.patch_status(kind, meta["namespace"], meta["name"], status)
        if warning is not None:
            involved = {**obj, "apiVersion": API_VERSION, "kind": kind}
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            ctx.kube.post_event(involved, "Warning", warning[0], warning[1], stamp)
    except (NotFound, KubeError) as exc:
        log.warning("could not write status of %s %s/%s: %s", kind, meta["namespace"], meta["name"], exc)


def status_unchanged(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Whether writing `desired` would change nothing but condition timestamps."""

    def summary(status: dict[str, Any]) -> dict[str, Any]:
        conditions = sorted(
            (c.get("type"), c.get("status"), c.get("reason"), c.get("message"), c.get("observedGeneration"))
            for c in status.get("conditions") or []
        )
        return {**status, "conditions": conditions}

    return all(summary(current).get(k) == v for k, v in summary(desired).items())
