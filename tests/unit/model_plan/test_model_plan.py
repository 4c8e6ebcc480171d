"""`plan_model`: what one reconcile pass decides for a Model, without a cluster.

Each test builds a `World` (the Model, the owned objects the watch caches would hold, the Secret
check, the GPU inventory) and asserts on the plan: objects to apply, revisions to scale or
delete, the status written and the Events. `Sim` plays the cluster between passes (applies,
scales, deletes, pods becoming ready) so lifecycles can be walked pass by pass.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmops_operator.api.model import ModelSpec
from llmops_operator.api.model_status import ModelStatus
from llmops_operator.gpu.planner import GpuNodeInfo
from llmops_operator.model_plan import ModelPlan, SecretCheck, World, plan_model
from llmops_operator.model_plan.serving import addresses_revisions
from llmops_operator.revisions import revision_hash

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
IMAGE = "llmops-operator:test"
H100 = "NVIDIA-H100-80GB-HBM3"
INVENTORY = (
    GpuNodeInfo("h100-0", H100, 8, 81559),
    GpuNodeInfo("h100-1", H100, 8, 81559),
    GpuNodeInfo("a100-0", "NVIDIA-A100-SXM4-80GB", 8, 81920),
)

SPEC: dict[str, Any] = {
    "source": {"uri": "hf://org/tiny-llm", "revision": "main"},
    "engine": {"type": "vllm", "args": ["--enable-prefix-caching"]},
    "resources": {"gpus": 2, "gpuProducts": [H100]},
    "replicas": 2,
}


# ---------------------------------------------------------------------------------------------
# builders
# ---------------------------------------------------------------------------------------------


def model_obj(
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    *,
    name: str = "m",
    generation: int = 1,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": "uid-1", "generation": generation}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": copy.deepcopy(spec or SPEC), "status": copy.deepcopy(status or {})}


def with_spec(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = copy.deepcopy(base or SPEC)
    node = spec
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return spec


def rev_of(spec: dict[str, Any]) -> str:
    return revision_hash(ModelSpec.model_validate(spec))


def deployment(
    model: str,
    revision: str,
    replicas: int,
    ready: int,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": f"{model}-{revision}",
            "namespace": "ns",
            "labels": {"llmops.dev/model": model, "llmops.dev/revision": revision},
        },
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "readyReplicas": ready, "conditions": conditions or []},
    }


def pod(
    revision: str,
    *,
    name: str = "p-0",
    conditions: list[dict[str, Any]] | None = None,
    waiting: dict[str, str] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Pending", "conditions": conditions or []}
    if waiting is not None:
        status["containerStatuses"] = [{"name": "engine", "ready": False, "state": {"waiting": waiting}}]
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "labels": {"llmops.dev/model": "m", "llmops.dev/revision": revision},
        },
        "status": status,
    }


def job(name: str, condition: str | None) -> dict[str, Any]:
    conditions = [{"type": condition, "status": "True"}] if condition else []
    return {"metadata": {"name": name, "namespace": "ns"}, "status": {"conditions": conditions}}


def prompt_version(prompt: str, version: int, content: str = "You help with {{ topic }}.") -> dict[str, Any]:
    return {
        "metadata": {"name": f"{prompt}-v{version}", "namespace": "ns"},
        "spec": {
            "prompt": prompt,
            "version": version,
            "messages": [{"role": "system", "content": content}],
            "variables": [{"name": "topic", "required": True}],
        },
    }


def world(model: dict[str, Any], **kwargs: Any) -> World:
    kwargs.setdefault("inventory", INVENTORY)
    kwargs.setdefault("now", NOW)
    return World(model=model, operator_image=IMAGE, **kwargs)


def applied(plan: ModelPlan) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in plan.apply]


def cond(plan: ModelPlan, type_: str) -> dict[str, Any] | None:
    return next((c for c in plan.status.get("conditions", []) if c["type"] == type_), None)


def cond_triple(plan: ModelPlan, type_: str) -> tuple[str, str, str] | None:
    c = cond(plan, type_)
    return None if c is None else (c["type"], c["status"], c["reason"])


def event_reasons(plan: ModelPlan) -> list[str]:
    return [reason for _, reason, _ in plan.events]


def history(plan: ModelPlan) -> dict[str, str]:
    return {r["revision"]: r["outcome"] for r in plan.status.get("revisions", [])}


@dataclass
class Sim:
    """The cluster between passes: applies, scales and deletes land; pods get ready on demand."""

    model: dict[str, Any]
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    clock: datetime = NOW
    view: Callable[[dict[str, Any]], dict[str, Any]] = lambda deployment: deployment
    """What the plan is handed of each Deployment (a cache may keep less than the full object)."""

    def step(self) -> ModelPlan:
        self.clock += timedelta(seconds=5)
        deployments = [self.view(d) for d in self.deployments.values()]
        plan = plan_model(world(self.model, deployments=deployments, now=self.clock, **self.extra))
        for obj in plan.apply:
            if obj["kind"] != "Deployment":
                continue
            name = obj["metadata"]["name"]
            previous = self.deployments.get(name, {}).get("status", {"replicas": 0, "readyReplicas": 0})
            self.deployments[name] = {**copy.deepcopy(obj), "status": previous}
        for name, replicas in plan.scale.items():
            if name in self.deployments:
                self.deployments[name]["spec"]["replicas"] = replicas
        for kind, name in plan.delete:
            if kind == "Deployment":
                self.deployments.pop(name, None)
        self.model = {**self.model, "status": plan.status}
        return plan

    def ready(self, name: str | None = None, count: int | None = None) -> None:
        """Pods of one (or every) Deployment become ready, up to `count` (default: all)."""
        for dep_name, dep in self.deployments.items():
            if name is not None and dep_name != name:
                continue
            want = dep["spec"]["replicas"]
            ready = want if count is None else min(count, want)
            dep["status"] = {"replicas": want, "readyReplicas": ready}
        # a scaled-down Deployment reports fewer pods
        for dep in self.deployments.values():
            dep["status"]["readyReplicas"] = min(
                dep["status"].get("readyReplicas", 0), dep["spec"]["replicas"]
            )

    def edit_spec(self, spec: dict[str, Any], **meta: Any) -> None:
        self.model = {
            **self.model,
            "spec": copy.deepcopy(spec),
            "metadata": {
                **self.model["metadata"],
                **meta,
                "generation": self.model["metadata"]["generation"] + 1,
            },
        }

    def settle(self) -> ModelPlan:
        """Pass, pods ready, pass: the Model's steady state."""
        self.step()
        self.ready()
        return self.step()


