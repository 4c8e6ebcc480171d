"""What one reconcile pass of a Model should do: pure, no Kubernetes calls, no clock.

`plan_model(world) -> ModelPlan` reads the Model and everything observed about it (owned objects
from the watch caches, bound PromptVersions, whether its Secret exists, GPU inventory, analysis
measurements, eval results) and returns the objects to apply, the revisions to scale or delete,
the new status and the Events. The order is fixed, like Argo Rollouts' `rolloutCanary`:
spec -> prompts -> credentials -> GPU plan -> cache -> revisions (RollingUpdate or the canary
machine) -> traffic -> status. Each stage may block the new revision; the stable one keeps serving.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from llmops_operator import (
    autoscaler,
    engines,
    eval_jobs,
    planner,
    prompts,
    reference_grants,
    resources,
    revisions,
)
from llmops_operator import conditions as cond
from llmops_operator.api.common import API_VERSION, LABEL_REVISION, Condition
from llmops_operator.api.model import ModelSpec, ModelStatus, PlanStatus
from llmops_operator.api.prompt import PromptVersionSpec
from llmops_operator.api.rollout import Measurement, RolloutStatus
from llmops_operator.autoscaling_signals import unsupported_signal
from llmops_operator.conditions import Reason
from llmops_operator.evals import verdict
from llmops_operator.monitoring.cost import DEFAULT_REFRESH, Rates
from llmops_operator.monitoring.prices import Prices
from llmops_operator.monitoring.stage import MonitorInputs, monitor
from llmops_operator.rollout import machine
from llmops_operator.rollout.traffic.gateway import httproute_weights

RESYNC_SECONDS = 30.0
AUTOSCALE_SECONDS = 15.0
"""How often an autoscaled Model is re-decided."""
AUTOSCALING = "Autoscaling"
QUIET_REASONS = frozenset({Reason.REPLICAS_NOT_READY, "AvailableUnknown", "EvalRunning"})
"""Condition reasons that change often during normal progress: no Event for them."""
PENDING_POLL_SECONDS = 5.0


@dataclass(frozen=True)
class SecretCheck:
    """Whether the referenced Secret and key exist (the value is never read into the plan)."""

    exists: bool
    has_key: bool


@dataclass(frozen=True)
class World:
    """Everything a pass knows. Lists hold plain API objects (dicts)."""

    model: Mapping[str, Any]
    now: datetime
    operator_image: str
    deployments: Sequence[Mapping[str, Any]] = ()
    pods: Sequence[Mapping[str, Any]] = ()
    jobs: Sequence[Mapping[str, Any]] = ()
    prompt_versions: Sequence[Mapping[str, Any]] = ()
    eval_runs: Sequence[Mapping[str, Any]] = ()
    eval_gates: Sequence[Mapping[str, Any]] = ()
    secret: SecretCheck | None = None
    inventory: Sequence[planner.GpuNodeInfo] | None = None
    http_route: Mapping[str, Any] | None = None
    measurements: Sequence[Measurement] = ()
    model_facts: planner.ModelFacts | None = None
    """Size and architecture of the model (Hugging Face metadata), for `gpus: auto`."""
    model_facts_error: str | None = None
    """Why `model_facts` is missing, when a lookup failed."""
    autoscaling_signals: autoscaler.Signals | None = None
    """The load signal read from Prometheus for `spec.autoscaling` (None: none read)."""
    endpoint_template: str = eval_jobs.DEFAULT_ENDPOINT_TEMPLATE
    """How eval Jobs reach a revision's Service (see `eval_jobs.endpoint`)."""
    verdict_key: bytes = b""
    """The operator's master key for eval verdicts (`evals/verdict.py`); when set, an EvalRun's
    phase counts only with a valid signature."""
    http_route_denied: str | None = None
    """Why the HTTPRoute in another namespace may not be used (no ReferenceGrant allows it)."""
    token_rates: Mapping[str, Rates] = field(default_factory=dict)
    """Token rates of the serving revisions (engine counters, via Prometheus)."""
    prices: Prices = field(default_factory=Prices)
    """The operator's GPU price table."""
    cost_refresh: timedelta = DEFAULT_REFRESH
    """How often an unchanged revision's cost record is brought up to date."""


@dataclass
class ModelPlan:
    """The outcome of a pass; the handler executes it in this order."""

    apply: list[dict[str, Any]] = field(default_factory=list)
    """Owned objects to server-side apply (create or restore)."""
    scale: dict[str, int] = field(default_factory=dict)
    """Deployment name -> replicas, for revisions whose template is not re-rendered."""
    delete: list[tuple[str, str]] = field(default_factory=list)
    """(kind, name) of owned objects to delete."""
    status: dict[str, Any] = field(default_factory=dict)
    """The full new status (wire form)."""
    events: list[tuple[str, str, str]] = field(default_factory=list)
    """(type, reason, message), emitted after the status write."""
    requeue_after: float | None = RESYNC_SECONDS
    run_analysis: tuple[str, ...] = ()
    """Metrics to measure before planning again (the caller re-plans with the measurements)."""
    route_patch: dict[str, Any] | None = None
    """HTTPRoute weights to apply (Gateway API traffic routing)."""
    rollout_revision: str | None = None
    scheduled_evaluations: list[str] = field(default_factory=list)
    """Gates of the scheduled EvalRuns started by this pass."""


