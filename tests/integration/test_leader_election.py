"""Two replicas with leader election, operator kills around eval gates, and an operator upgrade
mid-rollout, on the dev cluster (issue 15 acceptance).

Each test runs operators of its own watching a namespace of its own (`own_operators`), so it can
kill, restart and upgrade them without touching the session operator. The eval gate is lenient
(its one assertion holds for any polite answer of the OpenAI stub): these tests are about how
many EvalRuns and Jobs a gate step gets, not about verdicts. The test runs a few rollouts; the
takeover figures over more are printed with LLMOPS_LEADER_KILL_ROLLOUTS=10.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import threading
import time
import uuid
from typing import Any

import kubernetes
import pytest
from helpers_canary import CanaryModel, DeploymentCensus
from helpers_evals import GATE, PROMPT, gate_manifest, gated_model_spec, prompt_spec, prompt_version
from helpers_model import Kubectl, model_manifest

from llmops_sim.job_runner import JobRunner
from polling import wait_for

pytestmark = pytest.mark.cluster

SEED = int(os.environ.get("LLMOPS_CANARY_SEED", "4"))
ROLLOUTS = int(os.environ.get("LLMOPS_LEADER_KILL_ROLLOUTS", "2"))
"""Rollouts in the leader-kill test, each with a kill of the leader at a random moment."""
FIRST_PASS = re.compile(r"first reconcile pass as leader done at ([0-9.]+)")
NO_RUDENESS = {
    "name": "no-rudeness",
    "type": "regex",
    "value": "figure it out yourself|don't care",
    "caseInsensitive": True,
    "negate": True,
}


def apply_prompt_and_gate(kube: Kubectl, namespace: str) -> None:
    kube.apply(prompt_version(f"{PROMPT}-v1", prompt_spec(1)), namespace)
    gate = gate_manifest(assertions=[NO_RUDENESS], passCriteria={"passRate": 1.0})
    kube.apply(gate, namespace)


def gated_spec(tag: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    spec = gated_model_spec(1, tag)
    spec["rollout"]["canary"]["steps"] = steps
    return spec


def promoted(m: CanaryModel) -> Any:
    def check(model: dict[str, Any]) -> bool:
        status = model.get("status") or {}
        return status.get("stableRevision") == m.canary and not status.get("canaryRevision")

    return check


def runs_of(kube: Kubectl, namespace: str, revision: str) -> list[dict[str, Any]]:
    return [r for r in kube.items("evalruns", namespace) if r["spec"].get("revision") == revision]


def eval_jobs_of(kube: Kubectl, namespace: str, revision: str) -> list[dict[str, Any]]:
    return kube.items("jobs", namespace, f"llmops.dev/component=eval,llmops.dev/revision={revision}")


def first_pass_as_leader_after(proc: Any, after: float) -> float | None:
    """Unix time of the first pass `proc` finished as the new leader after `after` (its log)."""
    try:
        text = proc.log_path.read_text(errors="replace")
    except FileNotFoundError:
        return None
    return next((float(t) for t in FIRST_PASS.findall(text) if float(t) > after), None)


def is_leader(proc: Any) -> bool:
    try:
        return bool(proc.health("/readyz")[1].get("leader"))
    except OSError:
        return False


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ---------------------------------------------------------------------------------------------
# two replicas, the leader SIGKILLed in every rollout
# ---------------------------------------------------------------------------------------------


def test_two_replicas_leader_killed_in_every_rollout_one_eval_run_per_gate_step(
    kube: Kubectl, own_namespace: str, own_operators: Any, own_job_runner: JobRunner
) -> None:
    rng = random.Random(f"{SEED}-leader")
    lease = f"llmops-test-{uuid.uuid4().hex[:8]}"
    replicas = [own_operators(lease_id=lease, identity=f"{lease}-{x}") for x in "ab"]
    for replica in replicas:
        replica.wait_ready()
    apply_prompt_and_gate(kube, own_namespace)
    logs = lambda: "\n".join(r.log_tail(30) for r in replicas)  # noqa: E731
    models = [CanaryModel(kube, own_namespace, f"g{i}", logs) for i in range(ROLLOUTS)]
    steps = [{"evalGate": {"name": GATE}}, {"setWeight": 50}, {"pause": {"duration": "2s"}}]
    for m in models:
        kube.apply(model_manifest(m.name, gated_spec(m.name, steps)), own_namespace)
    for m in models:
        m.stable = m.wait_phase("Ready", 120)["status"]["stableRevision"]

    census = DeploymentCensus(kube, [own_namespace]).start()
    takeovers: list[float] = []
    try:
        for m in models:
            leader = wait_for(lambda: next((r for r in replicas if is_leader(r)), None), 60, 0.5, "a leader")
            standby = next(r for r in replicas if r is not leader)
            m.when_args_change(timeout=60)
            time.sleep(rng.uniform(0.0, 6.0))  # the kill moment: random within the rollout
            killed = time.time()
            leader.kill()
            first = wait_for(
                lambda s=standby, k=killed: first_pass_as_leader_after(s, k),
                60,
                0.2,
                "the standby's first pass as leader",
                describe=standby.log_tail,
            )
            takeovers.append(first - killed)
            leader.start()  # back, as the standby now (ready before the next kill)
            leader.wait_ready()
            m.wait(promoted(m), 120, f"revision {m.canary} promoted")
    finally:
        census.poll()
        census.stop()

    for m in models:
        runs = runs_of(kube, own_namespace, m.canary)
        assert len(runs) == 1, f"{m.name}: {len(runs)} EvalRuns for one gate step"
        assert runs[0]["status"]["phase"] == "Passed"
        jobs = eval_jobs_of(kube, own_namespace, m.canary)
        assert [j["metadata"]["name"] for j in jobs] == [runs[0]["metadata"]["name"]]
        reasons = [r for _, r, _ in m.events()]
        assert "StableRevisionLost" not in reasons
        assert reasons.count("EvalGateStarted") <= 1, "an Event posted by both replicas"
        assert m.revision_record(m.canary).get("outcome") == "Stable"
    assert census.duplicates == [] and census.recreated == {}, (census.duplicates, census.recreated)
    p50, p95 = statistics.median(takeovers), percentile(takeovers, 0.95)
    print(
        f"\n[leader] {len(takeovers)} kills; takeover (SIGKILL to the new leader's first pass) "
        f"p50 {p50:.2f}s p95 {p95:.2f}s; all {[round(t, 2) for t in takeovers]}"
    )


# ---------------------------------------------------------------------------------------------
# SIGKILL right after an EvalRun is created
# ---------------------------------------------------------------------------------------------


def test_operator_killed_right_after_creating_each_eval_run_one_run_per_gate_step(
    kube: Kubectl, cluster: Any, own_namespace: str, own_operators: Any, own_job_runner: JobRunner
) -> None:
    """Five gate steps in one rollout; the operator is SIGKILLed the moment each EvalRun appears
    (a watch, not a poll) and started again."""
    proc = own_operators()
    apply_prompt_and_gate(kube, own_namespace)
    gate = {"evalGate": {"name": GATE}}
    steps = [gate, {"setWeight": 20}, gate, {"setWeight": 40}, gate, {"setWeight": 60}, gate]
    steps += [{"setWeight": 80}, gate]
    m = CanaryModel(kube, own_namespace, "k", lambda: proc.log_tail(40))
    m.given_stable(gated_spec("k", steps), timeout=120)

    seen: set[str] = set()
    kills: list[str] = []
    stop = threading.Event()

    def killer() -> None:
        watch = kubernetes.watch.Watch()
        while not stop.is_set():
            try:
                for event in watch.stream(
                    cluster.custom.list_namespaced_custom_object,
                    "llmops.dev",
                    "v1alpha1",
                    own_namespace,
                    "evalruns",
                    timeout_seconds=5,
                ):
                    name = event["object"]["metadata"]["name"]
                    if event["type"] == "ADDED" and name not in seen:
                        seen.add(name)
                        proc.kill()
                        kills.append(name)
                        proc.start()
            except Exception:
                stop.wait(0.2)

    thread = threading.Thread(target=killer, name="killer", daemon=True)
    thread.start()
    try:
        m.when_args_change(timeout=60)
        m.wait(promoted(m), 240, f"revision {m.canary} promoted")
    finally:
        stop.set()
        thread.join(timeout=15)
        if proc.proc is None or proc.proc.poll() is not None:
            proc.start()

    runs = runs_of(kube, own_namespace, m.canary)
    assert len(kills) == 5, f"kills after {kills}"
    assert len(runs) == 5, (
        f"{len(runs)} EvalRuns for five gate steps: {[r['metadata']['name'] for r in runs]}"
    )
    assert all(r["status"]["phase"] == "Passed" for r in runs), "an orphaned EvalRun never ran"
    assert len(eval_jobs_of(kube, own_namespace, m.canary)) == 5
    assert sorted(r["metadata"]["name"] for r in runs) == sorted(kills)


# ---------------------------------------------------------------------------------------------
# upgrade mid-rollout
# ---------------------------------------------------------------------------------------------


def test_upgrade_mid_rollout_reapplies_no_job_restarts_no_rollout_and_every_model_ends_as_it_would(
    kube: Kubectl, cluster: Any, own_namespace: str, own_operators: Any
) -> None:
    """v1 runs a Model with a finished weight-loader Job, one with an eval gate in flight (its
    Job not run yet) and one paused mid-canary; v2 (a new operator image) takes over."""
    v1 = own_operators(LLMOPS_OPERATOR_IMAGE="llmops-operator:v1")
    apply_prompt_and_gate(kube, own_namespace)
    log = lambda: v1.log_tail(40)  # noqa: E731
    cached = CanaryModel(kube, own_namespace, "cached", log)
    gated = CanaryModel(kube, own_namespace, "gated", log)
    paused = CanaryModel(kube, own_namespace, "paused", log)
    cached_spec = gated_spec("cached", [{"setWeight": 50}])
    cached_spec["cache"] = {"enabled": True, "size": "10Gi"}
    cached.given_stable(cached_spec, timeout=120)
    gated.given_stable(gated_spec("gated", [{"evalGate": {"name": GATE}}, {"setWeight": 50}]))
    paused.given_stable(gated_spec("paused", [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]))
    gated.when_args_change()
    paused.when_args_change()
    gated.wait(lambda s: runs_of(kube, own_namespace, gated.canary), 60, "the gate's EvalRun")
    paused.wait(lambda s: ((s.get("status") or {}).get("rollout") or {}).get("stepIndex") == 1, 60, "paused")

    jobs_before = {j["metadata"]["name"]: j for j in kube.items("jobs", own_namespace)}
    assert len(jobs_before) == 2, sorted(jobs_before)  # the loader's and the gate's
    before = {m.name: m.status() for m in (cached, gated, paused)}
    v1.stop()
    v2 = own_operators(LLMOPS_OPERATOR_IMAGE="llmops-operator:v2")
    v2.wait_ready()
    for m in (cached, gated, paused):
        v2.wait_passes(own_namespace, m.name, count=3, timeout=90)

    for m in (cached, gated, paused):
        after = m.status()
        assert [r["revision"] for r in after["revisions"]] == [
            r["revision"] for r in before[m.name]["revisions"]
        ]
        assert after.get("canaryRevision") == before[m.name].get("canaryRevision")
        rollout_before, rollout_after = before[m.name].get("rollout") or {}, after.get("rollout") or {}
        assert rollout_after.get("startedAt") == rollout_before.get("startedAt"), f"{m.name} restarted"
        assert rollout_after.get("stepIndex", 0) >= rollout_before.get("stepIndex", 0)
    for name, job in jobs_before.items():
        live = kube.get("job", own_namespace, name)
        assert live is not None and live["metadata"]["uid"] == job["metadata"]["uid"]
        image = live["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == "llmops-operator:v1", f"Job {name} re-applied with {image}"
    text = v2.log_path.read_text(errors="replace")
    assert "422" not in text and "immutable" not in text, v2.log_tail(40)

    runner = JobRunner(cluster.api_client, str(cluster.kubeconfig), own_namespace).start()
    try:
        gated.wait(promoted(gated), 120, "the gated canary promoted after the upgrade")
        paused.plugin("promote")
        paused.wait(promoted(paused), 120, "the paused canary promoted after the upgrade")
    finally:
        runner.stop()
    assert cached.wait_phase("Ready", 60)["status"]["stableRevision"] == cached.stable
    assert len(runs_of(kube, own_namespace, gated.canary)) == 1
