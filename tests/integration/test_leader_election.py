"""Two replicas, SIGKILLs and an upgrade during eval-gated rollouts (issue 15 acceptance).

Each test runs operators of its own against a namespace of its own (outside the session
operator's prefix), with the OpenAI stub answering for the revisions and the job runner
running the eval Jobs, as in test_prompts_evals.py. Leader election uses short timings
(conftest.FAST_LEASE: lease 4 s, renew deadline 3 s, retry 0.5 s).
"""

from __future__ import annotations

import os
import random
import re
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from helpers_evals import (
    ANSWERS,
    EVAL_JOB_LOGS,
    PROMPT,
    expected_revision,
    gate_manifest,
    gated_model_spec,
    prompt_spec,
    prompt_version,
)
from helpers_model import Kubectl, model_manifest, unique

from llmops_operator.revisions import deployment_name
from llmops_sim.job_runner import JobRunner

pytestmark = pytest.mark.cluster

NAMESPACE_PREFIX = os.environ["LLMOPS_TEST_NAMESPACE_PREFIX"]
SEED = int(os.environ.get("LLMOPS_LEADER_SEED", "15"))
FIRST_PASS = re.compile(r"first reconcile pass as leader done at ([0-9.]+)")
ROLLOUT_TIMEOUT = 400.0
START_TIMEOUT = 180.0
"""A (re)started operator answers /readyz within this (generous: CI machines are shared)."""