# ---------------------------------------------------------------------------------------------
# observed state helpers
# ---------------------------------------------------------------------------------------------


def _revision_of(obj: Mapping[str, Any]) -> str | None:
    return (obj.get("metadata", {}).get("labels") or {}).get(LABEL_REVISION)


def observed_revisions(deployments: Sequence[Mapping[str, Any]]) -> dict[str, revisions.ObservedRevision]:
    """Revision -> replicas as the Deployments report them."""
    out: dict[str, revisions.ObservedRevision] = {}
    for deployment in deployments:
        revision = _revision_of(deployment)
        if not revision:
            continue
        status = deployment.get("status") or {}
        out[revision] = revisions.ObservedRevision(
            spec_replicas=int((deployment.get("spec") or {}).get("replicas") or 0),
            ready_replicas=int(status.get("readyReplicas") or 0),
        )
    return out


def resolve_prompts(
    refs: Sequence[Any], prompt_versions: Sequence[Mapping[str, Any]]
) -> tuple[list[PromptVersionSpec], str | None, str]:
    """The bound PromptVersion specs, or (reason, message) of the first that is missing or invalid."""
    found: list[PromptVersionSpec] = []
    for ref in refs:
        match = next(
            (
                pv
                for pv in prompt_versions
                if (pv.get("spec") or {}).get("prompt") == ref.name
                and (pv.get("spec") or {}).get("version") == ref.version
            ),
            None,
        )
        if match is None:
            return (
                [],
                Reason.PROMPT_MISSING,
                (
                    f"PromptVersion {ref.name} version {ref.version} does not exist in this namespace; "
                    "create it or bind an existing version"
                ),
            )
        try:
            spec = PromptVersionSpec.model_validate(match["spec"])
        except ValidationError as exc:
            return (
                [],
                Reason.PROMPT_INVALID,
                f"PromptVersion {match['metadata']['name']}: {exc.errors()[0]['msg']}",
            )
        result = prompts.validate(spec)
        if not result.valid:
            return (
                [],
                Reason.PROMPT_INVALID,
                f"PromptVersion {match['metadata']['name']} is invalid: {result.reason}",
            )
        found.append(spec)
    return found, None, ""


def _job_state(job: Mapping[str, Any] | None) -> str:
    if job is None:
        return "Missing"
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "Succeeded"
        if condition.get("status") == "True" and condition.get("type") == "Failed":
            return "Failed"
    if status.get("succeeded"):
        return "Succeeded"
    return "Running"


def pod_problems(pods: Sequence[Mapping[str, Any]], revision: str) -> tuple[list[str], list[str]]:
    """(unschedulable messages, not-ready reasons) of one revision's pods, for conditions."""
    unschedulable: list[str] = []
    not_ready: list[str] = []
    for pod in pods:
        if _revision_of(pod) != revision or pod.get("metadata", {}).get("deletionTimestamp"):
            continue
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                unschedulable.append(f"pod {name}: {condition.get('message') or condition.get('reason')}")
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting")
            if waiting and waiting.get("reason") not in (None, "ContainerCreating"):
                not_ready.append(
                    f"pod {name}: {waiting.get('reason')}: {waiting.get('message', '')}".rstrip(": ")
                )
    return unschedulable, not_ready


def _deadline_exceeded(deployments: Sequence[Mapping[str, Any]], revision: str) -> bool:
    for deployment in deployments:
        if _revision_of(deployment) != revision:
            continue
        for condition in (deployment.get("status") or {}).get("conditions") or []:
            if (
                condition.get("type") == "Progressing"
                and condition.get("reason") == "ProgressDeadlineExceeded"
            ):
                return True
    return False


def eval_result(
    eval_runs: Sequence[Mapping[str, Any]],
    rollout: RolloutStatus | None,
    jobs: Sequence[Mapping[str, Any]] = (),
    verdict_key: bytes = b"",
) -> machine.EvalResult | None:
    """The result of the EvalRun that the current gate step started, if it reported one."""
    if rollout is None or rollout.eval_run is None or rollout.revision is None:
        return None
    run_status = rollout.eval_run
    name = eval_run_name(rollout.revision, run_status.gate, run_status.step_index, run_status.started_at)
    run = next((r for r in eval_runs if r["metadata"]["name"] == name), None)
    if run is None:
        return None
    status = run.get("status") or {}
    phase = status.get("phase") or "Pending"
    job = next((j for j in jobs if j["metadata"]["name"] == name), None)
    if phase in ("Pending", "Running") and _job_state(job) == "Failed":
        return machine.EvalResult(
            phase="Error",
            name=name,
            message=f"eval Job {name} failed before recording a result; see its logs",
        )
    if verdict_key and phase in verdict.SIGNED_PHASES and not verdict.verify(verdict_key, run):
        return machine.EvalResult(
            phase="Error",
            name=name,
            message=f"EvalRun {name} reports {phase} without the signature of the eval Job the "
            "operator started for it; the verdict is ignored (was the status written by hand?)",
        )
    message = status.get("message") or ""
    failing = status.get("failingAssertions") or []
    if phase == "Failed" and failing:
        message = f"failing assertions: {', '.join(map(str, failing))}; {message}".rstrip("; ")
    return machine.EvalResult(phase=phase, name=name, message=message)


