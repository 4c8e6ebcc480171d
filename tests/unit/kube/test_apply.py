"""Executing a plan against a fake API client: the RFC 7386 merge patch, which applies are
skipped, and the order of writes (apply, scale, delete, route, status, then Events)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from llmops_operator.kube.apply import apply_owned, execute, merge_patch
from llmops_operator.kube.client import KubeError, NotFound
from llmops_operator.model_plan import ModelPlan
from llmops_operator.runtime.context import OperatorContext, Settings

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class FakeKube:
    """Records every call in order; writes answer with the body and a fresh resourceVersion."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.events: list[tuple[str, str]] = []
        self.version = 0
        self.status_missing = False
        self.request_count = 0
        self.requests_by: dict[tuple[str, str], int] = {}
        self.refuse: dict[tuple[str, str], KubeError] = {}
        """(verb, object name) -> the error the server answers."""

    def _answer(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        meta = {**obj.get("metadata", {}), "resourceVersion": str(self.version), "generation": self.version}
        return {**obj, "metadata": meta}

    def apply(self, obj: dict[str, Any], subresource: str | None = None) -> dict[str, Any]:
        self.calls.append(("apply", obj["kind"], obj["metadata"]["name"]))
        if ("apply", obj["metadata"]["name"]) in self.refuse:
            raise self.refuse[("apply", obj["metadata"]["name"])]
        return self._answer(obj)

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("patch", kind, name))
        return self._answer({"kind": kind, "metadata": {"name": name, "namespace": namespace}, **patch})

    def patch_guarded(
        self, kind: str, namespace: str, name: str, patch: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        self.calls.append(("patch", kind, name, f"if at {resource_version}"))
        return self._answer({"kind": kind, "metadata": {"name": name, "namespace": namespace}, **patch})

    def delete(self, kind: str, namespace: str, name: str, observed: dict[str, Any] | None = None) -> bool:
        uid = ((observed or {}).get("metadata") or {}).get("uid")
        self.calls.append(("delete", kind, name, f"if uid {uid}") if uid else ("delete", kind, name))
        return True

    def patch_status(
        self, kind: str, namespace: str, name: str, patch: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        self.calls.append(("status", kind, name))
        if ("status", name) in self.refuse and "phase" in patch:
            raise self.refuse[("status", name)]
        if self.status_missing:
            raise NotFound(name)
        return self._answer(
            {"kind": kind, "metadata": {"name": name, "namespace": namespace}, "status": patch}
        )

    def post_event(self, involved: dict[str, Any], type_: str, reason: str, message: str, now: str) -> None:
        self.calls.append(("event", type_, reason))
        self.events.append((reason, message))


def _ctx() -> tuple[OperatorContext, FakeKube]:
    kube = FakeKube()
    return OperatorContext(kube=kube, settings=Settings(prometheus_url="", operator_image="op")), kube  # type: ignore[arg-type]


def _obj(kind: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "namespace": "ns"}, "spec": dict(spec)}


@pytest.mark.parametrize(
    ("current", "desired", "patch"),
    [
        ({"a": 1}, {"a": 1}, None),
        ({"a": 1}, {"a": 2}, {"a": 2}),
        ({"a": 1}, {}, {"a": None}),
        ({}, {"a": {"b": 1}}, {"a": {"b": 1}}),
        ({"a": {"b": 1, "c": 2}}, {"a": {"b": 1}}, {"a": {"c": None}}),
        ({"a": {"b": 1}}, {"a": {"b": 1, "c": [1, 2]}}, {"a": {"c": [1, 2]}}),
        ({"a": [1, 2]}, {"a": [2]}, {"a": [2]}),
        ({"a": 1}, {"a": None}, {"a": None}),
        ({"a": None}, {"a": None}, None),
        ({"a": {"b": 1}}, {"a": "flat"}, {"a": "flat"}),
    ],
)
def test_merge_patch(current: dict[str, Any], desired: dict[str, Any], patch: Any) -> None:
    assert merge_patch(current, desired) == patch


@pytest.mark.parametrize(
    ("case", "watched", "drifted", "body_changed", "applies"),
    [
        ("unchanged body, object as we left it", True, False, False, 1),
        ("unchanged body, someone edited the object", True, True, False, 2),
        ("changed body", True, False, True, 2),
        ("unwatched kind, unchanged body: once per start", False, False, False, 1),
        ("unwatched kind, changed body", False, False, True, 2),
    ],
)
def test_apply_skip(case: str, watched: bool, drifted: bool, body_changed: bool, applies: int) -> None:
    ctx, kube = _ctx()
    kind = "Deployment" if watched else "ServiceAccount"
    apply_owned(ctx, _obj(kind, "x", replicas=1))
    if drifted:
        live = ctx.store.deployments.get("ns", "x")
        assert live is not None
        ctx.store.deployments.upsert(
            {**live, "metadata": {**live["metadata"], "generation": 99, "resourceVersion": "99"}}
        )
    apply_owned(ctx, _obj(kind, "x", replicas=2 if body_changed else 1))
    assert [c for c in kube.calls if c[0] == "apply"] == [("apply", kind, "x")] * applies, case


def test_execute_writes_in_order_then_posts_events() -> None:
    ctx, kube = _ctx()
    old = _obj("Deployment", "m-old") | {"spec": {"replicas": 3}}
    old["metadata"]["resourceVersion"] = "3"
    ctx.store.deployments.upsert(old)
    gone = _obj("Deployment", "m-gone")
    gone["metadata"]["uid"] = "u-1"
    ctx.store.deployments.upsert(gone)
    ctx.store.eval_runs.upsert(_obj("EvalRun", "run-1"))
    model = {
        "metadata": {"name": "m", "namespace": "ns", "resourceVersion": "7"},
        "status": {"phase": "Pending"},
    }
    plan = ModelPlan(
        apply=[_obj("Deployment", "m-new"), _obj("EvalRun", "run-1"), _obj("Service", "m")],
        scale={"m-old": 1, "m-missing": 2},  # scale-downs only from what the cache saw
        delete=[("Deployment", "m-gone"), ("Deployment", "m-never-seen"), ("Role", "r")],
        status={"phase": "Progressing"},
        events=[("Normal", "RolloutStarted", "go")],
        route_patch=_obj("HTTPRoute", "route"),
        requeue_after=5.0,
    )
    assert execute(ctx, model, plan, NOW).requeue_after == 5.0
    ctx.events.shutdown(wait=True)
    assert kube.calls == [
        ("apply", "Deployment", "m-new"),  # the existing EvalRun is not applied again
        ("apply", "Service", "m"),
        # only a Deployment the cache has, only if it differs, and only while it is as seen
        ("patch", "Deployment", "m-old", "if at 3"),
        # only the object the cache saw (UID precondition), never one it did not see; unwatched
        # kinds (an eval run's Role) by name
        ("delete", "Deployment", "m-gone", "if uid u-1"),
        ("delete", "Role", "r"),
        ("apply", "HTTPRoute", "route"),
        ("status", "Model", "m"),
        ("event", "Normal", "RolloutStarted"),
    ]
    assert ctx.store.models.get("ns", "m") is not None


def test_execute_skips_an_unchanged_status_and_stops_when_the_model_is_gone() -> None:
    ctx, kube = _ctx()
    model = {"metadata": {"name": "m", "namespace": "ns"}, "status": {"phase": "Ready"}}
    assert (
        execute(ctx, model, ModelPlan(status={"phase": "Ready"}, requeue_after=30.0), NOW).requeue_after
        == 30.0
    )
    assert kube.calls == []
    kube.status_missing = True
    assert execute(ctx, model, ModelPlan(status={"phase": "Failed"}), NOW).requeue_after is None
    assert kube.calls == [("status", "Model", "m")]


def test_an_unwatched_object_deleted_by_a_plan_is_applied_again_when_wanted_back() -> None:
    """A retried revision gets its InferencePool back: the apply-skip forgets deleted objects."""
    ctx, kube = _ctx()
    model = {"metadata": {"name": "m", "namespace": "ns"}, "status": {}}
    pool = _obj("InferencePool", "m-r1", selector={})
    execute(ctx, model, ModelPlan(apply=[pool]), NOW)
    execute(ctx, model, ModelPlan(delete=[("InferencePool", "m-r1")]), NOW)
    execute(ctx, model, ModelPlan(apply=[pool]), NOW)
    assert [c for c in kube.calls if c[1] == "InferencePool"] == [
        ("apply", "InferencePool", "m-r1"),
        ("delete", "InferencePool", "m-r1"),
        ("apply", "InferencePool", "m-r1"),
    ]


def _conditions(ctx: OperatorContext) -> dict[str, dict[str, Any]]:
    model = ctx.store.models.get("ns", "m")
    assert model is not None
    return {c["type"]: c for c in model["status"]["conditions"]}


def test_a_refused_canary_apply_still_scales_deletes_and_writes_a_reconcile_error() -> None:
    """Given the server refuses the canary Deployment, When the plan runs, Then the stable one is
    still scaled, the old one deleted, and the status names the refused object (secrets scrubbed)."""
    ctx, kube = _ctx()
    ctx.store.deployments.upsert(_obj("Deployment", "m-stable") | {"spec": {"replicas": 1}})
    ctx.store.deployments.upsert(_obj("Deployment", "m-old"))
    kube.refuse[("apply", "m-canary")] = KubeError(422, "spec.template: invalid, token=sk-abcdefghijkl")
    model = {"metadata": {"name": "m", "namespace": "ns", "generation": 3}, "status": {"phase": "Ready"}}
    plan = ModelPlan(
        apply=[_obj("Deployment", "m-canary")],
        scale={"m-stable": 4},
        delete=[("Deployment", "m-old")],
        status={"phase": "Progressing", "conditions": []},
    )
    result = execute(ctx, model, plan, NOW)
    ctx.events.shutdown(wait=True)
    assert [f.target for f in result.failures] == ["Deployment m-canary"]
    assert ("patch", "Deployment", "m-stable") in kube.calls and (
        "delete",
        "Deployment",
        "m-old",
    ) in kube.calls
    error = _conditions(ctx)["ReconcileError"]
    assert (error["status"], error["reason"], error["observedGeneration"]) == ("True", "ApplyFailed", 3)
    assert "Deployment m-canary" in error["message"] and "sk-abcdefghijkl" not in error["message"]
    assert [reason for reason, _ in kube.events] == ["ReconcileError"]


def test_a_clean_pass_clears_the_reconcile_error_and_a_repeat_posts_no_second_event() -> None:
    ctx, kube = _ctx()
    kube.refuse[("apply", "m-canary")] = KubeError(403, "forbidden")
    model: dict[str, Any] = {"metadata": {"name": "m", "namespace": "ns"}, "status": {}}
    plan = ModelPlan(apply=[_obj("Deployment", "m-canary")], status={"phase": "Progressing"})
    execute(ctx, model, plan, NOW)
    again = ctx.store.models.get("ns", "m")
    assert again is not None
    plan_again = ModelPlan(
        apply=[_obj("Deployment", "m-canary")], status={**again["status"], "phase": "Progressing"}
    )
    execute(ctx, again, plan_again, NOW)
    del kube.refuse[("apply", "m-canary")]
    latest = ctx.store.models.get("ns", "m")
    assert latest is not None
    assert not execute(ctx, latest, ModelPlan(status=latest["status"]), NOW).failures
    ctx.events.shutdown(wait=True)
    assert [reason for reason, _ in kube.events] == ["ReconcileError"]
    assert "ReconcileError" not in _conditions(ctx)


def test_a_refused_status_write_keeps_the_status_and_records_only_the_condition() -> None:
    """A 422 on the planned status (say a value the schema rejects) still leaves a condition."""
    ctx, kube = _ctx()
    kube.refuse[("status", "m")] = KubeError(422, "status.phase: Unsupported value")
    model = {"metadata": {"name": "m", "namespace": "ns"}, "status": {"phase": "Ready"}}
    result = execute(ctx, model, ModelPlan(status={"phase": "Bogus"}), NOW)
    assert [f.stage for f in result.failures] == ["status"]
    assert [c for c in kube.calls if c[0] == "status"] == [("status", "Model", "m")] * 2
