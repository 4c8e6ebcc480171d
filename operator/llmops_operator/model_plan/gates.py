"""What can block a new revision: its prompts, its credentials, its size facts, its weight cache. A blocked
revision is not rendered; the stable one keeps serving."""

from __future__ import annotations

from llmops_operator import conditions as cond
from llmops_operator import prompts, resources, revisions
from llmops_operator.api.common import LABEL_REVISION
from llmops_operator.api.model import ModelSpec
from llmops_operator.api.model_status import CacheStatus
from llmops_operator.api.prompt import PromptVersionSpec
from llmops_operator.conditions import Reason
from llmops_operator.model_plan.world import Pass
from llmops_operator.resources import job_state


def plan_prompts(p: Pass, spec: ModelSpec, blocked: list[str]) -> list[PromptVersionSpec]:
    """Resolve the bound PromptVersions; a missing or invalid one blocks the new revision."""
    prompt_specs, prompt_reason, prompt_message = prompts.resolve(spec.prompts, p.world.prompt_versions)
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


def plan_credentials(p: Pass, spec: ModelSpec, blocked: list[str]) -> None:
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


FACTS_POLL_SECONDS = 2.0
"""How often a revision held for Hub metadata looks again (the lookup also requeues it)."""


def plan_model_facts(p: Pass, spec: ModelSpec, desired: str, blocked: list[str]) -> None:
    """With `gpus: auto`, a revision not yet running waits (briefly: the lookup has a deadline)
    for the Hub's answer, so its GPU count is not fixed from a default it would then keep."""
    world = p.world
    if spec.resources.gpus != "auto" or not world.model_facts_pending:
        return
    if any((d["metadata"].get("labels") or {}).get(LABEL_REVISION) == desired for d in world.deployments):
        return
    blocked.append(f"reading the size of {spec.source.uri} from the Hugging Face Hub")
    p.requeue(FACTS_POLL_SECONDS)


def plan_cache(p: Pass, spec: ModelSpec, ref: resources.ModelRef, blocked: list[str]) -> None:
    """The weight cache PVC and its loader Job; until the Job succeeded the revision waits."""
    if not spec.cache.enabled:
        p.clear(cond.CACHE_READY)
        p.status.cache = None
        return
    owner = p.owner()
    p.plan.apply.append(resources.cache_pvc(ref, spec, owner))
    job = resources.cache_loader_job(ref, spec, p.world.operator_image, owner)
    p.plan.apply.append(job)
    observed_job = next((j for j in p.world.jobs if j["metadata"]["name"] == job["metadata"]["name"]), None)
    state = job_state(observed_job)
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