def eval_run_name(revision: str, gate: str, step_index: int, started_at: datetime | None) -> str:
    """Deterministic from status, so re-issuing StartEvalRun never creates a second run; the
    start time makes a retried rollout (which starts the gate again) get a fresh run."""
    attempt = hashlib.sha256(f"{started_at.timestamp() if started_at else 0:.6f}".encode()).hexdigest()[:5]
    return revisions._fit(gate[:36], f"{revision}-s{step_index}-{attempt}")


# ---------------------------------------------------------------------------------------------
# the pass
# ---------------------------------------------------------------------------------------------


@dataclass
class _Pass:
    world: World
    name: str
    namespace: str
    generation: int | None
    status: ModelStatus
    conditions: list[Condition]
    plan: ModelPlan = field(default_factory=ModelPlan)

    def set(self, type_: str, status: cond.Status, reason: str, message: str) -> None:
        self.conditions = cond.set_condition(
            self.conditions, type_, status, reason, message, self.world.now, self.generation
        )

    def clear(self, type_: str) -> None:
        self.conditions = cond.clear_condition(self.conditions, type_)

    def event(self, type_: str, reason: str, message: str) -> None:
        self.plan.events.append((type_, reason, message))

    def requeue(self, seconds: float) -> None:
        current = self.plan.requeue_after
        self.plan.requeue_after = seconds if current is None else min(current, seconds)


def plan_model(world: World) -> ModelPlan:
    """One reconcile pass (see module doc)."""
    model = world.model
    meta = model["metadata"]
    raw_status = dict(model.get("status") or {})
    try:
        status = ModelStatus.model_validate(raw_status)
    except ValidationError:
        status = ModelStatus()
    p = _Pass(world, meta["name"], meta["namespace"], meta.get("generation"), status, list(status.conditions))
    before = list(status.conditions)
    try:
        spec = ModelSpec.model_validate(model.get("spec") or {})
    except ValidationError as exc:
        message = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])
        p.set(cond.READY, "False", Reason.INVALID_SPEC, f"spec is invalid: {message}")
        status.phase = "Failed"
        return _finish(p, before, raw_status)
    _plan_spec(p, spec)
    return _finish(p, before, raw_status)


def _plan_prompts(p: _Pass, spec: ModelSpec, blocked: list[str]) -> list[PromptVersionSpec]:
    """Resolve the bound PromptVersions; a missing or invalid one blocks the new revision."""
    prompt_specs, prompt_reason, prompt_message = resolve_prompts(spec.prompts, p.world.prompt_versions)
    if prompt_reason:
        p.set(cond.PROMPTS_READY, "False", prompt_reason, prompt_message)
        blocked.append(prompt_message)
    elif spec.prompts:
        p.set(
            cond.PROMPTS_READY,
            "True",
            Reason.PROMPTS_RESOLVED,
            f"{len(prompt_specs)} prompt version(s) bound",
        )
    else:
        p.clear(cond.PROMPTS_READY)
    return prompt_specs


def _plan_credentials(p: _Pass, spec: ModelSpec, blocked: list[str]) -> None:
    """The referenced Secret and key must exist (checked by the handler; never read here)."""
    world = p.world
    secret_ref = spec.source.credentials_secret_ref
    if secret_ref is None:
        p.clear(cond.CREDENTIALS_READY)
    elif world.secret is None or not world.secret.exists:
        message = (
            f"Secret {secret_ref.name} not found in namespace {p.namespace}; "
            f"create it with key {secret_ref.key}"
        )
        p.set(cond.CREDENTIALS_READY, "False", Reason.SECRET_MISSING, message)
        blocked.append(message)
    elif not world.secret.has_key:
        message = (
            f"Secret {secret_ref.name} has no key {secret_ref.key}; add it or change credentialsSecretRef.key"
        )
        p.set(cond.CREDENTIALS_READY, "False", Reason.SECRET_KEY_MISSING, message)
        blocked.append(message)
    else:
        p.set(
            cond.CREDENTIALS_READY,
            "True",
            Reason.SECRET_FOUND,
            f"Secret {secret_ref.name} has key {secret_ref.key}",
        )


def deployed_gpus(deployment: Mapping[str, Any]) -> int | None:
    """The GPUs per replica a Deployment was rendered with."""
    pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in pod.get("containers") or []:
        limit = ((container.get("resources") or {}).get("limits") or {}).get(resources.GPU_RESOURCE)
        if limit is not None:
            return int(limit)
    return None


