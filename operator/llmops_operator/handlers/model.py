"""One reconcile pass of a Model: gather the world, ask `model_plan`, execute the plan.

The only decisions here are about I/O: skip an apply whose body and target are unchanged since
our last write, and never overwrite a status a user changed after we read it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from llmops_operator import reference_grants
from llmops_operator.api.common import GROUP, LABEL_MODEL, LABEL_REVISION, SecretKeyRef
from llmops_operator.api.model import ModelSpec
from llmops_operator.api.rollout import InferencePoolRouting, RolloutStatus
from llmops_operator.autoscaling.decide import Signals
from llmops_operator.autoscaling.scale_to_zero import Pending, wake_query
from llmops_operator.autoscaling.signals import UnsupportedSignalError, read_signals
from llmops_operator.kube.apply import PassResult, execute, record_failure
from llmops_operator.kube.client import KubeError, NotFound
from llmops_operator.metrics_source.builtins import CostRates
from llmops_operator.metrics_source.provider import PrometheusProvider, redact_url
from llmops_operator.model_plan import ModelPlan, SecretCheck, World, plan_model
from llmops_operator.monitoring.cost import Rates
from llmops_operator.reference_grants import ObjectRef
from llmops_operator.revisions import deployment_name
from llmops_operator.rollout.analysis.rounds import Taken
from llmops_operator.rollout.analysis.run import look_plan, take_measurements
from llmops_operator.rollout.traffic.gateway import GATEWAY_GROUP
from llmops_operator.runtime.context import OperatorContext
from llmops_operator.runtime.failures import Failure, summary
from llmops_operator.runtime.pass_cache import fingerprint
from llmops_operator.runtime.store import Key

log = logging.getLogger("llmops.model")
CONFLICT_RETRY_SECONDS = 0.3


def reconcile_model(ctx: OperatorContext, key: Key) -> float | None:
    """Returns seconds until the next pass (None: nothing scheduled). Never raises: a pass that
    fails anywhere ends in the ReconcileError condition, a Warning Event and a capped backoff."""
    namespace, name = key
    model = ctx.store.models.get(namespace, name)
    if model is None or model["metadata"].get("deletionTimestamp") or not ctx.leading():
        ctx.backoff.succeeded(key)
        return None  # a standby plans nothing; the new leader re-queues every Model
    started = time.monotonic()
    now = datetime.now(UTC)
    try:
        result = _pass(ctx, model, now)
        if result is None:
            return None  # the Lease was lost while this pass planned: nothing was written
    except KubeError as exc:
        if exc.status == 409:  # our status write raced a user's: re-read and plan again
            log.debug("Model %s/%s: conflict, retrying: %s", namespace, name, exc)
            ctx.metrics.reconciles.labels("conflict").inc()
            return CONFLICT_RETRY_SECONDS
        result = PassResult(None, [Failure("read", "", exc.message or str(exc))])
        record_failure(ctx, model, result.failures, now)
    except NotFound:
        return None  # the Model is gone
    except Exception as exc:  # a bug must not stop this Model silently, nor the others
        log.debug("Model %s/%s: pass failed", namespace, name, exc_info=True)
        result = PassResult(None, [Failure("plan", "", f"{type(exc).__name__}: {exc}")])
        record_failure(ctx, model, result.failures, now)
    finally:
        ctx.metrics.count_pass(namespace, name)
        ctx.metrics.reconcile_seconds.observe(time.monotonic() - started)
        ctx.metrics.api_requests.set(ctx.kube.request_count)
        for (verb, resource), count in list(ctx.kube.requests_by.items()):
            ctx.metrics.api_requests_by.labels(verb, resource).set(count)
    if result.failures:
        ctx.metrics.reconciles.labels("error").inc()
        delay = ctx.backoff.failed(key)
        log.warning("Model %s/%s: %s; retrying in %.0fs", namespace, name, summary(result.failures), delay)
        return delay
    ctx.backoff.succeeded(key)
    ctx.metrics.reconciles.labels("unchanged" if result.skipped else "ok").inc()
    resync = ctx.settings.resync_seconds
    return min(result.requeue_after or resync, resync)


def _pass(ctx: OperatorContext, model: dict[str, Any], now: datetime) -> PassResult | None:
    """Gather, plan (again with measurements when the plan asks), execute; None when the Lease
    was lost meanwhile."""
    spec = _spec(model)
    world = gather(ctx, model, spec, now)  # a failed read is recorded by reconcile_model
    key, started = (model["metadata"]["namespace"], model["metadata"]["name"]), time.monotonic()
    unchanged = ctx.passes.skip(key, fingerprint(world), started)
    if unchanged is not None:
        return PassResult(unchanged, [], skipped=True)
    ctx.passes.forget(key)  # a pass that fails is never skipped on retry
    plan = plan_model(world)
    retry_after: float | None = None
    if plan.run_analysis and spec is not None:
        taken = measure(ctx, model, spec, plan, now)
        if taken.measurements is None:  # still measuring: hold the steps, come back soon
            world = replace(world, measurements_pending=True)
            retry_after = max(taken.retry_after, 0.1)
        else:
            world = replace(world, measurements=tuple(taken.measurements))
        plan = plan_model(world)
    if not ctx.leading():
        return None
    result = execute(ctx, model, plan, now)
    if retry_after is not None:
        result = replace(result, requeue_after=min(result.requeue_after or retry_after, retry_after))
    if not result.failures:
        _settle(ctx, key, world, started, result.requeue_after)
    return result


def _settle(ctx: OperatorContext, key: Key, world: World, started: float, requeue: float | None) -> None:
    """Remember the world as this pass left it: the Model and owned objects as our writes
    returned them, so the watch events echoing those writes find nothing new."""
    namespace, name = key
    model, store = ctx.store.models.get(namespace, name), ctx.store
    if model is None:
        ctx.passes.forget(key)
        return
    left = replace(
        world,
        model=model,
        deployments=store.deployments.owned_by(namespace, name),
        jobs=store.jobs.owned_by(namespace, name),
        eval_runs=store.eval_runs.owned_by(namespace, name),
        configmaps=store.configmaps.owned_by(namespace, name),
        service_names=_service_names(ctx, namespace, name),
    )
    ctx.passes.settle(key, world, left, started, requeue, ctx.settings.full_resync_seconds)


def _spec(model: dict[str, Any]) -> ModelSpec | None:
    """The typed spec, validated once per pass; None when invalid (the plan says why, and no
    I/O that depends on the spec is done)."""
    try:
        return ModelSpec.model_validate(model.get("spec") or {})
    except ValidationError:
        return None


# ---------------------------------------------------------------------------------------------
# gather
# ---------------------------------------------------------------------------------------------


def gather(ctx: OperatorContext, model: dict[str, Any], spec: ModelSpec | None, now: datetime) -> World:
    """Everything `plan_model` needs; reads caches, plus the Secret and HTTPRoute when used."""
    meta = model["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    store = ctx.store
    return World(
        model=model,
        now=now,
        operator_image=ctx.settings.operator_image,
        deployments=_deployments(ctx, model),
        pods=store.pods.owned_by(namespace, name),
        jobs=store.jobs.owned_by(namespace, name),
        prompt_versions=store.prompt_versions.in_namespace(namespace),
        eval_runs=store.eval_runs.owned_by(namespace, name),
        eval_gates=store.eval_gates.in_namespace(namespace),
        configmaps=store.configmaps.owned_by(namespace, name),
        service_names=_service_names(ctx, namespace, name),
        eval_run_history=ctx.settings.eval_run_history,
        endpoint_template=ctx.settings.eval_endpoint_template,
        verdict_key=ctx.verdict_key,
        inventory=store.nodes.inventory(),
        token_rates=_token_rates(ctx, model),
        prices=ctx.settings.prices,
        cost_refresh=timedelta(seconds=ctx.settings.cost_refresh_seconds),
        **(_spec_reads(ctx, model, spec, now) if spec is not None else {}),
    )


def _service_names(ctx: OperatorContext, namespace: str, name: str) -> tuple[str, ...]:
    return tuple(sorted(s["metadata"]["name"] for s in ctx.store.services.owned_by(namespace, name)))


def _token_rates(ctx: OperatorContext, model: dict[str, Any]) -> dict[str, Rates]:
    """Token rates of the Model's serving revisions (from the bulk cache, refreshed every 15 s)."""
    if ctx.token_rates is None:
        return {}
    meta, status = model["metadata"], model.get("status") or {}
    revisions = [r for r in (status.get("stableRevision"), status.get("canaryRevision")) if r]
    return {r: ctx.token_rates.get(meta["namespace"], meta["name"], r) for r in revisions}