# ---------------------------------------------------------------------------------------------
# first deploy
# ---------------------------------------------------------------------------------------------


def test_first_deploy_applies_deployment_and_services_then_becomes_ready() -> None:
    # Given a new Model and nothing in the cluster
    sim = Sim(model_obj())
    revision = rev_of(SPEC)
    # When the first pass runs
    plan = sim.step()
    # Then the revision's Deployment and the shared Service are applied (nothing evaluates or
    # routes to one revision, so it gets no Service of its own)
    assert applied(plan) == [("Deployment", f"m-{revision}"), ("Service", "m")]
    assert plan.scale == {} and plan.delete == []
    dep = plan.apply[0]
    assert dep["spec"]["replicas"] == 2
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert dep["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    # and the Model is not Ready yet: the revision is rolling out, nothing serves
    assert plan.status["phase"] != "Ready"
    assert cond_triple(plan, "Available") == ("Available", "False", "ReplicasNotReady")
    assert cond(plan, "Ready")["status"] == "False"
    assert history(plan) == {revision: "Progressing"}
    assert plan.status["observedGeneration"] == 1
    assert plan.requeue_after is not None and plan.requeue_after <= 5

    # When its pods are ready and the next pass runs
    sim.ready()
    plan = sim.step()
    # Then the revision is stable and the Model Ready with its endpoint
    assert plan.status["phase"] == "Ready"
    assert plan.status["stableRevision"] == revision
    assert "canaryRevision" not in plan.status
    assert plan.status["endpoint"] == "http://m.ns.svc:8000/v1"
    assert plan.status["readyReplicas"] == 2
    assert cond_triple(plan, "Ready") == ("Ready", "True", "AllReady")
    assert cond_triple(plan, "Progressing") == ("Progressing", "True", "RolloutComplete")
    assert history(plan) == {revision: "Stable"}
    # one Event says so (each is an API request): Ready, not also RevisionStable and Progressing
    assert [(t, r) for t, r, _ in plan.events] == [("Normal", "ReadyAllReady")]

    # When nothing changes, a further pass emits no Events and writes the same status
    again = sim.step()
    assert again.events == []
    assert again.status == plan.status | {"conditions": again.status["conditions"]}
    assert [c["lastTransitionTime"] for c in again.status["conditions"]] == [
        c["lastTransitionTime"] for c in plan.status["conditions"]
    ]


# ---------------------------------------------------------------------------------------------
# RollingUpdate
# ---------------------------------------------------------------------------------------------


def test_rolling_update_scales_old_down_as_new_gets_ready_and_deletes_it_when_complete() -> None:
    # Given a Ready Model on revision `old`
    sim = Sim(model_obj())
    sim.settle()
    old = rev_of(SPEC)
    # When engine.args change
    new_spec = with_spec("engine.args", ["--enable-prefix-caching", "--max-num-seqs=64"])
    new = rev_of(new_spec)
    assert new != old
    sim.edit_spec(new_spec)
    plan = sim.step()
    # Then the new revision is applied at full size; the old keeps serving all its replicas
    assert ("Deployment", f"m-{new}") in applied(plan)
    assert plan.scale == {f"m-{old}": 2}
    assert plan.delete == []
    assert plan.status["stableRevision"] == old
    assert plan.status["canaryRevision"] == new
    assert plan.status["phase"] == "Progressing"
    assert cond_triple(plan, "Progressing") == ("Progressing", "True", "RollingUpdate")
    assert cond(plan, "Available")["status"] == "True"  # the old revision still serves
    assert history(plan) == {new: "Progressing", old: "Stable"}
    # both revisions are behind the shared Service while rolling
    assert [n for k, n in applied(plan) if k == "Service"] == ["m"]

    # When one new replica is ready, the old gives up one
    sim.ready(f"m-{new}", count=1)
    plan = sim.step()
    assert plan.scale == {f"m-{old}": 1}
    assert plan.delete == []

    # When all new replicas are ready, the old Deployment and Service are deleted
    sim.ready(f"m-{new}")
    plan = sim.step()
    assert plan.delete == [("Deployment", f"m-{old}"), ("Service", f"m-{old}")]
    assert plan.status["stableRevision"] == new
    assert "canaryRevision" not in plan.status
    assert plan.status["phase"] == "Ready"
    assert history(plan) == {new: "Stable", old: "Superseded"}
    assert event_reasons(plan) == ["RevisionStable"]  # not also ProgressingRolloutComplete
    assert list(sim.deployments) == [f"m-{new}"]


def test_new_revision_that_never_gets_ready_never_takes_the_old_one_down() -> None:
    sim = Sim(model_obj())
    sim.settle()
    old = rev_of(SPEC)
    new_spec = with_spec("engine.image", "vllm/vllm-openai:broken")
    new = rev_of(new_spec)
    sim.edit_spec(new_spec)
    sim.step()
    stuck = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
    sim.deployments[f"m-{new}"]["status"] = {"replicas": 2, "readyReplicas": 0, "conditions": stuck}
    waiting = {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}
    sim.extra = {"pods": [pod(new, waiting=waiting)]}
    for _ in range(3):
        plan = sim.step()
        assert plan.scale == {f"m-{old}": 2}
        assert plan.delete == []
    assert plan.status["stableRevision"] == old
    assert cond(plan, "Available")["status"] == "True"


def test_new_revision_stuck_after_stable_warns_with_the_container_reason() -> None:
    sim = Sim(model_obj())
    sim.settle()
    new_spec = with_spec("engine.image", "vllm/vllm-openai:broken")
    new = rev_of(new_spec)
    sim.edit_spec(new_spec)
    sim.step()
    stuck = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
    sim.deployments[f"m-{new}"]["status"] = {"replicas": 2, "readyReplicas": 0, "conditions": stuck}
    sim.extra = {"pods": [pod(new, waiting={"reason": "ImagePullBackOff", "message": "not found"})]}
    plan = sim.step()
    warnings = [(r, m) for t, r, m in plan.events if t == "Warning"]
    assert ("PodsNeverReady", f"revision {new}: pod p-0: ImagePullBackOff: not found") in warnings


def test_label_or_annotation_change_keeps_the_revision_and_adds_no_history() -> None:
    sim = Sim(model_obj())
    settled = sim.settle()
    sim.model["metadata"]["labels"] = {"team": "search"}
    sim.model["metadata"]["annotations"] = {"note": "x"}
    plan = sim.step()
    assert plan.status["stableRevision"] == settled.status["stableRevision"]
    assert plan.status["revisions"] == settled.status["revisions"]
    assert applied(plan) == applied(settled)
    assert plan.delete == []
    assert plan.events == []


@pytest.mark.parametrize(
    ("path", "value", "changes"),
    [
        ("engine.args", ["--max-num-seqs=8"], True),
        ("engine.env", [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}], True),
        ("serving.maxModelLen", 4096, True),
        ("source.revision", "v2", True),
        ("replicas", 1, False),
        ("rollout.revisionHistoryLimit", 2, False),
    ],
)
def test_which_spec_changes_make_a_new_revision(path: str, value: Any, changes: bool) -> None:
    sim = Sim(model_obj())
    before = sim.settle().status["stableRevision"]
    spec = with_spec(path, value)
    sim.edit_spec(spec)
    plan = sim.step()
    new = rev_of(spec)
    assert (new != before) is changes
    if changes:
        assert plan.status["canaryRevision"] == new
        assert ("Deployment", f"m-{new}") in applied(plan)
    else:
        assert plan.status["stableRevision"] == before
        assert "canaryRevision" not in plan.status
        assert len(plan.status["revisions"]) == 1