def wait_ready(proc: Any) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if proc.health("/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"operator {proc.identity} not ready after {START_TIMEOUT}s\n{proc.log_tail(20)}")


@pytest.fixture(scope="module")
def kube(cluster: Any) -> Kubectl:
    return Kubectl(cluster.kubeconfig)


@pytest.fixture
def own_namespace(cluster: Any, kube: Kubectl) -> Iterator[str]:
    name = f"x{NAMESPACE_PREFIX}le-{uuid.uuid4().hex[:6]}"
    cluster.core.create_namespace({"metadata": {"name": name, "labels": {"llmops.dev/test": "true"}}})
    for version in (1, 2):
        kube.apply(prompt_version(f"{PROMPT}-v{version}", prompt_spec(version)), name)
    kube.apply(gate_manifest(), name)
    yield name
    cluster.core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def runner(cluster: Any, own_namespace: str) -> Iterator[JobRunner]:
    runner = JobRunner(
        cluster.api_client, str(cluster.kubeconfig), own_namespace, log_dir=EVAL_JOB_LOGS
    ).start()
    yield runner
    runner.stop()


def replica(operator: Any, cluster: Any, stub: Any, namespace: str, lease: str, n: int, **env: str) -> Any:
    template = f"http://127.0.0.1:{stub.port}/r/{{revision}}/v1"
    proc = type(operator)(
        str(cluster.kubeconfig),
        operator.prometheus_url,
        {"LLMOPS_EVAL_ENDPOINT_TEMPLATE": template, **env},
        namespace_glob=namespace,
        lease_id=lease,
        identity=f"{lease}-{n}",
    )
    proc.log_path = proc.log_path.with_name(f"operator-{lease}-{n}.log")
    return proc


def holder(kube: Kubectl, lease: str) -> str | None:
    obj = kube.get("lease", "default", lease)
    return ((obj or {}).get("spec") or {}).get("holderIdentity")


class Rollouts:
    """Models in one namespace, each rolled from prompt v1 (stable) to v2 (good or bad answers)."""

    def __init__(self, kube: Kubectl, namespace: str, stub: Any, count: int, bad: set[int]) -> None:
        self.kube, self.namespace = kube, namespace
        self.names = [f"g{i}" for i in range(count)]
        self.bad = {self.names[i] for i in bad}
        self.stable: dict[str, str] = {}
        self.canary: dict[str, str] = {}
        self.tags = {name: unique("t") for name in self.names}
        for name in self.names:
            v1, v2 = gated_model_spec(1, self.tags[name]), gated_model_spec(2, self.tags[name])
            self.stable[name] = expected_revision(v1, [prompt_spec(1)])
            self.canary[name] = expected_revision(v2, [prompt_spec(2)])
            stub.configure_route(self.stable[name], mode="good", answers=ANSWERS)
            stub.configure_route(
                self.canary[name], mode="bad" if name in self.bad else "good", answers=ANSWERS
            )

    def model(self, name: str) -> dict[str, Any]:
        return self.kube.get("model", self.namespace, name) or {}

    def deploy(self, timeout: float = 120) -> None:
        for name in self.names:
            self.kube.apply(model_manifest(name, gated_model_spec(1, self.tags[name])), self.namespace)
        self.wait_all(
            lambda name, s: s.get("stableRevision") == self.stable[name] and s.get("phase") == "Ready",
            timeout,
            "first revisions Ready",
        )

    def start(self, name: str) -> None:
        self.kube.patch(
            "model", self.namespace, name, {"spec": {"prompts": [{"name": PROMPT, "version": 2}]}}
        )

    def outcome(self, name: str) -> str | None:
        status = self.model(name).get("status") or {}
        if status.get("stableRevision") == self.canary[name] and not status.get("canaryRevision"):
            return "promoted"
        if (status.get("rollout") or {}).get("abort"):
            return "rolled back"
        return None

    def expected(self) -> dict[str, str]:
        return {n: "rolled back" if n in self.bad else "promoted" for n in self.names}

    def wait_all(self, check: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.names)
        while pending and time.monotonic() < deadline:
            pending = [n for n in pending if not check(n, self.model(n).get("status") or {})]
            time.sleep(0.3)
        assert not pending, f"timed out waiting for {what}: {pending}"

    def eval_runs(self) -> list[dict[str, Any]]:
        return self.kube.items("evalruns", self.namespace)

    def eval_jobs(self) -> list[dict[str, Any]]:
        return self.kube.items("jobs", self.namespace, "llmops.dev/component=eval")

    def assert_one_run_and_one_job_per_gate_step(self) -> None:
        runs = self.eval_runs()
        per_step = Counter((r["spec"]["model"], r["spec"]["revision"]) for r in runs)
        assert set(per_step) == {(n, self.canary[n]) for n in self.names}, per_step
        assert all(count == 1 for count in per_step.values()), f"duplicate EvalRuns: {per_step}"
        jobs = Counter(j["metadata"]["name"] for j in self.eval_jobs())
        assert set(jobs) == {r["metadata"]["name"] for r in runs}, (
            sorted(jobs),
            [r["metadata"]["name"] for r in runs],
        )


class ServingCensus(threading.Thread):
    """Polls every Model's stable revision and Deployments: a stable revision's Deployment that
    disappears while it is stable was deleted while serving."""

    def __init__(self, rollouts: Rollouts) -> None:
        super().__init__(name="serving-census", daemon=True)
        self.rollouts = rollouts
        self.violations: list[str] = []
        self.polls = 0
        self.done = threading.Event()

    def run(self) -> None:
        r = self.rollouts
        while not self.done.is_set():
            try:
                # Deployments first, then status: a revision only becomes stable once its
                # Deployment exists, so a missing one was deleted while it served
                deployments = {d["metadata"]["name"] for d in r.kube.items("deployments", r.namespace)}
                for name in r.names:
                    stable = (r.model(name).get("status") or {}).get("stableRevision")
                    if stable and deployment_name(name, stable) not in deployments:
                        self.violations.append(f"{name}: stable {stable} has no Deployment")
                self.polls += 1
            except Exception:  # keep polling through API hiccups
                pass
            self.done.wait(0.5)


def takeover_times(procs: list[Any], kills: list[tuple[float, str]]) -> list[float]:
    """Seconds from each SIGKILL of a leader to the first pass finished by the next leader."""
    firsts: list[float] = []
    for proc in procs:
        try:
            firsts += [float(x) for x in FIRST_PASS.findall(proc.log_path.read_text(errors="replace"))]
        except FileNotFoundError:
            continue
    firsts.sort()
    out = []
    for killed_at, _ in kills:
        after = [t for t in firsts if t > killed_at]
        if after:
            out.append(after[0] - killed_at)
    return out


def test_two_replicas_leader_sigkilled_in_each_of_ten_gated_rollouts(
    kube: Kubectl, cluster: Any, operator: Any, openai_stub: Any, own_namespace: str, runner: JobRunner
) -> None:
    rng = random.Random(f"{SEED}-leader")
    print(f"\n[leader] seed={SEED}")
    lease = f"llmops-le-{uuid.uuid4().hex[:6]}"
    procs = [replica(operator, cluster, openai_stub, own_namespace, lease, n) for n in range(2)]
    by_identity = {p.identity: p for p in procs}
    for proc in procs:
        proc.start()
    for proc in procs:
        wait_ready(proc)
    rollouts = Rollouts(kube, own_namespace, openai_stub, 10, bad={3, 7})
    census = ServingCensus(rollouts)
    kills: list[tuple[float, str]] = []
    try:
        rollouts.deploy()
        census.start()
        outcome: dict[str, str] = {}
        for name in rollouts.names:
            rollouts.start(name)
            time.sleep(rng.uniform(0.5, 4.0))  # a random moment in this rollout
            leader = holder(kube, lease)
            assert leader in by_identity, f"no leader holds Lease {lease}: {leader}"
            killed = by_identity[leader]
            kills.append((time.time(), leader))
            killed.kill()
            took_over = time.monotonic() + START_TIMEOUT
            while holder(kube, lease) == leader and time.monotonic() < took_over:
                time.sleep(0.1)
            assert holder(kube, lease) != leader, f"nobody took over from {leader}"
            killed.start()  # back as the standby
            wait_ready(killed)
        deadline = time.monotonic() + ROLLOUT_TIMEOUT
        while len(outcome) < len(rollouts.names) and time.monotonic() < deadline:
            for name in rollouts.names:
                if name not in outcome and (result := rollouts.outcome(name)):
                    outcome[name] = result
            time.sleep(0.5)
    finally:
        census.done.set()
        census.join(timeout=10)
        for proc in procs:
            proc.stop()
    logs = "\n".join(p.log_tail(30) for p in procs)
    assert outcome == rollouts.expected(), f"{outcome}\n{logs}"
    rollouts.assert_one_run_and_one_job_per_gate_step()
    assert census.polls > 10 and census.violations == [], census.violations
    times = takeover_times(procs, kills)
    assert len(times) == len(kills), f"{len(kills)} kills but {len(times)} takeovers logged"
    cuts = statistics.quantiles(times, n=20) if len(times) > 1 else times
    print(
        f"[leader] {len(kills)} SIGKILLs of the leader; takeover (kill -> first pass of the new leader) "
        f"p50 {statistics.median(times):.2f}s p95 {cuts[-1]:.2f}s max {max(times):.2f}s"
    )


def test_operator_sigkilled_right_after_creating_an_eval_run_five_times_one_run_per_gate_step(
    kube: Kubectl, cluster: Any, operator: Any, openai_stub: Any, own_namespace: str, runner: JobRunner
) -> None:
    lease = f"llmops-kr-{uuid.uuid4().hex[:6]}"
    proc = replica(operator, cluster, openai_stub, own_namespace, lease, 0)
    proc.start()
    wait_ready(proc)
    rollouts = Rollouts(kube, own_namespace, openai_stub, 5, bad=set())
    kills = 0
    try:
        rollouts.deploy()
        for name in rollouts.names:
            seen = {r["metadata"]["name"] for r in rollouts.eval_runs()}
            rollouts.start(name)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                runs = cluster.custom.list_namespaced_custom_object(
                    "llmops.dev", "v1alpha1", own_namespace, "evalruns"
                )["items"]
                if {r["metadata"]["name"] for r in runs} - seen:
                    proc.kill()  # right after the EvalRun was created
                    kills += 1
                    break
                time.sleep(0.02)
            else:
                raise AssertionError(f"no EvalRun for {name}\n{proc.log_tail(40)}")
            proc.start()
            wait_ready(proc)
        rollouts.wait_all(lambda name, s: rollouts.outcome(name) == "promoted", ROLLOUT_TIMEOUT, "promoted")
    finally:
        proc.stop()
    assert kills == 5
    rollouts.assert_one_run_and_one_job_per_gate_step()


def test_operator_upgraded_mid_rollout_jobs_are_left_alone_and_every_model_ends_as_it_would(
    kube: Kubectl, cluster: Any, operator: Any, openai_stub: Any, own_namespace: str
) -> None:
    """Version 1 starts gated rollouts (their eval Jobs exist, not run yet), version 2 (another
    operator image) takes over: the existing Jobs are not re-applied (immutable templates), no new
    revision appears, and the rollouts end as they would have."""
    lease = f"llmops-up-{uuid.uuid4().hex[:6]}"
    old = replica(
        operator, cluster, openai_stub, own_namespace, lease, 0, LLMOPS_OPERATOR_IMAGE="llmops-operator:v1"
    )
    new = replica(
        operator, cluster, openai_stub, own_namespace, lease, 1, LLMOPS_OPERATOR_IMAGE="llmops-operator:v2"
    )
    rollouts = Rollouts(kube, own_namespace, openai_stub, 3, bad={2})
    old.start()
    wait_ready(old)
    runner: JobRunner | None = None
    try:
        rollouts.deploy()
        for name in rollouts.names:
            rollouts.start(name)
        deadline = time.monotonic() + 60
        while len(rollouts.eval_jobs()) < len(rollouts.names) and time.monotonic() < deadline:
            time.sleep(0.3)
        before = {j["metadata"]["name"]: j for j in rollouts.eval_jobs()}
        assert len(before) == 3
        new.start()  # a rolling update: the new pod is up, then the old one stops and hands over
        wait_ready(new)
        old.stop()
        deadline = time.monotonic() + 30
        while holder(kube, lease) != new.identity and time.monotonic() < deadline:
            time.sleep(0.2)
        assert holder(kube, lease) == new.identity, "the old version did not hand over its Lease"
        runner = JobRunner(
            cluster.api_client, str(cluster.kubeconfig), own_namespace, log_dir=EVAL_JOB_LOGS
        ).start()
        deadline = time.monotonic() + ROLLOUT_TIMEOUT
        while time.monotonic() < deadline and any(rollouts.outcome(n) is None for n in rollouts.names):
            time.sleep(0.5)
    finally:
        if runner is not None:
            runner.stop()
        new.stop()
        old.stop()
    outcome = {n: rollouts.outcome(n) for n in rollouts.names}
    assert outcome == rollouts.expected(), f"{outcome}\n{new.log_tail(60)}"
    after = {j["metadata"]["name"]: j for j in rollouts.eval_jobs()}
    for name, job in before.items():
        assert after[name]["metadata"]["uid"] == job["metadata"]["uid"], f"Job {name} was re-created"
        image = after[name]["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == "llmops-operator:v1", f"Job {name} was re-applied with {image}"
    for name in rollouts.names:
        revisions = [r["revision"] for r in (rollouts.model(name).get("status") or {}).get("revisions") or []]
        assert set(revisions) <= {rollouts.stable[name], rollouts.canary[name]}, revisions
    text = new.log_path.read_text(errors="replace")
    assert ": 422: " not in text and "field is immutable" not in text, new.log_tail(60)
    rollouts.assert_one_run_and_one_job_per_gate_step()