def _spec_reads(
    ctx: OperatorContext, model: dict[str, Any], spec: ModelSpec, now: datetime
) -> dict[str, Any]:
    """What the spec asks to be read: the Secret's existence, the HTTPRoute, the load signal and
    the model's size facts."""
    namespace = model["metadata"]["namespace"]
    reads: dict[str, Any] = {
        "secret": _check_secret(ctx, namespace, spec.source.credentials_secret_ref),
        **(route := _http_route(ctx, namespace, spec)),
        "autoscaling_signals": _autoscaling_signals(ctx, model, spec, now),
        "wake_pending": _wake_pending(ctx, model, spec, now),
        **_pool_world(ctx, model, spec, route.get("http_route")),
    }
    if spec.resources.gpus == "auto":
        # Hugging Face metadata, cached per repo and revision; public repos only, the operator
        # never reads the token's value
        uri, revision = spec.source.uri, spec.source.revision
        meta = model["metadata"]
        facts = ctx.facts.get(uri, revision, waiter=(namespace, meta["name"]))
        reads["model_facts"] = facts
        reads["model_facts_error"] = None if facts else ctx.facts.last_error(uri, revision)
        reads["model_facts_pending"] = facts is None and ctx.facts.pending(uri, revision)
    return reads


def _autoscaling_signals(
    ctx: OperatorContext, model: dict[str, Any], spec: ModelSpec, now: datetime
) -> Signals | None:
    """The load signal over the serving revisions, when the Model autoscales (Prometheus I/O)."""
    status = model.get("status") or {}
    revisions = [r for r in (status.get("stableRevision"), status.get("canaryRevision")) if r]
    if spec.autoscaling is None or not revisions:
        return None
    meta = model["metadata"]
    try:
        return read_signals(
            PrometheusProvider(
                ctx.settings.prometheus_url,
                timeout_seconds=ctx.settings.prometheus_timeout_seconds,
                reachable=ctx.metrics.prometheus_reachable,
            ),
            spec.engine.type,
            meta["namespace"],
            meta["name"],
            revisions,
            spec.autoscaling.metric,
            now,
        )
    except UnsupportedSignalError:
        return None  # the plan reports it as a condition