def test_scaling_up_the_stable_revision_is_not_a_rollout() -> None:
    """More replicas of the same revision: no canary, no `RollingUpdate`, the stable one scales."""
    sim = Sim(model_obj())
    stable = sim.settle().status["stableRevision"]
    sim.edit_spec(with_spec("replicas", 5))
    plan = sim.step()
    assert plan.status["stableRevision"] == stable
    assert plan.status.get("canaryRevision") is None  # not a canary of itself
    assert cond(plan, "Progressing")["reason"] != "RollingUpdate"
    assert plan.delete == []


def test_replicas_change_rescales_the_stable_revision_in_place() -> None:
    sim = Sim(model_obj())
    sim.settle()
    sim.edit_spec(with_spec("replicas", 4))
    plan = sim.step()
    dep = next(o for o in plan.apply if o["kind"] == "Deployment")
    assert dep["metadata"]["name"] == f"m-{rev_of(SPEC)}"
    assert dep["spec"]["replicas"] == 4


# ---------------------------------------------------------------------------------------------
# invalid spec
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "in_message"),
    [
        (with_spec("engine.type", "llama.cpp"), "engine.type"),
        (with_spec("source.uri", "ftp://nowhere"), "source.uri"),
        (with_spec("resources.gpus", 0), "resources.gpus must be at least 1"),
        ({"engine": {"type": "vllm"}}, "source"),
    ],
    ids=["unknown-engine", "malformed-uri", "gpus-0-vllm", "no-source"],
)
def test_invalid_spec_fails_with_a_message_and_touches_nothing(spec: dict[str, Any], in_message: str) -> None:
    plan = plan_model(world(model_obj(spec)))
    assert plan.status["phase"] == "Failed"
    ready = cond(plan, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert ready["message"].startswith("spec is invalid: ")
    assert in_message in ready["message"]
    assert plan.apply == [] and plan.scale == {} and plan.delete == []
    assert ("Warning", "ReadyInvalidSpec") in [(t, r) for t, r, _ in plan.events]
    ModelStatus.model_validate(plan.status)


def test_invalid_spec_on_a_serving_model_leaves_the_stable_revision_alone() -> None:
    sim = Sim(model_obj())
    settled = sim.settle()
    sim.edit_spec(with_spec("engine.type", "llama.cpp"))
    plan = sim.step()
    assert plan.status["phase"] == "Failed"
    assert plan.status["stableRevision"] == settled.status["stableRevision"]
    assert plan.delete == [] and plan.scale == {}


# ---------------------------------------------------------------------------------------------
# credentials
# ---------------------------------------------------------------------------------------------

SECRET_SPEC = with_spec("source.credentialsSecretRef", {"name": "hf-token", "key": "token"})


@pytest.mark.parametrize(
    ("secret", "reason", "message"),
    [
        (None, "SecretMissing", "Secret hf-token not found in namespace ns; create it with key token"),
        (SecretCheck(exists=False, has_key=False), "SecretMissing", "Secret hf-token not found"),
        (SecretCheck(exists=True, has_key=False), "SecretKeyMissing", "Secret hf-token has no key token"),
    ],
)
def test_missing_secret_or_key_blocks_the_first_revision(
    secret: SecretCheck | None, reason: str, message: str
) -> None:
    plan = plan_model(world(model_obj(SECRET_SPEC), secret=secret))
    c = cond(plan, "CredentialsReady")
    assert (c["status"], c["reason"]) == ("False", reason)
    assert message in c["message"]
    assert not [k for k, _ in applied(plan) if k == "Deployment"]
    assert cond_triple(plan, "Progressing") == ("Progressing", "False", "RevisionBlocked")
    assert cond(plan, "Ready")["reason"] == reason
    assert plan.status["phase"] == "Pending"
    assert f"CredentialsReady{reason}" in event_reasons(plan)
    # the token value is never in the plan (only the Secret's name and key)
    assert "hf_" not in repr(plan)


def test_secret_found_lets_the_revision_through() -> None:
    plan = plan_model(world(model_obj(SECRET_SPEC), secret=SecretCheck(exists=True, has_key=True)))
    assert cond_triple(plan, "CredentialsReady") == ("CredentialsReady", "True", "SecretFound")
    dep = next(o for o in plan.apply if o["kind"] == "Deployment")
    env = dep["spec"]["template"]["spec"]["containers"][0]["env"]
    token = next(e for e in env if e["name"] == "HF_TOKEN")
    assert token["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "token"}


def test_secret_deleted_later_blocks_the_new_revision_while_stable_keeps_serving() -> None:
    sim = Sim(model_obj(SECRET_SPEC), extra={"secret": SecretCheck(True, True)})
    settled = sim.settle()
    stable = settled.status["stableRevision"]
    sim.extra = {"secret": SecretCheck(False, False)}
    new_spec = with_spec("engine.args", ["--max-num-seqs=4"], SECRET_SPEC)
    sim.edit_spec(new_spec)
    plan = sim.step()
    assert cond(plan, "CredentialsReady")["reason"] == "SecretMissing"
    assert [n for k, n in applied(plan) if k == "Deployment"] == []
    assert plan.scale == {f"m-{stable}": 2}
    assert plan.delete == []
    assert plan.status["stableRevision"] == stable
    assert ("Service", "m") in applied(plan)
    assert plan.status["phase"] == "Degraded"
    assert cond(plan, "Available")["status"] == "True"


# ---------------------------------------------------------------------------------------------
# prompts
# ---------------------------------------------------------------------------------------------

PROMPT_SPEC = with_spec("prompts", [{"name": "support", "version": 2}])


@pytest.mark.parametrize(
    ("versions", "reason", "in_message"),
    [
        ([], "PromptVersionMissing", "PromptVersion support version 2 does not exist"),
        ([prompt_version("support", 1)], "PromptVersionMissing", "version 2 does not exist"),
        ([prompt_version("support", 2, "Hi {{ undeclared }}")], "PromptVersionInvalid", "undeclared"),
        ([prompt_version("support", 2, "{% if %}")], "PromptVersionInvalid", "does not compile"),
    ],
    ids=["none", "other-version", "undeclared-variable", "syntax-error"],
)
def test_missing_or_invalid_prompt_version_blocks_the_revision(
    versions: list[dict[str, Any]], reason: str, in_message: str
) -> None:
    plan = plan_model(world(model_obj(PROMPT_SPEC), prompt_versions=versions))
    c = cond(plan, "PromptsReady")
    assert (c["status"], c["reason"]) == ("False", reason)
    assert in_message in c["message"]
    assert not [k for k, _ in applied(plan) if k in ("Deployment", "ConfigMap")]
    assert cond(plan, "Ready")["status"] == "False"
    assert f"PromptsReady{reason}" in event_reasons(plan)


def test_bound_prompt_version_adds_a_configmap_and_changes_the_revision() -> None:
    plan = plan_model(world(model_obj(PROMPT_SPEC), prompt_versions=[prompt_version("support", 2)]))
    assert cond_triple(plan, "PromptsReady") == ("PromptsReady", "True", "PromptsResolved")
    kinds = [k for k, _ in applied(plan)]
    assert "ConfigMap" in kinds and "Deployment" in kinds
    revision = plan.status["canaryRevision"]
    assert revision != rev_of(PROMPT_SPEC)  # the prompts' content is part of the revision
    other = plan_model(
        world(
            model_obj(PROMPT_SPEC), prompt_versions=[prompt_version("support", 2, "Talk about {{ topic }}.")]
        )
    )
    assert other.status["canaryRevision"] != revision


# ---------------------------------------------------------------------------------------------
# weight cache
# ---------------------------------------------------------------------------------------------

CACHE_SPEC = with_spec("cache", {"enabled": True, "size": "40Gi"})


def loader_job_name(plan: ModelPlan) -> str:
    return next(n for k, n in applied(plan) if k == "Job")


@pytest.mark.parametrize(
    ("job_condition", "status", "reason", "deployment"),
    [
        (None, "False", "Loading", False),
        ("Failed", "False", "LoadFailed", False),
        ("Complete", "True", "Loaded", True),
        ("SuccessCriteriaMet", "True", "Loaded", True),
    ],
)
def test_cache_loader_job_gates_the_deployment(
    job_condition: str | None, status: str, reason: str, deployment: bool
) -> None:
    first = plan_model(world(model_obj(CACHE_SPEC)))
    name = loader_job_name(first)
    jobs = [job(name, job_condition)] if job_condition else []
    plan = plan_model(world(model_obj(CACHE_SPEC), jobs=jobs))
    kinds = [k for k, _ in applied(plan)]
    assert kinds[:2] == ["PersistentVolumeClaim", "Job"]
    assert ("Deployment" in kinds) is deployment
    assert cond_triple(plan, "CacheReady") == ("CacheReady", status, reason)
    assert plan.status["cache"]["pvcName"] == "m-cache"
    assert plan.status["cache"]["ready"] is deployment
    if not deployment:
        assert plan.status["phase"] == "Pending"
        assert cond(plan, "Ready")["reason"] == reason
    if job_condition == "Failed":
        assert f"kubectl logs job/{name}" in cond(plan, "CacheReady")["message"]


def test_cache_walks_loading_then_loaded_with_events() -> None:
    sim = Sim(model_obj(CACHE_SPEC))
    plan = sim.step()
    assert "CacheReadyLoading" in event_reasons(plan)
    sim.extra = {"jobs": [job(loader_job_name(plan), "Complete")]}
    plan = sim.step()
    assert "CacheReadyLoaded" in event_reasons(plan)
    dep = next(o for o in plan.apply if o["kind"] == "Deployment")
    volumes = dep["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "weights-cache",
        "persistentVolumeClaim": {"claimName": "m-cache", "readOnly": True},
    } in volumes
    sim.ready()
    assert sim.step().status["phase"] == "Ready"


# ---------------------------------------------------------------------------------------------
# scheduling
# ---------------------------------------------------------------------------------------------

UNSCHEDULABLE = {
    "type": "PodScheduled",
    "status": "False",
    "reason": "Unschedulable",
    "message": "0/7 nodes are available: 2 Insufficient nvidia.com/gpu, 5 node(s) didn't match "
    "Pod's node affinity/selector.",
}


def test_unschedulable_pod_sets_scheduled_false_with_the_scheduler_message() -> None:
    revision = rev_of(SPEC)
    plan = plan_model(
        world(
            model_obj(),
            deployments=[deployment("m", revision, 2, 0)],
            pods=[pod(revision, conditions=[UNSCHEDULABLE])],
        )
    )
    c = cond(plan, "Scheduled")
    assert (c["status"], c["reason"]) == ("False", "Unschedulable")
    assert "Insufficient nvidia.com/gpu" in c["message"] and "pod p-0" in c["message"]
    assert cond(plan, "Ready")["reason"] == "Unschedulable"
    assert "ScheduledUnschedulable" in event_reasons(plan)


def test_terminating_pods_do_not_count_as_unschedulable() -> None:
    revision = rev_of(SPEC)
    gone = pod(revision, conditions=[UNSCHEDULABLE])
    gone["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    plan = plan_model(world(model_obj(), deployments=[deployment("m", revision, 2, 0)], pods=[gone]))
    assert cond(plan, "Scheduled")["status"] == "True"


def test_a_bound_pod_with_a_stale_scheduler_error_is_scheduled() -> None:
    """Seen after an API server restart: the scheduler's binding POST was refused, its retry bound
    the pod, and PodScheduled stayed False (SchedulerError) next to a Running, Ready pod."""
    revision = rev_of(SPEC)
    stale = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "SchedulerError",
        "message": 'running Bind plugin "DefaultBinder": Post ".../binding": connect: connection refused',
    }
    bound = pod(revision, conditions=[stale])
    bound.setdefault("spec", {})["nodeName"] = "kwok-h100-0"
    plan = plan_model(world(model_obj(), deployments=[deployment("m", revision, 1, 1)], pods=[bound]))
    assert cond(plan, "Scheduled")["status"] == "True"
    assert cond(plan, "Ready")["reason"] != "Unschedulable"


@pytest.mark.parametrize(
    ("resources", "in_message"),
    [
        ({"gpus": 9, "gpuProducts": [H100]}, f"no node offers 9 x {H100}; the largest has 8"),
        ({"gpus": 1, "gpuProducts": ["NVIDIA-B200"]}, "no node has NVIDIA-B200"),
    ],
)
def test_request_no_node_can_hold_sets_no_fitting_node(resources: dict[str, Any], in_message: str) -> None:
    plan = plan_model(world(model_obj(with_spec("resources", resources))))
    c = cond(plan, "Scheduled")
    assert (c["status"], c["reason"]) == ("False", "NoFittingNode")
    assert in_message in c["message"]
    assert plan.status["phase"] != "Ready"
    assert "ScheduledNoFittingNode" in event_reasons(plan)
    assert in_message in plan.status["plan"]["reason"]


def test_pods_never_ready_sets_available_false_with_the_container_reason() -> None:
    revision = rev_of(SPEC)
    stuck = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
    waiting = {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}
    plan = plan_model(
        world(
            model_obj(),
            deployments=[deployment("m", revision, 2, 0, conditions=stuck)],
            pods=[pod(revision, waiting=waiting)],
        )
    )
    c = cond(plan, "Available")
    assert (c["status"], c["reason"]) == ("False", "PodsNeverReady")
    assert "progress deadline exceeded" in c["message"]
    assert "CrashLoopBackOff" in c["message"]
    assert cond(plan, "Ready")["reason"] == "PodsNeverReady"
    assert "AvailablePodsNeverReady" in event_reasons(plan)


def test_pods_still_starting_are_not_never_ready() -> None:
    revision = rev_of(SPEC)
    plan = plan_model(
        world(
            model_obj(),
            deployments=[deployment("m", revision, 2, 0)],
            pods=[pod(revision, waiting={"reason": "ContainerCreating"})],
        )
    )
    c = cond(plan, "Available")
    assert (c["status"], c["reason"]) == ("False", "ReplicasNotReady")
    assert "ContainerCreating" not in c["message"]


# ---------------------------------------------------------------------------------------------
# drift and lost objects
# ---------------------------------------------------------------------------------------------


def test_every_pass_reapplies_the_owned_objects_so_deleted_ones_come_back() -> None:
    sim = Sim(model_obj())
    settled = sim.settle()
    stable = settled.status["stableRevision"]
    # the stable Deployment is deleted by someone else
    del sim.deployments[f"m-{stable}"]
    plan = sim.step()
    assert ("Deployment", f"m-{stable}") in applied(plan)
    assert ("Service", "m") in applied(plan)
    sim.ready()
    assert sim.step().status["phase"] == "Ready"


# ---------------------------------------------------------------------------------------------
# canary (wiring only; the machine is tested in test_rollout_machine.py)
# ---------------------------------------------------------------------------------------------

CANARY_SPEC = with_spec(
    "rollout", {"strategy": "Canary", "canary": {"steps": [{"setWeight": 50}, {"pause": {}}]}}
)


def test_canary_first_pass_sets_rollout_status_and_scales_by_weight() -> None:
    sim = Sim(model_obj(CANARY_SPEC))
    settled = sim.settle()
    stable = settled.status["stableRevision"]
    assert settled.status["phase"] == "Ready"  # the first revision goes straight to stable
    new_spec = with_spec("engine.args", ["--max-num-seqs=16"], CANARY_SPEC)
    canary = rev_of(new_spec)
    sim.edit_spec(new_spec)
    plan = sim.step()
    assert plan.status["stableRevision"] == stable
    assert plan.status["canaryRevision"] == canary
    assert plan.status["phase"] == "Progressing"
    rollout = plan.status["rollout"]
    assert rollout["stepIndex"] == 0
    dep = next(o for o in plan.apply if o["kind"] == "Deployment")
    assert dep["metadata"]["name"] == f"m-{canary}"
    assert dep["spec"]["replicas"] == 1  # 50% of 2
    assert f"m-{stable}" in plan.scale
    assert plan.delete == []
    assert cond(plan, "Progressing")["reason"] == "CanaryProgressing"


@pytest.mark.parametrize("written", ["bogus0000", "", None])
def test_a_hand_written_stable_revision_never_deletes_the_serving_deployment(written: str | None) -> None:
    """Given a canary halfway, When someone writes status.stableRevision to a revision without a
    Deployment (or clears it), Then the serving Deployment stays stable, nothing is deleted or
    promoted, and StatusCorrected says what happened (when a value was written)."""
    sim = Sim(model_obj(CANARY_SPEC))
    stable = sim.settle().status["stableRevision"]
    new_spec = with_spec("engine.args", ["--max-num-seqs=16"], CANARY_SPEC)
    sim.edit_spec(new_spec)
    sim.step()
    sim.ready()
    sim.model["status"] = {**sim.model["status"], "stableRevision": written}
    for _ in range(3):
        plan = sim.step()
        assert plan.delete == []
        assert plan.status["stableRevision"] == stable
        assert plan.status["canaryRevision"] == rev_of(new_spec)
    assert f"m-{stable}" in sim.deployments
    corrected = cond(plan, "StatusCorrected")
    if written:
        assert corrected is not None and written in corrected["message"]
        assert corrected["reason"] == "StableRevisionCorrected"
    else:
        assert corrected is None


def _gate_spec(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return with_spec("rollout", {"strategy": "Canary", "canary": {"steps": steps}})


@pytest.mark.parametrize(
    ("steps", "promoted"),
    [
        ([{"evalGate": {"name": "quality"}}, {"setWeight": 50}, {"pause": {}}], False),
        ([{"evalGate": {"name": "quality"}}], True),
    ],
)
def test_eval_gate_verdict_comes_from_the_eval_run_in_status(
    steps: list[dict[str, Any]], promoted: bool
) -> None:
    """EvalGatePassed is read from status.rollout.evalRun, also in the pass that moves past the
    gate, and stays after a last-step gate's revision is promoted."""
    sim = Sim(model_obj(_gate_spec(steps)))
    sim.settle()
    sim.edit_spec(with_spec("engine.args", ["--max-num-seqs=16"], _gate_spec(steps)))
    sim.step()
    sim.ready()
    started = sim.step()
    assert not [o for o in started.apply if o["kind"] == "EvalRun"], "its name is persisted first"
    created = sim.step()
    run = next(o for o in created.apply if o["kind"] == "EvalRun")
    assert cond_triple(created, "EvalGatePassed") == ("EvalGatePassed", "Unknown", "EvalRunning")
    reported = {**run, "status": {"phase": "Passed", "message": "3/3 cases passed"}}
    sim.extra["eval_runs"] = [reported]
    sim.ready()
    passed = sim.step()
    assert cond_triple(passed, "EvalGatePassed") == ("EvalGatePassed", "True", "EvalPassed")
    assert "3/3 cases passed" in cond(passed, "EvalGatePassed")["message"]
    assert "EvalGatePassed" in event_reasons(passed)
    if promoted:
        for _ in range(4):
            sim.ready()
            passed = sim.step()
        assert "canaryRevision" not in passed.status and "rollout" not in passed.status
        assert cond_triple(passed, "EvalGatePassed") == ("EvalGatePassed", "True", "EvalPassed")
    else:
        assert passed.status["rollout"]["evalRun"]["phase"] == "Passed"
        assert passed.status["rollout"]["stepIndex"] >= 1


# ---------------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------------

label_keys = st.from_regex(r"[a-z]([a-z0-9.-]{0,20}/)?[a-z][a-z0-9-]{0,20}", fullmatch=True)
label_values = st.from_regex(r"[a-zA-Z0-9._-]{0,30}", fullmatch=True)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    labels=st.dictionaries(label_keys, label_values, max_size=5),
    annotations=st.dictionaries(label_keys, st.text(max_size=40), max_size=5),
)
def test_metadata_changes_never_change_the_revision_or_the_apply_set(
    labels: dict[str, str], annotations: dict[str, str]
) -> None:
    base = plan_model(world(model_obj()))
    changed = plan_model(world(model_obj(labels=labels, annotations=annotations)))
    assert changed.apply == base.apply
    assert changed.status["canaryRevision"] == base.status["canaryRevision"]


scenario = st.fixed_dictionaries(
    {
        "secret": st.sampled_from(
            [None, SecretCheck(False, False), SecretCheck(True, False), SecretCheck(True, True)]
        ),
        "with_secret_ref": st.booleans(),
        "cache": st.booleans(),
        "job": st.sampled_from([None, "Complete", "Failed"]),
        "prompt": st.sampled_from(["none", "missing", "valid", "invalid"]),
        "gpus": st.sampled_from([1, 2, 8, 9, "auto"]),
        "replicas": st.integers(0, 4),
        "strategy": st.sampled_from(["RollingUpdate", "Canary"]),
        "ready_steps": st.lists(st.integers(0, 4), max_size=4),
        "stuck": st.booleans(),
        "unschedulable": st.booleans(),
        "change_args": st.booleans(),
    }
)


def scenario_spec(s: dict[str, Any], args: list[str]) -> dict[str, Any]:
    spec = with_spec("resources.gpus", s["gpus"])
    spec["replicas"] = s["replicas"]
    spec["engine"]["args"] = args
    if s["with_secret_ref"]:
        spec["source"]["credentialsSecretRef"] = {"name": "hf-token", "key": "token"}
    if s["cache"]:
        spec["cache"] = {"enabled": True}
    if s["prompt"] != "none":
        spec["prompts"] = [{"name": "support", "version": 1}]
    if s["strategy"] == "Canary":
        spec["rollout"] = CANARY_SPEC["rollout"]
    return spec


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=scenario)
def test_any_sequence_of_passes_writes_a_valid_status_and_is_quiet_when_nothing_changes(
    s: dict[str, Any],
) -> None:
    """Whatever the cluster reports, the status is a valid ModelStatus, every Deployment the plan
    keeps belongs to a known revision, and a pass over an unchanged world emits no Events."""
    versions = {
        "none": [],
        "missing": [],
        "valid": [prompt_version("support", 1)],
        "invalid": [prompt_version("support", 1, "{{ nope }}")],
    }[s["prompt"]]
    sim = Sim(model_obj(scenario_spec(s, ["--a"])))
    sim.extra = {"secret": s["secret"], "prompt_versions": versions}
    plan = sim.step()
    if s["cache"] and s["job"]:
        sim.extra["jobs"] = [job(loader_job_name(plan), s["job"])]
    for count in s["ready_steps"]:
        sim.ready(count=count)
        plan = sim.step()
        if s["change_args"]:
            sim.edit_spec(scenario_spec(s, [f"--a={count}"]))
        if s["stuck"] or s["unschedulable"]:
            revision = plan.status.get("canaryRevision") or plan.status.get("stableRevision")
            if revision:
                sim.extra["pods"] = [
                    pod(
                        revision,
                        conditions=[UNSCHEDULABLE] if s["unschedulable"] else [],
                        waiting={"reason": "CrashLoopBackOff"} if s["stuck"] else None,
                    )
                ]
    plan = sim.step()
    status = ModelStatus.model_validate(plan.status)
    known = {r.revision for r in status.revisions}
    for name in [n for k, n in applied(plan) if k == "Deployment"] + list(plan.scale):
        assert name.removeprefix("m-") in known, (name, known)
    if status.stable_revision:
        assert status.stable_revision in known
    types = [c.type for c in status.conditions]
    assert len(types) == len(set(types))
    assert types[-1] == "Ready"
    # once the cluster has caught up with the plan, a pass over an unchanged world says nothing
    sim.step()
    settled = sim.step()
    quiet = sim.step()
    if not quiet.status.get("rollout"):  # a canary's step timers move on their own
        assert quiet.events == []
        assert quiet.status == settled.status


# ---------------------------------------------------------------------------------------------
# revision Services
# ---------------------------------------------------------------------------------------------

EVAL_STEPS = {
    "strategy": "Canary",
    "canary": {"steps": [{"evalGate": {"name": "quality"}}, {"setWeight": 50}]},
}
GATEWAY = {
    "strategy": "Canary",
    "canary": {
        "steps": [{"setWeight": 50}],
        "trafficRouting": {"gatewayAPI": {"httpRoute": "r"}},
    },
}
MONITORED = {"evaluations": [{"gate": "quality", "schedule": {"interval": "10m"}}]}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (SPEC, False),
        (with_spec("rollout", {"strategy": "Canary", "canary": {"steps": [{"setWeight": 50}]}}), False),
        (with_spec("rollout", EVAL_STEPS), True),
        (with_spec("rollout", GATEWAY), True),
        (with_spec("monitoring", MONITORED), True),
    ],
)
def test_a_revision_gets_a_service_of_its_own_only_where_something_addresses_it(
    spec: dict[str, Any], expected: bool
) -> None:
    assert addresses_revisions(ModelSpec.model_validate(spec)) is expected


def test_a_monitored_model_keeps_a_service_per_revision() -> None:
    sim = Sim(model_obj(with_spec("monitoring", MONITORED)))
    settled = sim.settle()
    stable = settled.status["stableRevision"]
    assert ("Service", f"m-{stable}") in applied(sim.step())


def test_a_revision_service_nothing_needs_any_more_is_deleted_once_observed() -> None:
    # Given a settled Model whose revision Service is still there (made by an older operator,
    # or when a scheduled evaluation was configured)
    sim = Sim(model_obj())
    stable = sim.settle().status["stableRevision"]
    sim.extra = {"service_names": ("m", f"m-{stable}")}
    # Then the next pass deletes it and applies none
    plan = sim.step()
    assert ("Service", f"m-{stable}") in plan.delete
    assert ("Service", f"m-{stable}") not in applied(plan)
    # and once it is gone, nothing more is planned for it
    sim.extra = {"service_names": ("m",)}
    assert ("Service", f"m-{stable}") not in sim.step().delete
