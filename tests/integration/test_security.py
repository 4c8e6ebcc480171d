"""Safe to share (issue 9) on the dev cluster: hostile or careless tenant input ends in a
rejection at apply time or a condition naming the cause, the pods the operator creates pass the
real API server's PodSecurity admission, and the operator keeps reconciling everything else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers_evals import prompt_spec, prompt_version
from helpers_model import Kubectl, condition, model_manifest, small_spec, unique

from llmops_operator.api.rollout import EndpointPickerSpec
from llmops_operator.evals import job as eval_jobs
from llmops_operator.resources import ModelRef
from llmops_operator.rollout.traffic.inference_pool import endpoint_picker, picker_identity
from polling import wait_for

pytestmark = pytest.mark.cluster

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
BASELINE = {
    "pod-security.kubernetes.io/enforce": "baseline",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def label_namespace(cluster: Any, namespace: str, labels: dict[str, str]) -> None:
    cluster.core.patch_namespace(namespace, {"metadata": {"labels": labels}})


def pods_of_job(kube: Kubectl, namespace: str, job: str) -> list[dict[str, Any]]:
    return kube.items("pods", namespace, f"batch.kubernetes.io/job-name={job}")


def failed_creates(kube: Kubectl, namespace: str, job: str) -> list[str]:
    return [
        e.get("message", "")
        for e in kube.items("events", namespace)
        if e.get("reason") == "FailedCreate" and (e.get("involvedObject") or {}).get("name") == job
    ]


def admitted(kube: Kubectl, namespace: str, job: str) -> Any:
    """The Job's first pod once it exists; a PodSecurity refusal fails at once with its message."""
    refused = failed_creates(kube, namespace, job)
    if refused:
        raise AssertionError(f"Job {job} pods refused: {refused}")
    return pods_of_job(kube, namespace, job)


def test_restricted_namespace_admits_the_loader_eval_job_and_endpoint_picker_pods(
    cluster: Any, kube: Kubectl, namespace: str, operator: Any
) -> None:
    label_namespace(cluster, namespace, RESTRICTED)
    # control: admission is on and enforcing here, so an admitted pod below passed it
    root = kube.run(
        "-n", namespace, "run", "root-pod", "--image=busybox", "--restart=Never",
        "--overrides", json.dumps({"spec": {"securityContext": {"runAsUser": 0}}}),
        check=False,
    )  # fmt: skip
    assert root.returncode != 0 and "violates PodSecurity" in root.stderr, root.stderr

    model = unique("cached")
    kube.apply(
        model_manifest(model, small_spec(replicas=1, cache={"enabled": True, "size": "1Gi"})), namespace
    )
    loader = wait_for(
        lambda: kube.items("jobs", namespace, f"llmops.dev/model={model},llmops.dev/component=cache-loader"),
        60,
        message="the operator's loader Job",
    )[0]["metadata"]["name"]
    loader_pods = wait_for(lambda: admitted(kube, namespace, loader), 60, message="loader pod admitted")
    assert loader_pods[0]["spec"]["securityContext"]["fsGroup"] == 65532

    # the eval Job exactly as the operator builds it, owned by the Model so it is collected with it
    owner_uid = kube.get("model", namespace, model)["metadata"]["uid"]
    owner = {"apiVersion": "llmops.dev/v1alpha1", "kind": "Model", "name": model, "uid": owner_uid}
    run_name = unique("run")
    run = {
        "metadata": {"name": run_name, "namespace": namespace, "labels": {}},
        "spec": {"gate": "quality", "model": model, "revision": "abc1234567"},
    }
    for obj in [
        *eval_jobs.eval_identity(run, None, owner, b"test-key"),
        eval_jobs.eval_job(run, "img", owner),
    ]:
        kube.apply(obj, namespace)
    eval_pods = wait_for(lambda: admitted(kube, namespace, run_name), 60, message="eval pod admitted")
    assert eval_pods[0]["spec"]["serviceAccountName"] == run_name

    # the endpoint picker of an InferencePool (inferencePool routing), as the operator builds it
    ref = ModelRef(model, namespace, owner_uid)
    picker = endpoint_picker(ref, "vllm", "abc1234567", EndpointPickerSpec(), owner)
    for obj in [*picker_identity(ref, owner), *picker]:
        kube.apply(obj, namespace)
    selector = ",".join(f"{k}={v}" for k, v in picker[0]["spec"]["selector"]["matchLabels"].items())

    def picker_pods() -> list[dict[str, Any]]:
        refused = [
            e.get("message", "")
            for e in kube.items("events", namespace)
            if e.get("reason") == "FailedCreate"
            and (e.get("involvedObject") or {}).get("name", "").startswith(picker[0]["metadata"]["name"])
        ]
        if refused:
            raise AssertionError(f"picker pods refused: {refused}")
        return kube.items("pods", namespace, selector)

    pods = wait_for(picker_pods, 60, message="picker pod admitted")
    assert pods[0]["spec"]["serviceAccountName"] == picker_identity(ref, owner)[0]["metadata"]["name"]


