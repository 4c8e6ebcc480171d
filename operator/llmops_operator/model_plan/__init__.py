"""What one reconcile pass of a Model should do: pure, no Kubernetes calls, no clock.

`plan_model(world) -> ModelPlan` reads the Model and everything observed about it (owned objects
from the watch caches, bound PromptVersions, whether its Secret exists, GPU inventory, analysis
measurements, eval results) and returns the objects to apply, the revisions to scale or delete,
the new status and the Events. The stages are a fixed list, like Argo Rollouts' `rolloutCanary`:

    spec -> prompts -> credentials -> model facts -> GPU plan -> cache -> replicas -> render
         -> revisions (RollingUpdate or the canary machine) -> serving objects and traffic
         -> retention (`retention.prune`) -> status

Each stage lives in the module named for it (`gates`, `serving`, `replicas`, `rollout`, `status`;
`observe` reads observed objects, `world` is the pass context). A gate may block the new revision;
the stable one keeps serving. Every path ends in `status.finish`.
"""

from __future__ import annotations

from llmops_operator import conditions as cond
from llmops_operator import prompts, resources, retention, revisions
from llmops_operator.api.model import ModelSpec
from llmops_operator.conditions import Reason
from llmops_operator.evals.gate import current_eval_run_name
from llmops_operator.model_plan import gates, serving
from llmops_operator.model_plan.observe import observed_revisions, serving_revision
from llmops_operator.model_plan.replicas import desired_replicas
from llmops_operator.model_plan.rollout import plan_canary, plan_rolling
from llmops_operator.model_plan.status import finish, plan_status
from llmops_operator.model_plan.world import ModelPlan, Pass, SecretCheck, World


def plan_model(world: World) -> ModelPlan:
    """One reconcile pass (see module doc)."""
    p = Pass.start(world)
    spec = p.parse_spec()
    if spec is not None:
        _stages(p, spec)
    return finish(p)


def _stages(p: Pass, spec: ModelSpec) -> None:
    status = p.status
    ref = resources.ModelRef.from_obj(p.world.model)
    blocked: list[str] = []
    prompt_specs = gates.plan_prompts(p, spec, blocked)
    gates.plan_credentials(p, spec, blocked)
    prompt_data, bundle_hash = prompts.bundle(prompt_specs) if prompt_specs else ({}, None)
    desired = revisions.revision_hash(spec, bundle_hash)
    gates.plan_model_facts(p, spec, desired, blocked)
    gpu_plan = serving.plan_gpus(p, spec, desired)
    gates.plan_cache(p, spec, ref, blocked)
    total = desired_replicas(p, spec)
    rendered = serving.render(p, spec, ref, desired, gpu_plan, total, prompt_data, blocked)
    observed = observed_revisions(p.world.deployments)
    stable = _stable(p, desired, observed)
    if rendered is None:
        serving.hold(p, spec, ref, desired, stable, total, blocked)
        plan_status(p, spec, ref, stable, None, total, gpu_plan)
        return
    if prompt_data:
        p.plan.apply.append(resources.prompts_configmap(ref, desired, prompt_data, p.owner()))
    record = next((r for r in status.revisions if r.revision == desired), None)
    outcome = (
        record.outcome
        if record
        else (revisions.STABLE if status.stable_revision == desired else revisions.PROGRESSING)
    )
    status.revisions = revisions.record_revision(
        status.revisions, desired, p.world.now, outcome=outcome, reason=record.reason if record else ""
    )
    if spec.rollout.strategy == "Canary" and stable is not None and desired != stable:
        split = plan_canary(p, spec, desired, stable, observed, total)
    else:
        split = plan_rolling(p, desired, stable, observed, total)
    serving.apply_split(p, spec, ref, desired, rendered, observed, split)
    status.stable_revision = split.stable
    status.canary_revision = split.canary
    status.revisions = revisions.prune_history(
        status.revisions, spec.rollout.revision_history_limit, keep=[split.stable, split.canary, desired]
    )
    p.plan.delete += retention.prune(
        eval_runs=p.world.eval_runs,
        jobs=p.world.jobs,
        configmaps=p.world.configmaps,
        kept_revisions=[r.revision for r in status.revisions] + [split.stable, split.canary, desired],
        loader_job=revisions.cache_job_name(p.name, revisions.cache_key(spec))
        if spec.cache.enabled
        else None,
        current_eval_run=current_eval_run_name(status.rollout),
        eval_run_history=p.world.eval_run_history,
    )
    plan_status(p, spec, ref, split.stable, split.canary, total, gpu_plan, desired=desired)


def _stable(p: Pass, desired: str, observed: dict[str, revisions.ObservedRevision]) -> str | None:
    """The stable revision, decided from the Deployments the operator owns: status is a record
    anyone with status access may write, so a recorded revision without a Deployment never
    decides what is deleted. When they disagree, the serving Deployment other than the desired
    one wins and the record is corrected (StatusCorrected says so)."""
    recorded = p.status.stable_revision
    if recorded in observed:
        if (
            c := cond.get_condition(p.conditions, cond.STATUS_CORRECTED)
        ) and c.observed_generation != p.generation:
            p.clear(cond.STATUS_CORRECTED)
        return recorded
    serving = serving_revision(p.world.deployments, exclude=desired)
    if recorded and serving is not None:
        message = (
            f"status.stableRevision was {recorded!r}, which has no Deployment; revision {serving} is "
            "the one serving, so it stays stable (status is not an authority for deleting anything)"
        )
        p.set(cond.STATUS_CORRECTED, "True", Reason.STABLE_REVISION_CORRECTED, message)
        p.event("Warning", Reason.STABLE_REVISION_CORRECTED, message)
        return serving
    if recorded and desired != recorded:
        # the stable Deployment is gone (deleted by hand): its template cannot be re-rendered
        # from a spec that moved on, so the desired revision takes over as on a first deploy
        p.event("Warning", "StableRevisionLost", f"Deployment of stable revision {recorded} is gone")
    return serving


__all__ = ["ModelPlan", "SecretCheck", "World", "plan_model"]
