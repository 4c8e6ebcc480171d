"""Outages on the dev cluster (issue 15 acceptance): the API server stopped for 90 s mid-rollout,
Prometheus hung, Prometheus stopped for several analysis intervals; and the cache audit that
repairs what a watch gap left behind.

The API server outage uses the session operator and this dev cluster's real kube-apiserver
(stopped and started with the cluster scripts); it lasts longer than the controller-manager's
default node grace period (50 s), so it also shows the dev cluster keeps pods Ready through it.
The Prometheus tests run an operator of their own, watching a namespace of their own, whose
Prometheus is a switchable proxy (`PrometheusGate`) in front of the shared one. Analysis runs in
mode threshold: these tests are about outages, not about the statistics.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from helpers_canary import CanaryModel, analysis, canary_spec, error_rate, parse_time, utcnow
from helpers_model import Kubectl, model_manifest, unique
from helpers_outage import PrometheusGate, start_api_server, stop_api_server

from llmops_operator.api.common import LABEL_MANAGED_BY, LABEL_MODEL
from llmops_operator.kube.client import Kube
from llmops_operator.runtime import cache_audit
from llmops_operator.runtime.context import OperatorContext, Settings

pytestmark = pytest.mark.cluster

NAMESPACE_PREFIX = os.environ["LLMOPS_TEST_NAMESPACE_PREFIX"]
OUTAGE_SECONDS = float(os.environ.get("LLMOPS_OUTAGE_SECONDS", "90"))
PROMETHEUS_TIMEOUT = 6.0
"""The Prometheus tests' query timeout (LLMOPS_PROMETHEUS_TIMEOUT_SECONDS): a pass that waited
for a hung query would take this long, one that does not takes about a second."""
ALWAYS_ONE = {"name": "up", "query": "vector(1)", "max": 2}
"""A custom query Prometheus always answers with 1 (Successful): only Prometheus itself can fail it."""


def log_of(operator: Any, namespace: str, lines: int = 40) -> str:
    recent = operator.log_tail(3000).splitlines()
    return "\n".join([line for line in recent if namespace in line][-lines:])


# ---------------------------------------------------------------------------------------------
# API server outage
# ---------------------------------------------------------------------------------------------


def ready_condition(pod: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in pod["status"].get("conditions") or [] if c["type"] == "Ready"), {})


def test_api_server_stopped_90s_mid_rollout_every_rollout_finishes_and_pods_stay_ready(
    kube: Kubectl, namespace: str, operator: Any, traffic: Any
) -> None:
    models = [CanaryModel(kube, namespace, f"o{i}", lambda: log_of(operator, namespace)) for i in range(4)]
    regress = {m.name: i % 2 == 1 for i, m in enumerate(models)}
    # the pause outlasts getting every canary to it, and ends during the outage
    steps = [{"setWeight": 50}, {"pause": {"duration": "60s"}}, {"setWeight": 100}]
    for m in models:
        spec = canary_spec(
            steps, analysis("3s", error_rate(), failureLimit=0, mode="threshold"), replicas=1, tag=m.name
        )
        kube.apply(model_manifest(m.name, spec), namespace)
    for m in models:
        m.stable = m.wait_phase("Ready", 120)["status"]["stableRevision"]
    for m in models:
        m.when_args_change()
    for m in models:
        m.wait(
            lambda s: ((s.get("status") or {}).get("rollout") or {}).get("stepIndex") == 1, 60, "weight 50"
        )

    outage_start = utcnow()
    stop_api_server()
    try:
        for m in models:  # the regressions start while nobody can see them
            if regress[m.name]:
                traffic.set_shape("error_spike", revision=m.canary, namespace=namespace, rate=0.5)
        time.sleep(OUTAGE_SECONDS)  # the outage itself (nothing is polled during it)
    finally:
        start_api_server()
    outage_end = utcnow()

    for m in models:
        if regress[m.name]:
            m.wait(
                lambda s: bool(((s.get("status") or {}).get("rollout") or {}).get("abort")), 90, "rolled back"
            )
            assert m.revision_record(m.canary).get("outcome") == "RolledBack"
            assert m.status()["stableRevision"] == m.stable
        else:
            m.wait(
                lambda s, m=m: (
                    (s.get("status") or {}).get("stableRevision") == m.canary
                    and not (s.get("status") or {}).get("canaryRevision")
                ),
                90,
                "promoted",
            )
    # every pod that ran through the outage stayed Ready: the node lifecycle controller did not
    # mark it NotReady (it has looked: the rollouts above finished after the outage)
    pods = [p for p in kube.items("pods", namespace) if not p["metadata"].get("deletionTimestamp")]
    through = [p for p in pods if parse_time(p["metadata"]["creationTimestamp"]) < outage_start]
    assert through, "no pod lived through the outage"
    for pod in through:
        ready = ready_condition(pod)
        assert ready.get("status") == "True", f"pod {pod['metadata']['name']} not Ready after the outage"
        assert parse_time(ready["lastTransitionTime"]) < outage_start, (
            f"pod {pod['metadata']['name']} flipped Ready at {ready['lastTransitionTime']} "
            f"(outage {outage_start}..{outage_end})"
        )
    assert operator.health("/readyz")[1]["leader"] is True
    assert operator.health("/healthz")[0] == 200


# ---------------------------------------------------------------------------------------------
# Prometheus hung / stopped
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def gated_prometheus(prometheus: Any) -> Iterator[PrometheusGate]:
    gate = PrometheusGate(prometheus.url).start()
    yield gate
    gate.stop()


@pytest.fixture
def prom_operator(own_operators: Any, gated_prometheus: PrometheusGate) -> Any:
    return own_operators(gated_prometheus.url, LLMOPS_PROMETHEUS_TIMEOUT_SECONDS=str(PROMETHEUS_TIMEOUT))


def rollout_of(model: dict[str, Any]) -> dict[str, Any]:
    return (model.get("status") or {}).get("rollout") or {}


def pause_reasons(model: dict[str, Any]) -> list[str]:
    return [c["reason"] for c in rollout_of(model).get("pauseConditions") or []]


def test_prometheus_hung_a_users_abort_takes_effect_within_one_pass_and_the_hang_is_an_error(
    kube: Kubectl, cluster: Any, own_namespace: str, prom_operator: Any, gated_prometheus: PrometheusGate
) -> None:
    model = CanaryModel(kube, own_namespace, unique("chat"), lambda: prom_operator.log_tail(40))
    steps = [{"setWeight": 50}, {"pause": {}}]
    model.given_stable(canary_spec(steps, analysis("2s", ALWAYS_ONE, mode="threshold"), replicas=2))
    model.when_args_change()
    model.wait(lambda m: rollout_of(m).get("weight") == 50, 60, "weight 50")

    hung_at = utcnow()
    gated_prometheus.set("hang")

    def hang_recorded(m: dict[str, Any]) -> bool:
        errors = [
            x
            for x in (rollout_of(m).get("analysis") or {}).get("measurements") or []
            if x["phase"] == "Error" and parse_time(x["measuredAt"]) >= hung_at
        ]
        # the query's own timeout or the round's deadline, whichever ends first: by elapsed time
        return bool(errors) and "unreachable" in errors[-1]["message"]

    model.wait(hang_recorded, 4 * PROMETHEUS_TIMEOUT, "the hang recorded as an Error measurement")
    analysis_condition = model.condition("Analysis")
    assert analysis_condition["reason"] == "Error" and "unreachable" in analysis_condition["message"]

    written = utcnow()  # what `kubectl llmops abort` writes, without its start-up time
    cluster.custom.patch_namespaced_custom_object_status(
        "llmops.dev",
        "v1alpha1",
        own_namespace,
        "models",
        model.name,
        {"status": {"rollout": {"abort": True}}},
    )
    aborted = model.wait(lambda m: rollout_of(m).get("abortedAt"), 30, "abortedAt")
    took = (parse_time(aborted) - written).total_seconds()
    print(f"\n[hang] abort took effect {took:.2f}s after it was written (Prometheus hung throughout)")
    # one pass: a pass waits for measurements at most a second, never for the hung query
    assert took < PROMETHEUS_TIMEOUT, f"the abort waited {took:.1f}s for a hung Prometheus"
    assert model.status()["stableRevision"] == model.stable
    assert gated_prometheus.mode == "hang"


def test_prometheus_stopped_for_three_intervals_mid_rollouts_holds_every_canary_then_all_finish(
    kube: Kubectl, own_namespace: str, prom_operator: Any, gated_prometheus: PrometheusGate
) -> None:
    """errorPolicy Pause (the default): a monitoring outage past consecutiveErrorLimit holds
    every canary at its step; none is promoted, none rolled back, and all finish afterwards.
    Prometheus is gone until every canary's pause step is over plus three analysis intervals,
    so without the hold each would have walked on to promotion during the outage."""
    interval, pause = 2.0, 25.0
    steps = [{"setWeight": 50}, {"pause": {"duration": f"{pause:.0f}s"}}, {"setWeight": 100}]
    spec_analysis = analysis(f"{interval:.0f}s", ALWAYS_ONE, mode="threshold", consecutiveErrorLimit=1)
    models = [CanaryModel(kube, own_namespace, f"p{i}", lambda: prom_operator.log_tail(40)) for i in range(5)]
    for m in models:
        spec = canary_spec(steps, spec_analysis, replicas=1, tag=m.name)
        kube.apply(model_manifest(m.name, spec), own_namespace)
    for m in models:
        m.stable = m.wait_phase("Ready", 120)["status"]["stableRevision"]
    for m in models:
        m.when_args_change()
    paused_since = []
    for m in models:
        m.wait(lambda s: rollout_of(s).get("stepIndex") == 1, 60, "the pause step")
        paused_since.append(time.monotonic())

    gated_prometheus.set("down")
    try:
        for m in models:  # every canary is held by the policy, and the operator said why
            held = m.wait(
                lambda s: s if "AnalysisError" in pause_reasons(s) else None,
                30,
                "pause condition AnalysisError",
            )
            assert "unreachable" in held["status"]["rollout"]["pauseConditions"][0]["message"]
        # each Model is looked at all along, until its pause step would have ended long ago
        while time.monotonic() < max(paused_since) + pause + 3 * interval:
            for m in models:
                status = m.status()
                assert status.get("stableRevision") == m.stable, f"{m.name} promoted during the outage"
                assert not (status.get("rollout") or {}).get("abort"), (
                    f"{m.name} rolled back during the outage"
                )
    finally:
        gated_prometheus.set("forward")
    for m in models:
        m.wait(
            lambda s, m=m: (
                (s.get("status") or {}).get("stableRevision") == m.canary
                and not (s.get("status") or {}).get("canaryRevision")
            ),
            90,
            "promoted after the outage",
        )
        assert m.revision_record(m.canary).get("outcome") == "Stable"
        reasons = [r for _, r, _ in m.events()]
        assert "RolledBack" not in reasons and "Resumed" in reasons, reasons


def test_the_cache_audit_drops_what_was_deleted_in_a_watch_gap_from_a_metadata_only_list(
    cluster: Any, namespace: str
) -> None:
    """The audit against the real API server (its LIST is metadata only): a cached object the
    server no longer has is dropped, one it has is kept."""
    labels = {LABEL_MANAGED_BY: "llmops-operator", LABEL_MODEL: "audited"}
    Kubectl(cluster.kubeconfig).apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept", "labels": labels}}, namespace
    )
    kube = Kube(cluster.api_client)
    ctx = OperatorContext(kube=kube, settings=Settings(prometheus_url="", operator_image="op"))
    cache = ctx.store.cache_for("ConfigMap")
    cache.upsert(kube.get("ConfigMap", namespace, "kept"))
    gone = {"namespace": namespace, "name": "deleted-in-gap", "resourceVersion": "1", "labels": labels}
    cache.upsert({"apiVersion": "v1", "kind": "ConfigMap", "metadata": gone})
    # a kind with no object left at all: the metadata-only list answers `"items": null`
    jobs = ctx.store.cache_for("Job")
    jobs.upsert({"apiVersion": "batch/v1", "kind": "Job", "metadata": {**gone, "name": "last-job"}})

    assert cache_audit.audit(ctx) == 2
    assert cache.get(namespace, "deleted-in-gap") is None and jobs.get(namespace, "last-job") is None
    assert cache.get(namespace, "kept") is not None