def sticky_plan(
    gpu_plan: planner.Plan, spec: ModelSpec, world: World, revision: str, name: str
) -> planner.Plan:
    """With `gpus: auto`, a revision keeps the GPU count it was first rendered with: model facts
    or inventory that arrive later must not resize it in place (the count is not in its hash)."""
    if spec.resources.gpus != "auto":
        return gpu_plan
    if world.model_facts is None and world.model_facts_error:
        gpu_plan = replace(gpu_plan, reason=f"{gpu_plan.reason}; model metadata: {world.model_facts_error}")
    deployment_name = revisions.deployment_name(name, revision)
    for deployment in world.deployments:
        if deployment["metadata"]["name"] != deployment_name:
            continue
        gpus = deployed_gpus(deployment)
        if gpus is not None and gpus != gpu_plan.gpus:
            tensor_parallel = (
                gpus if spec.serving.tensor_parallel_size == "auto" else gpu_plan.tensor_parallel_size
            )
            return replace(
                gpu_plan,
                gpus=gpus,
                tensor_parallel_size=tensor_parallel,
                reason=f"{gpus} GPUs, as revision {revision} was first planned",
            )
    return gpu_plan


def _plan_spec(p: _Pass, spec: ModelSpec) -> None:
    world, status = p.world, p.status
    ref = resources.ModelRef.from_obj(world.model)
    owner = resources.owner_reference({**world.model, "apiVersion": API_VERSION, "kind": "Model"})
    blocked: list[str] = []

    prompt_specs = _plan_prompts(p, spec, blocked)
    _plan_credentials(p, spec, blocked)

    # GPU plan
    # revision
    prompt_data, bundle_hash = prompts.bundle(prompt_specs) if prompt_specs else ({}, None)
    desired = revisions.revision_hash(spec, bundle_hash)

    # GPU plan, kept for a revision that is already running
    gpu_plan = sticky_plan(
        planner.plan(spec, world.inventory, world.model_facts), spec, world, desired, p.name
    )
    status.plan = PlanStatus(
        gpus=gpu_plan.gpus,
        gpu_product=gpu_plan.gpu_product,
        tensor_parallel_size=gpu_plan.tensor_parallel_size,
        estimated_memory_gib=gpu_plan.estimated_memory_gib,
        reason=gpu_plan.reason,
    )

    # weight cache
    if spec.cache.enabled:
        _plan_cache(p, spec, ref, owner, blocked)
    else:
        p.clear(cond.CACHE_READY)
        status.cache = None

    # render the desired revision now, so an engine error blocks it with a message
    total = _desired_replicas(p, spec)
    configmap_name = revisions.prompts_configmap_name(p.name, desired) if prompt_data else None
    rendered: dict[str, Any] | None = None
    if not blocked:
        try:
            rendered = resources.render_revision(
                ref, spec, desired, gpu_plan, total, prompts_configmap=configmap_name, owner=owner
            )
        except engines.EngineConfigError as exc:
            blocked.append(str(exc))
            p.set(cond.READY, "False", Reason.INVALID_SPEC, str(exc))

    observed = observed_revisions(world.deployments)
    stable = status.stable_revision if status.stable_revision in observed else None
    if status.stable_revision and stable is None and desired != status.stable_revision:
        # the stable Deployment is gone (deleted by hand): its template cannot be re-rendered
        # from a spec that moved on, so the desired revision takes over as on a first deploy
        p.event(
            "Warning", "StableRevisionLost", f"Deployment of stable revision {status.stable_revision} is gone"
        )

    if blocked:
        p.set(cond.PROGRESSING, "False", "RevisionBlocked", f"revision {desired} is blocked: {blocked[0]}")
        if stable:
            p.plan.scale[revisions.deployment_name(p.name, stable)] = total
            serving = [stable]
        else:
            serving = []
        p.requeue(PENDING_POLL_SECONDS * 2)
        _plan_services(p, spec, ref, owner, serving, stable, weight=0)
        _plan_status(p, spec, ref, stable, None, total, gpu_plan)
        return

    assert rendered is not None
    if prompt_data:
        p.plan.apply.append(resources.prompts_configmap(ref, desired, prompt_data, owner))
    status.revisions = revisions.record_revision(
        status.revisions,
        desired,
        world.now,
        outcome=_outcome(status, desired),
        reason=_reason(status, desired),
    )

    canary_strategy = spec.rollout.strategy == "Canary" and stable is not None and desired != stable
    if canary_strategy:
        new_stable, canary, replicas, weight = _plan_canary(p, spec, desired, stable, observed, total)
    else:
        new_stable, canary, replicas, weight = _plan_rolling(p, desired, stable, observed, total)

    # desired revision: full render; other kept revisions: scale only
    for revision, count in replicas.items():
        if revision == desired:
            rendered["spec"]["replicas"] = count
            p.plan.apply.append(rendered)
        else:
            p.plan.scale[revisions.deployment_name(p.name, revision)] = count
    keep = set(replicas)
    for revision in sorted(observed):
        if revision not in keep:
            p.plan.delete.append(("Deployment", revisions.deployment_name(p.name, revision)))
            p.plan.delete.append(("Service", revisions.revision_service_name(p.name, revision)))
    serving = sorted(keep)
    _plan_services(p, spec, ref, owner, serving, new_stable, weight)
    if (
        spec.rollout.canary
        and spec.rollout.canary.traffic_routing
        and spec.rollout.canary.traffic_routing.gateway_api
    ):
        _plan_route(p, spec, new_stable, canary, weight, serving)
    status.stable_revision = new_stable
    status.canary_revision = canary
    status.revisions = revisions.prune_history(
        status.revisions, spec.rollout.revision_history_limit, keep=[new_stable, canary, desired]
    )
    _plan_status(p, spec, ref, new_stable, canary, total, gpu_plan, desired=desired)


