"""Verdicts cannot be forged, and the eval Job runs as its own least-privilege identity
(issue 9 item 6: a pod mounting the eval ServiceAccount could patch any EvalRun to Passed)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.api.rollout import EvalRunStatus, RolloutStatus
from llmops_operator.evals import job as eval_jobs
from llmops_operator.evals import verdict
from llmops_operator.evals.gate import eval_result, eval_run_name

MASTER = b"master-key-for-tests"
STARTED = datetime(2026, 1, 1, tzinfo=UTC)
ROLLOUT = RolloutStatus(
    revision="abc1234567",
    eval_run=EvalRunStatus(gate="quality", step_index=1, started_at=STARTED, phase="Running"),
)
NAME = eval_run_name("abc1234567", "quality", 1, STARTED)
OWNER = {"apiVersion": "llmops.dev/v1alpha1", "kind": "Model", "name": "chat", "uid": "m-uid"}
GATE = {
    "metadata": {"name": "quality"},
    "spec": {
        "dataset": {"configMapRef": {"name": "cases", "key": "cases.jsonl"}},
        "assertions": [
            {"type": "llmJudge", "judge": {"model": "judge", "apiKeySecretRef": {"name": "judge-key"}}},
            {
                "type": "llmJudge",
                "judge": {"endpoint": "http://x/v1", "apiKeySecretRef": {"name": "ext", "key": "k"}},
            },
        ],
    },
}


def run(status: dict[str, Any], uid: str = "run-uid") -> dict[str, Any]:
    return {
        "metadata": {"name": NAME, "namespace": "team-a", "uid": uid, "labels": {}},
        "spec": {"gate": "quality", "model": "chat", "revision": "abc1234567"},
        "status": status,
    }


def signed(status: dict[str, Any], uid: str = "run-uid") -> dict[str, Any]:
    key = verdict.run_key(MASTER, "team-a", NAME)
    return {**status, "signature": verdict.sign(key, uid, status)}


PASSED = {"phase": "Passed", "revision": "abc1234567", "candidate": {"passRate": 1.0}}
FAILED = {
    "phase": "Failed",
    "revision": "abc1234567",
    "failingAssertions": ["judge"],
    "candidate": {"passRate": 0.2},
}


def test_a_signed_verdict_is_accepted() -> None:
    result = eval_result([run(signed(PASSED))], ROLLOUT, (), MASTER)
    assert result is not None and result.phase == "Passed"


def test_a_hand_written_passed_is_not_a_verdict() -> None:
    result = eval_result([run(PASSED)], ROLLOUT, (), MASTER)
    assert result is not None and result.phase == "Error"
    assert "without the signature" in result.message


def test_flipping_a_signed_failure_to_passed_breaks_the_signature() -> None:
    forged = {**signed(FAILED), "phase": "Passed", "failingAssertions": []}
    assert eval_result([run(forged)], ROLLOUT, (), MASTER).phase == "Error"


def test_a_signature_cannot_be_replayed_onto_another_run() -> None:
    """Same name, another object (deleted and re-created): the UID is part of what is signed."""
    assert eval_result([run(signed(PASSED, uid="old"), uid="new")], ROLLOUT, (), MASTER).phase == "Error"


def test_pending_and_running_need_no_signature() -> None:
    assert eval_result([run({"phase": "Running"})], ROLLOUT, (), MASTER).phase == "Running"


@given(st.dictionaries(st.sampled_from(["phase", "revision", "failingAssertions", "message"]), st.text()))
def test_without_the_key_no_status_verifies(status: dict[str, Any]) -> None:
    wrong_key = verdict.run_key(b"another-master", "team-a", NAME)
    forged = {**status, "signature": verdict.sign(wrong_key, "run-uid", status)}
    assert not verdict.verify(MASTER, run(forged))


def test_each_run_has_its_own_identity_limited_to_its_own_objects() -> None:
    eval_run = run({})
    objects = eval_jobs.eval_identity(eval_run, GATE, OWNER, MASTER)
    kinds = {o["kind"]: o for o in objects}
    assert set(kinds) == {"ServiceAccount", "Secret", "Role", "RoleBinding"}
    assert all(o["metadata"]["name"] == NAME for o in objects)
    rules = kinds["Role"]["rules"]
    writes = [r for r in rules if set(r["verbs"]) - {"get", "list", "watch"}]
    # the case record ConfigMap (evals/case_record.py): create cannot take resourceNames
    assert writes[1:] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "patch"]}
    ]
    assert writes[:1] == [
        {
            "apiGroups": ["llmops.dev"],
            "resources": ["evalruns/status"],
            "resourceNames": [NAME],
            "verbs": ["get", "patch"],
        }
    ]
    for rule in rules:
        assert rule.get("resourceNames") or rule["resources"] in (["promptversions"], ["configmaps"]), rule
    assert kinds["Secret"]["stringData"][verdict.SECRET_KEY] == verdict.run_key(MASTER, "team-a", NAME)
    assert kinds["RoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": NAME, "namespace": "team-a"}
    ]


def test_the_job_gets_keys_as_secret_refs_never_in_args() -> None:
    job = eval_jobs.eval_job(run({}), "img", OWNER, GATE)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["serviceAccountName"] == NAME
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert refs[verdict.KEY_ENV] == {"name": NAME, "key": verdict.SECRET_KEY}
    assert refs[eval_jobs.judge_key_env("judge-key", "token")] == {"name": "judge-key", "key": "token"}
    assert refs[eval_jobs.judge_key_env("ext", "k")] == {"name": "ext", "key": "k"}
    assert all("value" not in e for e in container["env"])
    assert not any("key" in arg.lower() or "token" in arg.lower() for arg in container["args"])


@pytest.mark.parametrize("builder", ["eval", "loader"])
def test_job_pods_meet_pod_security_restricted(builder: str) -> None:
    if builder == "eval":
        pod = eval_jobs.eval_job(run({}), "img", OWNER, GATE)["spec"]["template"]["spec"]
    else:
        from llmops_operator import resources
        from llmops_operator.api.model import ModelSpec

        spec = ModelSpec.model_validate(
            {"source": {"uri": "hf://org/repo"}, "engine": {"type": "vllm"}, "cache": {"enabled": True}}
        )
        ref = resources.ModelRef(name="chat", namespace="team-a")
        pod = resources.cache_loader_job(ref, spec, "img")["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["fsGroup"] == 65532
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}


def test_each_judge_uses_the_key_of_its_own_secret() -> None:
    from llmops_operator.api.evals import EvalGateSpec
    from llmops_operator.evals.runner import EvalSetupError, named_assertions, resolve_judges

    spec = EvalGateSpec.model_validate(
        {
            "prompt": {"name": "p"},
            "dataset": {"inline": [{"vars": {}}]},
            "assertions": [
                {
                    "type": "llmJudge",
                    "name": "a",
                    "rubric": "r",
                    "judge": {"endpoint": "http://a/v1", "apiKeySecretRef": {"name": "sa", "key": "k"}},
                },
                {"type": "llmJudge", "name": "b", "rubric": "r", "judge": {"endpoint": "http://b/v1"}},
            ],
        }
    )
    judges = resolve_judges(named_assertions(spec), {}, "shared", {("sa", "k"): "from-secret"})
    assert (judges["a"].api_key, judges["b"].api_key) == ("from-secret", "shared")
    with pytest.raises(EvalSetupError, match="'sa' key 'k' was not provided"):
        resolve_judges(named_assertions(spec), {}, "shared", {})


def test_the_signature_survives_the_round_trip_through_the_api_server() -> None:
    """JSON from the API server spells the signed 1.0 as 1."""
    as_read = {**signed(PASSED), "candidate": {"passRate": 1}}
    assert eval_result([run(as_read)], ROLLOUT, (), MASTER).phase == "Passed"


def test_a_hand_written_scheduled_verdict_reads_as_an_error() -> None:
    """Scheduled evaluations (monitoring) read runs through the same check as rollout gates."""
    assert verdict.trusted(MASTER, run(PASSED))["status"]["phase"] == "Error"
    assert verdict.trusted(MASTER, run(signed(PASSED)))["status"]["phase"] == "Passed"