def _deployments(ctx: OperatorContext, model: dict[str, Any]) -> list[dict[str, Any]]:
    """The Model's Deployments from the cache, with the stable and canary ones read from the API
    when the cache lacks them: right after a restart the Model watch may deliver before the
    Deployment watch has listed, and a stable Deployment missing from the plan counts as lost."""
    namespace, name = model["metadata"]["namespace"], model["metadata"]["name"]
    cached = ctx.store.deployments.owned_by(namespace, name)
    have = {(d["metadata"].get("labels") or {}).get(LABEL_REVISION) for d in cached}
    status = model.get("status") or {}
    missing = [r for r in (status.get("stableRevision"), status.get("canaryRevision")) if r and r not in have]
    for revision in missing:
        live = ctx.kube.get_or_none("Deployment", namespace, deployment_name(name, revision))
        if live is not None:
            ctx.store.deployments.upsert(live)
    return ctx.store.deployments.owned_by(namespace, name) if missing else cached


def _check_secret(ctx: OperatorContext, namespace: str, ref: SecretKeyRef | None) -> SecretCheck | None:
    """Only existence is kept; the value never leaves this function."""
    if ref is None:
        return None
    secret = ctx.kube.get_or_none("Secret", namespace, ref.name)
    if secret is None:
        return SecretCheck(exists=False, has_key=False)
    return SecretCheck(
        exists=True,
        has_key=ref.key in (secret.get("data") or {}) or ref.key in (secret.get("stringData") or {}),
    )