def _outcome(status: ModelStatus, revision: str) -> str:
    record = next((r for r in status.revisions if r.revision == revision), None)
    if record is not None:
        return record.outcome
    return revisions.STABLE if status.stable_revision == revision else revisions.PROGRESSING


def _reason(status: ModelStatus, revision: str) -> str:
    record = next((r for r in status.revisions if r.revision == revision), None)
    return record.reason if record is not None else ""


def _desired_replicas(p: _Pass, spec: ModelSpec) -> int:
    """spec.replicas, or what the autoscaler decides from the LLM load signal (never the spec)."""
    policy = spec.autoscaling
    if policy is None:
        p.status.autoscaler = None
        p.clear(AUTOSCALING)
        return spec.replicas
    unsupported = unsupported_signal(spec.engine.type, policy.metric)
    if unsupported:
        p.set(AUTOSCALING, "False", "UnsupportedMetric", unsupported)
    else:
        p.clear(AUTOSCALING)
    state = p.status.autoscaler
    current = state.desired_replicas if state and state.desired_replicas else None
    if current is None:
        stable = p.status.stable_revision
        deployed = [
            int((d.get("spec") or {}).get("replicas") or 0)
            for d in p.world.deployments
            if _revision_of(d) == stable
        ]
        current = deployed[0] if deployed else policy.min_replicas
    replicas, new_state = autoscaler.decide(policy, p.world.autoscaling_signals, state, current, p.world.now)
    changed = state is None or new_state.desired_replicas != state.desired_replicas
    if changed and new_state.reason in ("ScaledUp", "ScaledDown"):
        p.event("Normal", new_state.reason, new_state.message or f"{current} -> {replicas} replicas")
    p.status.autoscaler = new_state
    p.requeue(AUTOSCALE_SECONDS)
    return replicas


def _plan_cache(
    p: _Pass, spec: ModelSpec, ref: resources.ModelRef, owner: dict[str, Any], blocked: list[str]
) -> None:
    from llmops_operator.api.model import CacheStatus

    p.plan.apply.append(resources.cache_pvc(ref, spec, owner))
    job = resources.cache_loader_job(ref, spec, p.world.operator_image, owner)
    p.plan.apply.append(job)
    observed_job = next((j for j in p.world.jobs if j["metadata"]["name"] == job["metadata"]["name"]), None)
    state = _job_state(observed_job)
    key = revisions.cache_key(spec)
    p.status.cache = CacheStatus(
        pvc_name=revisions.cache_pvc_name(p.name),
        path=f"{resources.CACHE_MOUNT}/{key}",
        ready=state == "Succeeded",
    )
    if state == "Succeeded":
        p.set(cond.CACHE_READY, "True", Reason.CACHE_LOADED, f"weights of {spec.source.uri} are in the cache")
        return
    if state == "Failed":
        message = (
            f"loader Job {job['metadata']['name']} failed; see `kubectl logs job/{job['metadata']['name']}` "
            "(check the source URI and credentials)"
        )
        p.set(cond.CACHE_READY, "False", Reason.CACHE_LOAD_FAILED, message)
    else:
        message = f"loader Job {job['metadata']['name']} is downloading {spec.source.uri}"
        p.set(cond.CACHE_READY, "False", Reason.CACHE_LOADING, message)
    blocked.append(message)


def _plan_rolling(
    p: _Pass,
    desired: str,
    stable: str | None,
    observed: Mapping[str, revisions.ObservedRevision],
    total: int,
) -> tuple[str | None, str | None, dict[str, int], int]:
    rp = revisions.rolling_update(desired, observed, total, stable)
    status = p.status
    if rp.complete and stable != desired:
        if stable:
            status.revisions = revisions.record_revision(
                status.revisions, stable, p.world.now, revisions.SUPERSEDED, f"replaced by {desired}"
            )
        status.revisions = revisions.record_revision(status.revisions, desired, p.world.now, revisions.STABLE)
        p.event("Normal", "RevisionStable", f"revision {desired} is serving all traffic")
    for old in rp.superseded:
        if old != stable:
            record = next((r for r in status.revisions if r.revision == old), None)
            if record is not None and record.outcome == revisions.PROGRESSING:
                status.revisions = revisions.record_revision(
                    status.revisions, old, p.world.now, revisions.SUPERSEDED, f"replaced by {desired}"
                )
    status.rollout = None
    if rp.complete or desired == stable:
        # scaling the stable revision (or waiting for its pods) is not a rollout
        p.set(cond.PROGRESSING, "True", Reason.ROLLOUT_COMPLETE, f"revision {desired} is stable")
        p.clear(cond.ROLLED_BACK)
        if not rp.complete:
            p.requeue(PENDING_POLL_SECONDS)
        return desired, None, rp.replicas, 100
    p.set(cond.PROGRESSING, "True", Reason.ROLLING_UPDATE, f"rolling out revision {desired}")
    p.requeue(PENDING_POLL_SECONDS)
    # every ready pod of both revisions serves while the new one replaces the old one
    return rp.stable_revision, desired, rp.replicas, 100


