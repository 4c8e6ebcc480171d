"""PromptVersion and EvalGate on the dev cluster with the real operator (issue 5 acceptance).

The engine pods are KWOK pods: they get Ready but answer nothing. The gate's requests go to the
OpenAI stub instead: the session operator runs with `LLMOPS_EVAL_ENDPOINT_TEMPLATE=
http://127.0.0.1:<stub>/r/{revision}/v1`, so revision R is played by stub route R, and the
`job_runner` fixture runs each eval Job's `llmops-operator eval --evalrun NS/NAME` as a local
process (KWOK runs no containers). Revision hashes are computed up front (`expected_revision`)
so each route is configured before its EvalRun can start.

What an eval Error means for the rollout, as `rollout/machine.py` implements it: the gate step
pauses the rollout (pause condition EvalGateError) and does not run again by itself, so fixing
the endpoint alone changes nothing; a person decides with `kubectl llmops promote` (clears
status.rollout.pauseConditions), which moves past the gate step, and the remaining steps run.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers_evals import (
    ANSWERS,
    FAILING_ASSERTIONS,
    GATE,
    MODEL,
    PROMPT,
    condition,
    diagnosis,
    eval_run_for,
    events_of,
    expected_revision,
    gate_manifest,
    gated_model_spec,
    prompt_spec,
    prompt_version,
    revision_record,
    wait_model,
)
from helpers_model import Kubectl, model_manifest, unique

from gitops_health import check_health
from llmops_operator import prompts, revisions
from llmops_operator.api.prompt import PromptVersionSpec
from llmops_operator.resources import PROMPTS_MOUNT
from plugin_snapshots import check_plugin_tree
from polling import wait_for

pytestmark = pytest.mark.cluster

GATE_TIMEOUT = 120.0
IMMUTABLE_MESSAGE = "PromptVersion spec is immutable; create a new version"


@pytest.fixture
def ns(namespace: str, operator: Any) -> str:
    """The test's namespace, watched by the session's operator."""
    return namespace


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def wait_status(kube: Kubectl, ns: str, kind: str, name: str, key: str, timeout: float = 30) -> dict:
    def check() -> dict[str, Any] | None:
        obj = kube.get(kind, ns, name)
        return obj if obj and key in (obj.get("status") or {}) else None

    return wait_for(check, timeout, message=f"{kind} {ns}/{name} status.{key}")  # type: ignore[no-any-return]


def status_of(model: dict[str, Any]) -> dict[str, Any]:
    return dict(model.get("status") or {})


def stable_is(revision: str) -> Any:
    def check(model: dict[str, Any]) -> bool:
        status = status_of(model)
        return bool(
            status.get("stableRevision") == revision
            and not status.get("canaryRevision")
            and condition(model, "Available").get("status") == "True"
        )

    return check


def deploy_stable(kube: Kubectl, ns: str, operator: Any, spec: dict[str, Any], bound: list[dict]) -> str:
    """First deployment of the Model (no canary steps: nothing to compare with); its revision."""
    revision = expected_revision(spec, bound)
    kube.apply(model_manifest(MODEL, spec), ns)
    wait_model(kube, ns, operator, f"revision {revision} stable and available", stable_is(revision))
    return revision


def apply_prompts_and_gate(kube: Kubectl, ns: str, *versions: int, gate: dict | None = None) -> None:
    for version in versions:
        kube.apply(prompt_version(f"{PROMPT}-v{version}", prompt_spec(version)), ns)
    kube.apply(gate or gate_manifest(), ns)


def start_prompt_change(
    kube: Kubectl, ns: str, operator: Any, stub: Any, candidate_mode: str, gate: dict | None = None
) -> tuple[str, str]:
    """Deploy with prompt v1 (stable answers well), then bind v2 only: (stable, candidate)."""
    tag = unique("t")
    apply_prompts_and_gate(kube, ns, 1, 2, gate=gate)
    stable_spec = gated_model_spec(1, tag)
    stable = expected_revision(stable_spec, [prompt_spec(1)])
    stub.configure_route(stable, mode="good", answers=ANSWERS)
    deploy_stable(kube, ns, operator, stable_spec, [prompt_spec(1)])

    candidate_spec = gated_model_spec(2, tag)
    candidate = expected_revision(candidate_spec, [prompt_spec(2)])
    assert candidate != stable, "a prompt change alone must make a new revision"
    stub.configure_route(candidate, mode=candidate_mode, answers=ANSWERS)
    kube.patch("model", ns, MODEL, {"spec": {"prompts": [{"name": PROMPT, "version": 2}]}})
    wait_model(
        kube,
        ns,
        operator,
        f"canary {candidate} started",
        lambda m: status_of(m).get("canaryRevision") == candidate,
    )
    return stable, candidate


def wait_eval_phase(kube: Kubectl, ns: str, operator: Any, revision: str, phase: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        run = eval_run_for(kube, ns, revision)
        return run if run and (run.get("status") or {}).get("phase") == phase else None

    try:
        return wait_for(check, GATE_TIMEOUT, interval=0.5, message=f"EvalRun of {revision} {phase}")  # type: ignore[no-any-return]
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{diagnosis(kube, ns, MODEL, operator.log_tail(60))}") from None


def assert_gate_run_wiring(run: dict[str, Any], stub: Any, stable: str, candidate: str) -> None:
    """The EvalRun targets the candidate's route, compares with the stable one and names the
    prompt version the candidate binds."""
    spec = run["spec"]
    assert spec["gate"] == GATE
    assert spec["model"] == MODEL
    assert spec["revision"] == candidate
    assert spec["endpoint"] == f"http://127.0.0.1:{stub.port}/r/{candidate}/v1"
    assert spec["baselineRevision"] == stable
    assert spec["baselineEndpoint"] == f"http://127.0.0.1:{stub.port}/r/{stable}/v1"
    assert spec["promptVersion"] == 2


def gate_verdict(
    kube: Kubectl, ns: str, operator: Any, stub: Any, candidate_mode: str, phase: str, health: tuple[str, ...]
) -> tuple[str, str, dict[str, Any]]:
    """A prompt change whose candidate answers in `candidate_mode`, judged by the gate: waits for
    its EvalRun to reach `phase`, checks what the run targets and its health (health, kstatus,
    reason); (stable, candidate, run)."""
    stable, candidate = start_prompt_change(kube, ns, operator, stub, candidate_mode)
    run = wait_eval_phase(kube, ns, operator, candidate, phase)
    assert_gate_run_wiring(run, stub, stable, candidate)
    check_health(run, *health)
    return stable, candidate, run


# ---------------------------------------------------------------------------------------------
# PromptVersion
# ---------------------------------------------------------------------------------------------


def test_valid_prompt_version_gets_valid_status_and_content_hash(kube: Kubectl, ns: str) -> None:
    spec = prompt_spec(1)
    kube.apply(prompt_version("support-bot-v1", spec), ns)

    pv = wait_status(kube, ns, "promptversion", "support-bot-v1", "contentHash")

    status = pv["status"]
    assert status["valid"] is True
    assert status["contentHash"] == prompts.content_hash(PromptVersionSpec.model_validate(spec))
    assert not status.get("reason")
    assert status.get("usedBy", []) == []
    assert not [e for e in events_of(kube, ns, "PromptVersion", "support-bot-v1") if e[0] == "Warning"]
    check_health(pv, "Healthy", "Current", "valid")


@pytest.mark.parametrize(
    ("system", "variables", "reason_part"),
    [
        (
            "Hello {{ customer_name }}, this is {{ company }}.",
            None,
            "uses undeclared variable(s) 'customer_name'",
        ),
        ("{{ ''.__class__.__mro__ }} {{ company }}", None, "reads private attribute"),
        ("{{ company|attr('__globals__') }}", None, "reads private attribute '__globals__'"),
        (
            "You work for {{ company }}.",
            [{"name": "company", "required": True, "default": "Acme"}, {"name": "question"}],
            "'company' is required and has a default",
        ),
    ],
    ids=["undeclared-variable", "sandbox-escape-dunder", "sandbox-escape-attr-filter", "required-default"],
)
def test_invalid_prompt_version_is_marked_invalid_with_reason_and_warning_event(
    kube: Kubectl, ns: str, system: str, variables: list[dict[str, Any]] | None, reason_part: str
) -> None:
    kube.apply(prompt_version("support-bot-v1", prompt_spec(1, system, variables)), ns)

    pv = wait_status(kube, ns, "promptversion", "support-bot-v1", "valid")

    assert pv["status"]["valid"] is False
    assert reason_part in pv["status"]["reason"]
    check_health(pv, "Degraded", "Failed", "invalid")
    warnings = wait_for(
        lambda: [e for e in events_of(kube, ns, "PromptVersion", "support-bot-v1") if e[0] == "Warning"],
        30,
        message="a Warning Event on the PromptVersion",
    )
    assert warnings[0][1] == "InvalidPrompt"
    assert reason_part in warnings[0][2]


def test_prompt_version_spec_edit_is_rejected_but_labels_may_change(kube: Kubectl, ns: str) -> None:
    original = prompt_version("support-bot-v1", prompt_spec(1))
    kube.apply(original, ns)

    edited = json.loads(json.dumps(original))
    edited["spec"]["messages"][0]["content"] = "You are {{ company }}'s assistant. Be rude."
    result = kube.apply(edited, ns, check=False)

    assert result.returncode != 0
    assert IMMUTABLE_MESSAGE in result.stderr
    stored = kube.get("promptversion", ns, "support-bot-v1")
    assert stored is not None and stored["spec"]["messages"] == original["spec"]["messages"]
    relabelled = {**original, "metadata": {**original["metadata"], "labels": {"team": "support"}}}
    kube.apply(relabelled, ns)  # metadata is not the prompt: it may change


# ---------------------------------------------------------------------------------------------
# EvalGate validation at apply time
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"assertions": [{"name": "judge", "type": "llmJudge", "threshold": 0.7}]},
            "llmJudge needs judge and rubric",
        ),
        (
            {"assertions": [{"name": "judge", "type": "llmJudge", "rubric": "polite?", "judge": {}}]},
            "judge needs exactly one of model or endpoint",
        ),
        ({"assertions": [{"type": "rougeL", "threshold": 1.5}]}, "threshold is a score between 0 and 1"),
        ({"assertions": [{"type": "latency"}]}, "latency needs threshold (milliseconds)"),
        (
            {"assertions": [{"type": "rougeL", "negate": True}]},
            "negate applies to equals, contains, regex and jsonSchema only",
        ),
        (
            {"dataset": {"configMapRef": {"name": "cases", "key": "cases.jsonl"}, "inline": [{"vars": {}}]}},
            "dataset needs exactly one of configMapRef or inline",
        ),
        ({"assertions": [{"type": "sentiment"}]}, 'Unsupported value: "sentiment"'),
        ({"assertions": []}, "should have at least 1 items"),
        ({"passCriteria": {"passRate": 1.2}}, "should be less than or equal to 1"),
    ],
    ids=[
        "judge-missing",
        "judge-empty",
        "threshold-range",
        "latency-threshold",
        "negate-scored",
        "dataset-both",
        "unknown-type",
        "no-assertions",
        "pass-rate",
    ],
)
def test_bad_eval_gate_is_rejected_by_the_api_server(
    kube: Kubectl, ns: str, overrides: dict[str, Any], message: str
) -> None:
    result = kube.apply(gate_manifest(**overrides), ns, check=False)

    assert result.returncode != 0, f"the API server accepted a bad EvalGate: {overrides}"
    assert message in result.stderr
    assert kube.get("evalgate", ns, GATE) is None


# ---------------------------------------------------------------------------------------------
# Model bindings
# ---------------------------------------------------------------------------------------------


def test_bound_prompt_is_an_immutable_configmap_mounted_read_only_and_used_by_the_model(
    kube: Kubectl, ns: str, operator: Any
) -> None:
    apply_prompts_and_gate(kube, ns, 1)
    revision = deploy_stable(kube, ns, operator, gated_model_spec(1, unique("t")), [prompt_spec(1)])

    model = kube.get("model", ns, MODEL)
    assert condition(model, "PromptsReady")["status"] == "True"
    configmap_name = revisions.prompts_configmap_name(MODEL, revision)
    configmap = kube.get("configmap", ns, configmap_name)
    assert configmap is not None, f"ConfigMap {configmap_name} missing"
    assert configmap["immutable"] is True
    bundled = json.loads(configmap["data"][f"{PROMPT}.json"])
    expected_hash = prompts.content_hash(PromptVersionSpec.model_validate(prompt_spec(1)))
    assert (bundled["prompt"], bundled["version"], bundled["contentHash"]) == (PROMPT, 1, expected_hash)

    deployment = kube.get("deployment", ns, revisions.deployment_name(MODEL, revision))
    assert deployment is not None
    pod_spec = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    prompt_volumes = [
        n for n, v in volumes.items() if (v.get("configMap") or {}).get("name") == configmap_name
    ]
    assert len(prompt_volumes) == 1
    mounts = [m for c in pod_spec["containers"] for m in c.get("volumeMounts") or []]
    prompt_mounts = [m for m in mounts if m["name"] == prompt_volumes[0]]
    assert prompt_mounts == [{"name": prompt_volumes[0], "mountPath": PROMPTS_MOUNT, "readOnly": True}]

    pv = wait_for(
        lambda: (lambda o: o if (o.get("status") or {}).get("usedBy") == [MODEL] else None)(
            kube.get("promptversion", ns, f"{PROMPT}-v1") or {}
        ),
        30,
        message=f"PromptVersion {PROMPT}-v1 usedBy [{MODEL}]",
    )
    assert pv["status"]["valid"] is True


def test_missing_prompt_version_blocks_the_new_revision_while_the_current_one_serves(
    kube: Kubectl, ns: str, operator: Any
) -> None:
    apply_prompts_and_gate(kube, ns, 1)
    tag = unique("t")
    stable = deploy_stable(
        kube, ns, operator, gated_model_spec(1, tag, strategy="RollingUpdate"), [prompt_spec(1)]
    )

    kube.patch("model", ns, MODEL, {"spec": {"prompts": [{"name": PROMPT, "version": 9}]}})
    model = wait_model(
        kube,
        ns,
        operator,
        "PromptsReady False (PromptVersionMissing)",
        lambda m: (
            condition(m, "PromptsReady").get("reason") == "PromptVersionMissing"
            and status_of(m).get("observedGeneration") == m["metadata"]["generation"]
        ),
    )

    prompts_ready = condition(model, "PromptsReady")
    assert prompts_ready["status"] == "False"
    assert f"PromptVersion {PROMPT} version 9 does not exist" in prompts_ready["message"]
    assert condition(model, "Progressing")["reason"] == "RevisionBlocked"
    assert status_of(model)["stableRevision"] == stable
    assert condition(model, "Available")["status"] == "True"
    deployments = kube.items("deployments", ns, f"llmops.dev/model={MODEL}")
    assert [d["metadata"]["labels"]["llmops.dev/revision"] for d in deployments] == [stable]
    assert deployments[0]["status"].get("readyReplicas") == 1

    # creating the missing version unblocks the Model: its revision rolls out
    kube.apply(prompt_version(f"{PROMPT}-v9", prompt_spec(9)), ns)
    unblocked = expected_revision(gated_model_spec(9, tag, strategy="RollingUpdate"), [prompt_spec(9)])
    model = wait_model(kube, ns, operator, f"revision {unblocked} stable", stable_is(unblocked))
    assert condition(model, "PromptsReady")["status"] == "True"


# ---------------------------------------------------------------------------------------------
# the gate in a canary
# ---------------------------------------------------------------------------------------------


def test_prompt_change_that_answers_well_passes_the_gate_and_becomes_stable(
    kube: Kubectl, ns: str, operator: Any, stub: Any, job_runner: Any
) -> None:
    stable, candidate, run = gate_verdict(
        kube, ns, operator, stub, "good", "Passed", ("Healthy", "Current", "passed")
    )

    check_health(kube.get("evalgate", ns, GATE) or {}, "Healthy", "Current", "valid")
    result = run["status"]
    assert result["candidate"]["passRate"] == 1.0
    assert result["baseline"]["passRate"] == 1.0
    assert result.get("failingAssertions", []) == []
    sent = stub.routes[candidate].last_requests
    assert sent, "the gate sent nothing to the candidate's route"
    assert all("(prompt v2)" in r["messages"][0]["content"] for r in sent), "candidate's prompt not used"
    assert stub.routes[stable].last_requests, "the gate did not compare with the stable revision"

    model = wait_model(
        kube, ns, operator, f"candidate {candidate} promoted", stable_is(candidate), GATE_TIMEOUT
    )
    gate_condition = condition(model, "EvalGatePassed")
    assert (gate_condition["status"], gate_condition["reason"]) == ("True", "EvalPassed")
    assert revision_record(model, candidate)["outcome"] == "Stable"
    assert revision_record(model, stable)["outcome"] == "Superseded"
    assert condition(model, "RolledBack").get("status") != "True"
    reasons = {reason for _, reason, _ in events_of(kube, ns, "Model", MODEL)}
    assert {"EvalGateStarted", "EvalGatePassed"} <= reasons


def test_candidate_that_answers_badly_fails_the_gate_and_is_rolled_back(
    kube: Kubectl, ns: str, operator: Any, stub: Any, job_runner: Any
) -> None:
    stable, candidate, run = gate_verdict(
        kube, ns, operator, stub, "bad", "Failed", ("Degraded", "Failed", "failed")
    )

    # both assertions fail on every case, and so does the regression criterion vs the baseline
    assert set(run["status"]["failingAssertions"]) == {*FAILING_ASSERTIONS, "maxRegressionVsBaseline"}
    model = wait_model(
        kube,
        ns,
        operator,
        "RolledBack True",
        lambda m: condition(m, "RolledBack").get("status") == "True",
        GATE_TIMEOUT,
    )
    gate_condition = condition(model, "EvalGatePassed")
    assert (gate_condition["status"], gate_condition["reason"]) == ("False", "EvalFailed")
    for name in FAILING_ASSERTIONS:
        assert name in gate_condition["message"]
        assert name in condition(model, "RolledBack")["message"]
    assert revision_record(model, candidate)["outcome"] == "RolledBack"
    status = status_of(model)
    assert status["stableRevision"] == stable
    assert status["phase"] == "Degraded"
    assert status["rollout"]["abort"] is True and status["rollout"]["weight"] == 0
    check_health(model, "Degraded", "Failed", "rolled-back-eval-failed")
    canary = wait_for(
        lambda: (lambda d: d if d and d["spec"]["replicas"] == 0 else None)(
            kube.get("deployment", ns, revisions.deployment_name(MODEL, candidate))
        ),
        30,
        message="canary Deployment scaled to 0",
    )
    assert canary["spec"]["replicas"] == 0
    stable_deployment = kube.get("deployment", ns, revisions.deployment_name(MODEL, stable))
    assert stable_deployment is not None and stable_deployment["spec"]["replicas"] == 1
    assert ("Warning", "RolledBack") in {(t, r) for t, r, _ in events_of(kube, ns, "Model", MODEL)}


def test_unreachable_candidate_gives_eval_error_and_pauses_until_promoted(
    kube: Kubectl, ns: str, operator: Any, stub: Any, job_runner: Any
) -> None:
    stable, candidate, _ = gate_verdict(
        kube, ns, operator, stub, "error", "Error", ("Degraded", "Failed", "error")
    )

    model = wait_model(
        kube,
        ns,
        operator,
        "rollout paused on EvalGateError",
        lambda m: (
            [c.get("reason") for c in (status_of(m).get("rollout") or {}).get("pauseConditions") or []]
            == ["EvalGateError"]
        ),
        GATE_TIMEOUT,
    )
    status = status_of(model)
    assert status["phase"] == "Paused"
    assert status["stableRevision"] == stable and status["canaryRevision"] == candidate
    check_health(model, "Suspended", "InProgress", "paused-eval-error")
    tree = check_plugin_tree(kube.kubeconfig, ns, MODEL, "paused-eval-error")
    assert "Paused (EvalGateError)" in tree and "EvalRun" in tree and " Error " in tree, tree
    gate_condition = condition(model, "EvalGatePassed")
    assert (gate_condition["status"], gate_condition["reason"]) == ("Unknown", "EvalError")
    assert condition(model, "RolledBack").get("status") != "True"
    assert revision_record(model, candidate)["outcome"] == "Progressing"

    # the endpoint recovers: an Error is never turned into a verdict behind anyone's back
    stub.configure_route(candidate, mode="good", answers=ANSWERS)
    operator.wait_passes(ns, MODEL, 2)  # the operator looked again, twice
    model = kube.get("model", ns, MODEL) or {}
    assert status_of(model)["phase"] == "Paused"
    assert status_of(model)["stableRevision"] == stable
    assert (eval_run_for(kube, ns, candidate) or {}).get("status", {}).get("phase") == "Error"

    # a person promotes (kubectl llmops promote): past the gate step, the remaining steps run
    kube.patch("model", ns, MODEL, {"status": {"rollout": {"pauseConditions": []}}}, "--subresource=status")
    model = wait_model(
        kube, ns, operator, f"candidate {candidate} promoted", stable_is(candidate), GATE_TIMEOUT
    )
    assert revision_record(model, candidate)["outcome"] == "Stable"
    reasons = {reason for _, reason, _ in events_of(kube, ns, "Model", MODEL)}
    assert {"Paused", "Promoted"} <= reasons


def test_gate_with_an_invalid_regex_is_an_eval_error_naming_it_never_a_pass(
    kube: Kubectl, ns: str, operator: Any, stub: Any, job_runner: Any
) -> None:
    """`value` is untyped in the CRD (it may hold a JSON schema), so the API server cannot check a
    regex; the run reports Error with the pattern, and the rollout pauses."""
    bad_regex = {"name": "no-rudeness", "type": "regex", "value": "([a-z", "negate": True}
    gate = gate_manifest(assertions=[bad_regex])
    stable, candidate = start_prompt_change(kube, ns, operator, stub, candidate_mode="good", gate=gate)

    run = wait_eval_phase(kube, ns, operator, candidate, "Error")

    assert "invalid regex" in run["status"]["message"] and "([a-z" in run["status"]["message"]
    model = wait_model(
        kube,
        ns,
        operator,
        "rollout paused on EvalGateError",
        lambda m: status_of(m).get("phase") == "Paused",
        GATE_TIMEOUT,
    )
    assert "invalid regex" in condition(model, "EvalGatePassed")["message"]
    assert status_of(model)["stableRevision"] == stable


def test_gate_with_an_invalid_regex_says_so_at_apply_time(kube: Kubectl, ns: str) -> None:
    """What would make every run an Error is reported on the EvalGate before any rollout uses it."""
    bad_regex = {"name": "no-rudeness", "type": "regex", "value": "([a-z", "negate": True}
    kube.apply(gate_manifest(assertions=[bad_regex]), ns)

    gate = wait_status(kube, ns, "evalgate", GATE, "conditions")

    valid = next(c for c in gate["status"]["conditions"] if c["type"] == "Valid")
    assert valid["status"] == "False" and valid["reason"] == "InvalidAssertion"
    assert "invalid regex" in valid["message"] and "([a-z" in valid["message"]
    check_health(gate, "Degraded", "Failed", "invalid-regex")
    warnings = wait_for(
        lambda: [e for e in events_of(kube, ns, "EvalGate", GATE) if e[0] == "Warning"],
        30,
        message="a Warning Event on the EvalGate",
    )
    assert warnings[0][1] == "InvalidAssertion"


def test_a_hand_written_passed_verdict_is_not_taken(kube: Kubectl, ns: str, operator: Any, stub: Any) -> None:
    """Issue 9: anyone who may patch evalruns/status could write Passed. Without the eval Job's
    signature (no job runner here, so the Job the operator started never reports) the operator
    treats it as an eval error: the rollout pauses and the canary is not promoted."""
    stable, candidate = start_prompt_change(kube, ns, operator, stub, candidate_mode="good")
    run = wait_for(lambda: eval_run_for(kube, ns, candidate), GATE_TIMEOUT, message="EvalRun created")
    forged = {"status": {"phase": "Passed", "revision": candidate, "candidate": {"passRate": 1.0}}}
    kube.patch("evalrun", ns, run["metadata"]["name"], forged, "--subresource=status")

    model = wait_model(
        kube,
        ns,
        operator,
        "the forged verdict refused",
        lambda m: condition(m, "EvalGatePassed").get("reason") == "EvalError",
        GATE_TIMEOUT,
    )
    assert "without the signature" in condition(model, "EvalGatePassed")["message"]
    status = status_of(model)
    assert status["stableRevision"] == stable and status["canaryRevision"] == candidate
    assert status["rollout"]["pauseConditions"][0]["reason"] == "EvalGateError"