def _route_target(spec: ModelSpec) -> tuple[str | None, str] | None:
    """(namespace or None for the Model's, name) of the HTTPRoute the canary routes through."""
    routing = spec.rollout.canary.traffic_routing if spec.rollout.canary else None
    target = routing and (routing.gateway_api or routing.inference_pool)
    return (target.namespace, target.http_route) if target else None


def _inference_pool(spec: ModelSpec) -> InferencePoolRouting | None:
    routing = spec.rollout.canary.traffic_routing if spec.rollout.canary else None
    return routing.inference_pool if routing is not None else None


def _grants(ctx: OperatorContext, namespace: str) -> list[dict[str, Any]]:
    try:
        return ctx.kube.list("ReferenceGrant", namespace)
    except NotFound:  # the Gateway API CRDs lack ReferenceGrant: nothing is granted
        return []


def _http_route(ctx: OperatorContext, namespace: str, spec: ModelSpec) -> dict[str, Any]:
    """The HTTPRoute, read only when it is in the Model's namespace or a ReferenceGrant in its own
    namespace allows the Model's namespace to use it (the operator's own permission is not
    lent to a tenant)."""
    target = _route_target(spec)
    if target is None:
        return {}
    route_namespace, route_name = target[0] or namespace, target[1]
    source = ObjectRef(GROUP, "Model", namespace, "")
    target_ref = ObjectRef(GATEWAY_GROUP, "HTTPRoute", route_namespace, route_name)
    try:
        if route_namespace != namespace and not reference_grants.allows(
            _grants(ctx, route_namespace), source, target_ref
        ):
            return {"http_route_denied": reference_grants.not_permitted_message(source, target_ref)}
        return {"http_route": ctx.kube.get_or_none("HTTPRoute", route_namespace, route_name)}
    except KubeError:
        return {}


def _pool_world(
    ctx: OperatorContext, model: dict[str, Any], spec: ModelSpec, route: dict[str, Any] | None
) -> dict[str, Any]:
    """With inferencePool routing: the Model's pools, the route's Gateways that do not exist,
    and the ReferenceGrants a route in another namespace needs to refer to the pools (API
    reads, no writes)."""
    routing = _inference_pool(spec)
    if routing is None:
        return {}
    meta = model["metadata"]
    namespace = meta["namespace"]
    route_namespace = routing.namespace or namespace
    try:
        pools = ctx.kube.list("InferencePool", namespace, f"{LABEL_MODEL}={meta['name']}")
        parents = ((route or {}).get("spec") or {}).get("parentRefs") or [
            p.to_wire() for p in routing.parent_refs
        ]
        missing = [
            f"{p.get('namespace') or route_namespace}/{p['name']}"
            for p in parents
            if p.get("kind", "Gateway") == "Gateway"
            and p.get("group", GATEWAY_GROUP) == GATEWAY_GROUP
            and ctx.kube.get_or_none("Gateway", p.get("namespace") or route_namespace, p["name"]) is None
        ]
        grants = _grants(ctx, namespace) if route_namespace != namespace else None
    except KubeError as exc:
        log.warning("Model %s/%s: reading InferencePool routing objects: %s", namespace, meta["name"], exc)
        return {"pool_read_error": str(exc)}
    return {"inference_pools": pools, "missing_gateways": tuple(missing), "reference_grants": grants}