def _plan_canary(
    p: _Pass,
    spec: ModelSpec,
    desired: str,
    stable: str,
    observed: Mapping[str, revisions.ObservedRevision],
    total: int,
) -> tuple[str | None, str | None, dict[str, int], int]:
    status = p.status
    rollout = status.rollout or RolloutStatus()
    obs = machine.Observed(
        canary_revision=desired,
        stable_revision=stable,
        total_replicas=total,
        ready_replicas={rev: o.ready_replicas for rev, o in observed.items()},
        measurements=tuple(p.world.measurements),
        eval_result=eval_result(
            p.world.eval_runs,
            rollout if rollout.revision == desired else None,
            p.world.jobs,
            p.world.verdict_key,
        ),
    )
    actions, new_rollout = machine.step(spec.rollout, rollout, obs, p.world.now)
    replicas: dict[str, int] = {}
    new_stable, canary = stable, desired
    for action in actions:
        if isinstance(action, machine.ScaleRevision):
            replicas[action.revision] = action.replicas
        elif isinstance(action, machine.RunAnalysis):
            p.plan.run_analysis = action.metrics
        elif isinstance(action, machine.StartEvalRun):
            started = new_rollout.eval_run.started_at if new_rollout.eval_run else None
            run = _eval_run(p, spec, action, started)
            gate = next((g for g in p.world.eval_gates if g["metadata"]["name"] == action.gate), None)
            p.plan.apply.extend(eval_jobs.eval_identity(run, gate, _owner(p), p.world.verdict_key))
            p.plan.apply.append(run)
            p.plan.apply.append(eval_jobs.eval_job(run, p.world.operator_image, _owner(p), gate))
        elif isinstance(action, machine.Promote):
            new_stable, canary = action.revision, None
            status.revisions = revisions.record_revision(
                status.revisions, stable, p.world.now, revisions.SUPERSEDED, f"replaced by {desired}"
            )
            status.revisions = revisions.record_revision(
                status.revisions, desired, p.world.now, revisions.STABLE
            )
            replicas = {desired: total}
        elif isinstance(action, machine.Abort):
            status.revisions = revisions.record_revision(
                status.revisions, action.revision, p.world.now, revisions.ROLLED_BACK, action.reason
            )
            p.set(cond.ROLLED_BACK, "True", "AnalysisFailed" if action.metric else "Aborted", action.reason)
        elif isinstance(action, machine.RequeueAfter):
            p.requeue(max(action.seconds, 0.5))
        elif isinstance(action, machine.EmitEvent):
            p.event(action.type, action.reason, action.message)
            if action.reason == "EvalGatePassed":
                # the machine moves past the gate in the same pass (status.rollout.evalRun is
                # cleared), so the verdict is recorded from the event
                p.set(cond.EVAL_GATE_PASSED, "True", "EvalPassed", action.message)
    if new_stable == desired:
        status.rollout = None
        p.set(cond.PROGRESSING, "True", Reason.ROLLOUT_COMPLETE, f"revision {desired} promoted to stable")
        p.clear(cond.ROLLED_BACK)
        return desired, None, replicas, 100
    status.rollout = new_rollout
    _rollout_conditions(p, spec, new_rollout)
    return new_stable, canary, replicas, new_rollout.weight


def _rollout_conditions(p: _Pass, spec: ModelSpec, rollout: RolloutStatus) -> None:
    if rollout.abort:
        p.set(cond.PROGRESSING, "False", Reason.ROLLOUT_ABORTED, rollout.message)
    elif rollout.pause_conditions:
        p.set(cond.PROGRESSING, "Unknown", Reason.ROLLOUT_PAUSED, rollout.message)
    else:
        p.clear(cond.ROLLED_BACK)
        p.set(cond.PROGRESSING, "True", "CanaryProgressing", rollout.message)
    run = rollout.eval_run
    if run is not None and run.phase in ("Passed", "Failed", "Error"):
        status_value = "True" if run.phase == "Passed" else ("False" if run.phase == "Failed" else "Unknown")
        reason = {"Passed": "EvalPassed", "Failed": "EvalFailed", "Error": "EvalError"}[run.phase]
        p.set(cond.EVAL_GATE_PASSED, status_value, reason, f"gate {run.gate}: {run.message}".rstrip(": "))
    elif run is not None:
        p.set(cond.EVAL_GATE_PASSED, "Unknown", "EvalRunning", f"gate {run.gate} is evaluating the canary")
    latest = {m.metric: m for m in rollout.analysis.measurements}
    if latest:
        bad = [m for m in latest.values() if m.phase != "Successful"]
        if not bad:
            p.set(cond.ANALYSIS, "True", "Successful", f"{len(latest)} metric(s) within thresholds")
        else:
            worst = sorted(bad, key=lambda m: ["Failed", "Error", "Inconclusive"].index(m.phase))[0]
            status_value = "False" if worst.phase == "Failed" else "Unknown"
            p.set(cond.ANALYSIS, status_value, worst.phase, worst.message)


def _owner(p: _Pass) -> dict[str, Any]:
    return resources.owner_reference({**p.world.model, "apiVersion": API_VERSION, "kind": "Model"})


