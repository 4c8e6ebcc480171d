"""Monitoring what serves on the dev cluster (issue 13 acceptance): scheduled evaluations of the
serving revision, and the cost metric stopping a canary.

Scheduled evaluations: the serving revision is played by an OpenAI stub route (the session
operator's `LLMOPS_EVAL_ENDPOINT_TEMPLATE`), eval Jobs run as local processes (`job_runner`).
Degrading the route's answers must be flagged by the first scheduled run that starts after it,
i.e. within one schedule period, with the failing assertions named; restoring them clears it.

Cost: the metrics emitter's `token_shift` shape doubles the canary's output tokens per request
while every latency stays as the stable revision's; `costPerRequest` with maxRatioToStable 1.3
must roll it back, while the latency metric stays within its threshold.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from helpers_canary import CanaryModel, analysis, canary_spec, parse_time, ttft_ratio, utcnow
from helpers_evals import (
    ANSWERS,
    CASES,
    FAILING_ASSERTIONS,
    GATE,
    condition,
    events_of,
    expected_revision,
    gate_manifest,
    gated_model_spec,
    prompt_spec,
    prompt_version,
    wait_model,
)
from helpers_model import Kubectl, model_manifest, unique

from llmops_operator.monitoring.quality import SCHEDULE_LABEL
from polling import wait_for

pytestmark = pytest.mark.cluster

MODEL = "watched"
PERIOD_SECONDS = 15
SLACK_SECONDS = 5.0
"""A due run starts on the next pass: the operator requeues for the due time (resync 5 s at most)."""
RUN_TIMEOUT = 180.0
"""Generous: an eval Job is a fresh Python process, slow to start on a loaded machine."""
DATASET = "support-evals"


def cases_configmap(cases: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": DATASET},
        "data": {"cases.jsonl": "\n".join(json.dumps(c) for c in cases) + "\n"},
    }


def scheduled_runs(kube: Kubectl, ns: str) -> list[dict[str, Any]]:
    runs = kube.items("evalruns", ns, SCHEDULE_LABEL)
    return sorted(runs, key=lambda r: (r["metadata"]["creationTimestamp"], r["metadata"]["name"]))


def degraded_is(status: str, reason: str | None = None) -> Any:
    def check(model: dict[str, Any]) -> bool:
        c = condition(model, "QualityDegraded")
        return c.get("status") == status and (reason is None or c.get("reason") == reason)

    return check


def test_degraded_answers_are_flagged_within_one_period_and_restoring_clears_it(
    kube: Kubectl, namespace: str, operator: Any, stub: Any, job_runner: Any
) -> None:
    # Given a serving revision whose answers are good, watched every 15 s by a gate whose cases
    # live in a ConfigMap
    ns = namespace
    kube.apply(prompt_version("support-bot-v1", prompt_spec(1)), ns)
    kube.apply(cases_configmap(CASES), ns)
    kube.apply(gate_manifest(dataset={"configMapRef": {"name": DATASET, "key": "cases.jsonl"}}), ns)
    spec = gated_model_spec(1, unique("mon"), replicas=1, strategy="RollingUpdate")
    spec["monitoring"] = {
        "evaluations": [{"gate": GATE, "schedule": {"interval": f"{PERIOD_SECONDS}s"}, "historyLimit": 3}]
    }
    revision = expected_revision(spec, [prompt_spec(1)])
    stub.configure_route(revision, mode="good", answers=ANSWERS)
    kube.apply(model_manifest(MODEL, spec), ns)
    healthy = wait_model(
        kube,
        ns,
        operator,
        "QualityDegraded False after the first scheduled run",
        degraded_is("False"),
        RUN_TIMEOUT,
        model=MODEL,
    )
    trend = healthy["status"]["quality"][0]
    assert (trend["gate"], trend["revision"], trend["lastPassRate"]) == (GATE, revision, 1.0)
    assert trend["baselineScore"] == trend["lastScore"]  # no gate step: the first scheduled run
    first = scheduled_runs(kube, ns)[0]
    assert first["spec"]["revision"] == revision
    assert first["spec"]["endpoint"] == f"http://127.0.0.1:{stub.port}/r/{revision}/v1"

    # When the serving revision's answers degrade
    stub.configure_route(revision, mode="bad")
    degraded_at = utcnow()

    # Then the first scheduled run started after that flags it, naming the failing assertions
    flagged = wait_model(
        kube,
        ns,
        operator,
        "QualityDegraded True",
        degraded_is("True", "BelowPassCriteria"),
        RUN_TIMEOUT,
        model=MODEL,
    )
    message = condition(flagged, "QualityDegraded")["message"]
    for name in FAILING_ASSERTIONS:
        assert name in message, message
    flagging = next(r for r in scheduled_runs(kube, ns) if r["metadata"]["name"] in message)
    started = parse_time(flagging["metadata"]["creationTimestamp"])
    assert started - degraded_at <= timedelta(seconds=PERIOD_SECONDS + SLACK_SECONDS), (started, degraded_at)
    assert set(FAILING_ASSERTIONS) <= set(flagged["status"]["quality"][0]["failingAssertions"])
    warnings = wait_for(
        lambda: [e for e in events_of(kube, ns, "Model", MODEL) if e[1] == "QualityDegraded"],
        30,
        message="a QualityDegraded Warning Event",
    )
    assert warnings[0][0] == "Warning" and FAILING_ASSERTIONS[0] in warnings[0][2]
    assert condition(flagged, "Ready").get("status") == "True", "a quality verdict never stops serving"

    # When the answers are restored, Then the next run clears it
    stub.configure_route(revision, mode="good", answers=ANSWERS)
    wait_model(
        kube,
        ns,
        operator,
        "QualityDegraded False again",
        degraded_is("False", "QualityHolds"),
        RUN_TIMEOUT,
        model=MODEL,
    )
    wait_for(
        lambda: [e for e in events_of(kube, ns, "Model", MODEL) if e[1] == "QualityRestored"],
        30,
        message="a QualityRestored Event",
    )

    # When a case is added to the ConfigMap, Then the next run evaluates it (read at every run)
    added = {
        "id": "warranty",
        "vars": {"company": "Acme", "question": "Is there a warranty?"},
        "expected": "Two years.",
    }
    kube.apply(cases_configmap([*CASES, added]), ns)
    wait_for(
        lambda: any(
            ((r.get("status") or {}).get("candidate") or {}).get("cases") == len(CASES) + 1
            for r in scheduled_runs(kube, ns)
        ),
        RUN_TIMEOUT,
        message="a scheduled run over the added case",
    )

    # and the history stays bounded: at most historyLimit scheduled runs (plus one just started)
    runs = scheduled_runs(kube, ns)
    assert len(runs) >= 3
    wait_for(lambda: len(scheduled_runs(kube, ns)) <= 3, 30, message="history pruned to historyLimit 3")


BUSY = {"rps": 50.0}


def test_canary_with_twice_the_output_tokens_at_flat_latency_is_rolled_back_by_cost(
    kube: Kubectl, namespace: str, operator: Any, traffic: Any
) -> None:
    # Given a stable revision serving traffic, with cost and latency metrics on its canaries
    cost = {"name": "cost", "builtin": "costPerRequest", "maxRatioToStable": 1.3, "window": "10s"}
    steps = [{"setWeight": 50}, {"pause": {"duration": "60s"}}]
    model = CanaryModel(kube, namespace, unique("chat"), lambda: operator.log_tail(60))
    spec = canary_spec(steps, analysis("3s", ttft_ratio(), cost, failureLimit=0), replicas=2)
    stable = model.given_stable(spec)
    traffic.set_shape("steady", revision=stable, namespace=namespace, **BUSY)
    model.wait(
        lambda m: ((m.get("status") or {}).get("cost") or {}).get("costPerMillionOutputTokens"),
        60,
        "status.cost of the stable revision",
    )

    # When a canary answers with twice the output tokens per request, at the same latency
    canary = model.when_args_change()
    traffic.set_shape("token_shift", revision=canary, namespace=namespace, output_factor=2.0, **BUSY)

    # Then the cost metric rolls it back, naming cost, its value and the threshold
    model.wait(lambda m: model.rolled_back_to_stable(), 120, "rollback by the cost metric")
    rolled = model.condition("RolledBack")
    assert rolled.get("status") == "True", rolled
    assert rolled["message"].startswith("cost: "), rolled["message"]
    assert "maxRatioToStable 1.3" in rolled["message"]
    measurements = model.rollout()["analysis"]["measurements"]
    failed = [m for m in measurements if m["metric"] == "cost" and m["phase"] == "Failed"]
    assert failed and 1.7 < failed[-1]["value"] / failed[-1]["stableValue"] < 2.3, failed
    assert all(m["phase"] != "Failed" for m in measurements if m["metric"] == "ttft"), measurements
    assert model.revision_record(canary).get("outcome") == "RolledBack"

    # and cost shows in status and in `kubectl get llm -o wide`
    status = model.status()
    record = next(r for r in status["cost"]["revisions"] if r["revision"] == stable)
    assert record["outputTokensPerSecond"] > 0 and record["pricePerGpuHour"] > 0
    wide = kube.run("-n", namespace, "get", "llm", model.name, "-o", "wide").stdout
    assert "COST" in wide.splitlines()[0]