def _wake_pending(
    ctx: OperatorContext, model: dict[str, Any], spec: ModelSpec, now: datetime
) -> Pending | None:
    """Requests waiting for a Model that may scale to zero (Prometheus I/O)."""
    policy = spec.autoscaling
    if policy is None or not policy.scales_to_zero:
        return None
    meta = model["metadata"]
    try:
        query = wake_query(policy.wake_signal, meta["namespace"], meta["name"])
    except ValueError as exc:
        return Pending(None, now, f"wakeSignal: {exc}")
    result = PrometheusProvider(ctx.settings.prometheus_url).query(query)
    if result.kind == "error":
        return Pending(None, now, f"reading the wake signal: {result.message}")
    # a flow-control queue with nothing in it exports no series: no data is 0 waiting
    waiting = result.value if result.kind == "value" and result.value is not None else 0.0
    return Pending(waiting, now)


def measure(
    ctx: OperatorContext, model: dict[str, Any], spec: ModelSpec, plan: ModelPlan, now: datetime
) -> Taken:
    """The analysis measurements the plan asked for (Prometheus I/O, off this pass when it is
    slow: see `rollout/analysis/rounds.py`)."""
    meta = model["metadata"]
    analysis = spec.rollout.canary.analysis if spec.rollout.canary else None
    # the revisions as they serve now: a plan that promotes in this very pass has no canary any
    # more, and promoting on measurements older than the round that fell due is what this stops
    observed = model.get("status") or {}
    canary = observed.get("canaryRevision") or plan.status.get("canaryRevision")
    stable = (
        observed.get("stableRevision")
        if observed.get("canaryRevision")
        else plan.status.get("stableRevision")
    )
    if analysis is None or not canary:
        return Taken([])
    url, timeout = ctx.settings.prometheus_url, ctx.settings.prometheus_timeout_seconds
    reachable = ctx.metrics.prometheus_reachable
    progress = _rollout_status(plan.status if plan.status.get("rollout") else observed)
    cost = cost_rates(plan.status)
    looks = look_plan(spec.rollout.canary.steps if spec.rollout.canary else [], analysis.interval_delta)

    def run() -> list[Any]:
        return take_measurements(
            analysis,
            plan.run_analysis,
            PrometheusProvider(url, timeout_seconds=timeout, retries=0, reachable=reachable),
            spec.engine.type,
            meta["namespace"],
            meta["name"],
            canary,
            stable,
            now,
            progress,
            cost=cost,
            plan=looks,
        )

    key = (meta["namespace"], meta["name"])
    taken = (
        ctx.rounds.take(key, canary, tuple(plan.run_analysis), run, redact_url(url), now)
        if ctx.rounds is not None
        else Taken(run())
    )
    for m in taken.measurements or []:
        ctx.metrics.count_measurement(meta["namespace"], meta["name"], m.metric, m.phase)
    return taken


def cost_rates(status: dict[str, Any]) -> CostRates:
    """What each serving revision spends per hour, from this pass's status.cost: money when
    every revision has a price, else GPU-hours for all (so ratios stay comparable)."""
    records = (status.get("cost") or {}).get("revisions") or []
    priced = bool(records) and all(r.get("pricePerGpuHour") is not None for r in records)
    spend = {
        r["revision"]: (r.get("pricePerGpuHour") if priced else 1.0)
        * r.get("gpus", 0)
        * r.get("readyReplicas", 0)
        for r in records
    }
    return CostRates(spend, priced)


def _rollout_status(status: dict[str, Any]) -> RolloutStatus | None:
    """The rollout progress the plan holds (the look window of mode confidence comes from it)."""
    try:
        return RolloutStatus.model_validate(status.get("rollout") or {})
    except ValidationError:
        return None