def _eval_run(
    p: _Pass, spec: ModelSpec, action: machine.StartEvalRun, started_at: datetime | None
) -> dict[str, Any]:
    """The EvalRun of a gate step: the candidate (and stable, as baseline) and its bound prompt."""
    endpoint_of = _endpoint_of(p, spec)
    run_spec: dict[str, Any] = {
        "gate": action.gate,
        "model": p.name,
        "revision": action.revision,
        "endpoint": endpoint_of(action.revision),
    }
    if action.stable_revision:
        run_spec["baselineRevision"] = action.stable_revision
        run_spec["baselineEndpoint"] = endpoint_of(action.stable_revision)
    gate = next((g for g in p.world.eval_gates if g["metadata"]["name"] == action.gate), None)
    gate_prompt = (((gate or {}).get("spec") or {}).get("prompt") or {}).get("name")
    bound = next((ref.version for ref in spec.prompts if ref.name == gate_prompt), None)
    if bound is not None:
        run_spec["promptVersion"] = bound
    return {
        "apiVersion": API_VERSION,
        "kind": "EvalRun",
        "metadata": {
            "name": eval_run_name(action.revision, action.gate, action.step_index, started_at),
            "namespace": p.namespace,
            "labels": {**revisions.revision_labels(p.name, action.revision, component="eval")},
            "ownerReferences": [_owner(p)],
        },
        "spec": run_spec,
    }


def _endpoint_of(p: _Pass, spec: ModelSpec) -> Any:
    """revision -> its OpenAI base URL as eval Jobs see it."""
    info = engines.get_engine(spec.engine.type)
    port = info.openai_port or info.http_port

    def endpoint_of(revision: str) -> str:
        service = revisions.revision_service_name(p.name, revision)
        return eval_jobs.endpoint(p.world.endpoint_template, service, p.namespace, port, p.name, revision)

    return endpoint_of


def _plan_monitoring(p: _Pass, spec: ModelSpec, stable: str | None, canary: str | None) -> None:
    """Scheduled evaluations of the stable revision and the cost of every serving revision."""
    world = p.world
    result = monitor(
        MonitorInputs(
            name=p.name,
            namespace=p.namespace,
            spec=spec,
            stable_revision=stable,
            serving_revisions=[r for r in (stable, canary) if r],
            deployments=world.deployments,
            pods=world.pods,
            eval_runs=world.eval_runs,
            eval_gates=world.eval_gates,
            jobs=world.jobs,
            conditions=p.conditions,
            previous_cost=p.status.cost,
            now=world.now,
            operator_image=world.operator_image,
            owner=_owner(p),
            endpoint_of=_endpoint_of(p, spec),
            plan_product=p.status.plan.gpu_product if p.status.plan else None,
            node_products={n.name: n.product for n in world.inventory or ()},
            token_rates=world.token_rates,
            prices=world.prices,
            cost_refresh=world.cost_refresh,
        )
    )
    p.plan.apply += result.apply
    p.plan.delete += result.delete
    p.plan.scheduled_evaluations += result.started
    p.status.quality = result.quality
    p.status.cost = result.cost
    for type_, value, reason, message in result.set_conditions:
        p.set(type_, value, reason, message)
    for type_ in result.clear_conditions:
        p.clear(type_)
    for event in result.events:
        p.event(*event)
    if result.requeue_after is not None:
        p.requeue(result.requeue_after)


def _plan_services(
    p: _Pass,
    spec: ModelSpec,
    ref: resources.ModelRef,
    owner: dict[str, Any],
    serving: Sequence[str],
    stable: str | None,
    weight: int,
) -> None:
    shared = resources.shared_service(ref, spec, owner)
    if stable and weight == 0:
        # a canary at weight 0 (e.g. an eval gate's pod) must take no user traffic
        shared["spec"]["selector"] = revisions.revision_selector(p.name, stable)
    p.plan.apply.append(shared)
    for revision in serving:
        p.plan.apply.append(resources.revision_service(ref, spec, revision, owner))


def _plan_route(
    p: _Pass, spec: ModelSpec, stable: str | None, canary: str | None, weight: int, serving: Sequence[str]
) -> None:
    route = p.world.http_route
    gateway = spec.rollout.canary.traffic_routing.gateway_api  # type: ignore[union-attr]
    if p.world.http_route_denied:
        p.set("TrafficRouting", "False", reference_grants.NOT_PERMITTED_REASON, p.world.http_route_denied)
        return
    if route is None:
        p.set(
            "TrafficRouting",
            "False",
            "HTTPRouteMissing",
            f"HTTPRoute {gateway.http_route} not found; create it with a backendRef to Service {p.name}",
        )
        return
    if stable is None:
        return
    patch = httproute_weights(dict(route), p.name, stable, canary, weight, set(serving))
    p.clear("TrafficRouting")
    if patch.rules_changed:
        p.plan.route_patch = patch.body