def test_baseline_namespace_admits_engine_pods(
    cluster: Any, kube: Kubectl, namespace: str, operator: Any
) -> None:
    label_namespace(cluster, namespace, BASELINE)
    model = unique("engine")
    kube.apply(model_manifest(model, small_spec(replicas=1)), namespace)
    pods = wait_for(
        lambda: kube.items("pods", namespace, f"llmops.dev/model={model}"), 60, message="engine pod admitted"
    )
    assert pods[0]["spec"]["automountServiceAccountToken"] is False
    replica_sets = kube.items("replicasets", namespace, f"llmops.dev/model={model}")
    assert not [e for e in kube.items("events", namespace) if e.get("reason") == "FailedCreate"], (
        f"engine pods refused under baseline ({[r['metadata']['name'] for r in replica_sets]})"
    )


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {
                "source": {
                    "uri": "hf://org/x",
                    "credentialsSecretRef": {"name": "../../kube-system/secrets/admin"},
                }
            },
            "should match",
        ),
        (
            {
                "rollout": {
                    "strategy": "Canary",
                    "canary": {"steps": [{"setWeight": 10}, {"pause": {"duration": "80000000h"}}]},
                }
            },
            "at most 168h",
        ),
        ({"source": {"uri": "pvc://weights/../../etc"}}, "'..' segments"),
        ({"replicas": 100000}, "should be less than or equal to 1000"),
    ],
    ids=["secret-path", "absurd-pause", "claim-path", "replicas"],
)
def test_hostile_models_are_rejected_at_apply_time(
    kube: Kubectl, namespace: str, patch: dict[str, Any], message: str
) -> None:
    result = kube.apply(model_manifest(unique("hostile"), small_spec(**patch)), namespace, check=False)
    assert result.returncode != 0, "the API server accepted a hostile Model"
    assert message in result.stderr, result.stderr


def test_a_deeply_nested_template_is_invalid_and_other_prompts_still_validate(
    kube: Kubectl, namespace: str, operator: Any
) -> None:
    deep = prompt_spec(1, system="{{ " + "(" * 2000 + "1" + ")" * 2000 + " }}", variables=[])
    kube.apply(prompt_version("deep-v1", deep), namespace)
    kube.apply(prompt_version("fine-v2", prompt_spec(2)), namespace)

    def status(name: str) -> Any:
        obj = kube.get("promptversion", namespace, name) or {}
        return obj.get("status") if "valid" in (obj.get("status") or {}) else None

    deep_status = wait_for(lambda: status("deep-v1"), 30, message="deep PromptVersion validated")
    assert deep_status["valid"] is False and "nests more than" in deep_status["reason"]
    assert wait_for(lambda: status("fine-v2"), 30, message="other PromptVersion validated")["valid"] is True


def test_a_route_in_another_namespace_needs_a_reference_grant(
    cluster: Any, kube: Kubectl, namespace: str, operator: Any
) -> None:
    """The operator does not lend its cluster-wide permission: without a ReferenceGrant in the
    route's namespace the Model is told so, and the route is never touched."""
    other = f"{namespace[:55]}-edge"
    cluster.core.create_namespace({"metadata": {"name": other, "labels": {"llmops.dev/test": "true"}}})
    try:
        model = unique("routed")
        route = {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "public", "namespace": other},
            "spec": {"rules": [{"backendRefs": [{"name": "someone-else", "port": 80}]}]},
        }
        kube.apply(route, other)
        before = kube.get("httproute", other, "public")
        spec = small_spec(
            replicas=1,
            rollout={
                "strategy": "Canary",
                "canary": {
                    "steps": [{"setWeight": 50}],
                    "trafficRouting": {"gatewayAPI": {"httpRoute": "public", "namespace": other}},
                },
            },
        )
        kube.apply(model_manifest(model, spec), namespace)

        def refused() -> dict[str, Any] | None:
            found = condition(kube.get("model", namespace, model), "TrafficRouting")
            return found if found.get("reason") == "RefNotPermitted" else None

        found = wait_for(refused, 60, message="TrafficRouting RefNotPermitted")
        assert found["status"] == "False" and f"ReferenceGrant in {other}" in found["message"]
        after = kube.get("httproute", other, "public")
        assert after["spec"] == before["spec"]
        assert not [
            m for m in after["metadata"].get("managedFields", []) if m["manager"] == "llmops-operator"
        ]
    finally:
        cluster.core.delete_namespace(other, propagation_policy="Background")