def _plan_status(
    p: _Pass,
    spec: ModelSpec,
    ref: resources.ModelRef,
    stable: str | None,
    canary: str | None,
    total: int,
    gpu_plan: planner.Plan,
    desired: str | None = None,
) -> None:
    world, status = p.world, p.status
    live = [d for d in world.deployments if _revision_of(d)]
    status.replicas = sum(int((d.get("status") or {}).get("replicas") or 0) for d in live)
    status.ready_replicas = sum(int((d.get("status") or {}).get("readyReplicas") or 0) for d in live)
    status.selector = revisions.selector_string(revisions.model_selector(p.name))
    status.endpoint = resources.endpoint(ref, spec)
    watched = canary or desired or stable

    # Scheduled
    unschedulable, not_ready = pod_problems(world.pods, watched) if watched else ([], [])
    if not gpu_plan.fits:
        p.set(cond.SCHEDULED, "False", Reason.NO_FITTING_NODE, gpu_plan.reason)
    elif unschedulable:
        p.set(cond.SCHEDULED, "False", Reason.UNSCHEDULABLE, unschedulable[0])
    else:
        p.set(cond.SCHEDULED, "True", Reason.PLANNED, gpu_plan.reason)

    # Available: the serving revision has its replicas ready
    observed = observed_revisions(world.deployments)
    serving = stable or desired
    ready = observed[serving].ready_replicas if serving in observed else 0
    if serving is None:
        p.set(cond.AVAILABLE, "False", Reason.REPLICAS_NOT_READY, "no revision is serving yet")
    elif ready >= total and total > 0:
        p.set(
            cond.AVAILABLE,
            "True",
            Reason.REPLICAS_READY,
            f"{ready}/{total} replicas of revision {serving} ready",
        )
    elif total == 0:
        p.set(cond.AVAILABLE, "True", "ScaledToZero", "replicas is 0")
    else:
        message = f"{ready}/{total} replicas of revision {serving} ready"
        problems = pod_problems(world.pods, serving)
        detail = (problems[0] + problems[1])[:1]
        if _deadline_exceeded(world.deployments, serving):
            p.set(
                cond.AVAILABLE,
                "False",
                Reason.PODS_NOT_READY,
                f"{message}; progress deadline exceeded; {'; '.join(detail) or 'check the pods'}",
            )
        else:
            p.set(cond.AVAILABLE, "False", Reason.REPLICAS_NOT_READY, "; ".join([message, *detail]))
        p.requeue(PENDING_POLL_SECONDS)
    if watched and watched != serving and not_ready and _deadline_exceeded(world.deployments, watched):
        p.event("Warning", Reason.PODS_NOT_READY, f"revision {watched}: {not_ready[0]}")
    _plan_monitoring(p, spec, stable, canary)


def _invalid_spec(p: _Pass) -> bool:
    ready = cond.get_condition(p.conditions, cond.READY)
    return ready is not None and ready.reason == Reason.INVALID_SPEC


def _phase(p: _Pass) -> str:
    """Model phase from status alone (Argo `CalculateRolloutPhase`)."""
    status = p.status
    if _invalid_spec(p):
        return "Failed"
    rollout = status.rollout
    if rollout is not None and rollout.abort:
        return "Degraded"
    if rollout is not None and rollout.pause_conditions:
        return "Paused"
    if status.canary_revision:
        return "Progressing"
    if cond.is_true(p.conditions, cond.READY):
        return "Ready"
    available = cond.get_condition(p.conditions, cond.AVAILABLE)
    progressing = cond.get_condition(p.conditions, cond.PROGRESSING)
    if status.stable_revision and (
        status.ready_replicas == 0
        or (available is not None and available.reason == Reason.PODS_NOT_READY)
        or (progressing is not None and progressing.status == "False")
    ):
        return "Degraded"
    return "Progressing" if status.stable_revision else "Pending"


def _finish(p: _Pass, before: list[Condition], raw_status: dict[str, Any]) -> ModelPlan:
    if not _invalid_spec(p):
        p.conditions = cond.roll_up_ready(p.conditions, p.world.now, p.generation)
    p.status.conditions = p.conditions
    p.status.phase = _phase(p)  # type: ignore[assignment]
    rollout = p.status.rollout
    progress = cond.model_progress(
        p.conditions,
        p.status.phase,
        rollout is not None and rollout.abort,
        rollout.message if rollout else "",
    )
    p.conditions = cond.set_progress(p.conditions, *progress, p.world.now, p.generation)
    p.conditions = [c for c in p.conditions if c.type != cond.READY] + [
        c for c in p.conditions if c.type == cond.READY
    ]
    p.status.conditions = p.conditions
    p.status.observed_generation = p.generation
    p.plan.status = p.status.model_dump(by_alias=True, exclude_none=True, mode="json")
    for condition in cond.changed(before, p.conditions):
        if condition.reason in QUIET_REASONS or condition.type in cond.SELF_REPORTED:
            continue  # normal progress (pods starting), or reported by its own stage
        if (
            condition.type == cond.READY
            or condition.status != "True"
            or condition.reason
            in (
                Reason.ROLLOUT_COMPLETE,
                Reason.CACHE_LOADED,
            )
        ):
            kind = "Normal" if condition.status == "True" else "Warning"
            text = condition.message or f"{condition.type} is {condition.status}"
            p.plan.events.append((kind, f"{condition.type}{condition.reason}"[:128], text[:1024]))
    return p.plan


__all__ = ["ModelPlan", "SecretCheck", "World", "eval_run_name", "plan_model"]
