"""Issue 15: what the operator keeps in memory per revision, EvalRun, Event or deleted object is
dropped with it or capped, so a long soak of rollouts leaves the process where it started."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from llmops_operator.api.common import LABEL_MODEL
from llmops_operator.evals.job import IDENTITY_KINDS, eval_run_objects
from llmops_operator.handlers import wiring
from llmops_operator.kube.apply import apply_owned, create_once, execute
from llmops_operator.kube.client import Kube
from llmops_operator.model_plan import ModelPlan
from llmops_operator.runtime import cache_audit
from llmops_operator.runtime.applied import Applied, AppliedTable
from llmops_operator.runtime.context import OperatorContext, Settings
from llmops_operator.runtime.store import KindCache

ROLLOUTS = 200
NOW = datetime(2026, 12, 2, tzinfo=UTC)
MODEL = {
    "apiVersion": "llmops.dev/v1alpha1",
    "kind": "Model",
    "metadata": {"name": "m", "namespace": "ns", "uid": "u"},
}


class FakeKube(Kube):
    """Writes answer with the body, a uid and a fresh resourceVersion; Events are recorded."""

    def __init__(self) -> None:
        super().__init__(api_client=object())  # type: ignore[arg-type]
        self.version = 0
        self.applies = 0

    def _answer(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        meta = obj["metadata"]
        uid = f"uid-{obj['kind']}-{meta['namespace']}-{meta['name']}"
        answer = {"uid": uid, "resourceVersion": str(self.version), "generation": 1}
        return {**obj, "metadata": {**meta, **answer}}

    def apply(self, obj: dict[str, Any], subresource: str | None = None) -> dict[str, Any]:
        self.applies += 1
        return self._answer(obj)

    def create_if_absent(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        return self._answer(obj)

    def delete(self, kind: str, namespace: str, name: str, observed: dict[str, Any] | None = None) -> bool:
        return True

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {**obj, "metadata": {**obj["metadata"], "name": f"{obj['metadata']['generateName']}x"}}

    def list_names(
        self, kind: str, namespace: str, label_selector: str | None = None
    ) -> tuple[set[str], str]:
        return set(), str(self.version + 1)  # everything was deleted during a watch gap


@pytest.fixture
def ctx(monkeypatch: pytest.MonkeyPatch) -> OperatorContext:
    context = OperatorContext(kube=FakeKube(), settings=Settings(prometheus_url="", operator_image="op"))
    monkeypatch.setattr(wiring, "CONTEXT", context)
    return context


def _obj(kind: str, name: str, model: str = "m") -> dict[str, Any]:
    meta = {"name": name, "namespace": "ns", "labels": {LABEL_MODEL: model}}
    return {"kind": kind, "metadata": meta, "spec": {"name": name}}


def _deleted(ctx: OperatorContext, kind: str, name: str) -> None:
    """The watch reports the object (as the cache holds it) DELETED, through the kopf handlers."""
    body = ctx.store.cache_for(kind).get("ns", name)
    assert body is not None
    if kind == "EvalRun":
        wiring.eval_run_event(type="DELETED", event={"object": body})
    else:
        wiring.cache_event(kind, "DELETED", body)


def _rollout(ctx: OperatorContext, r: int) -> None:
    """One revision's objects and one EvalRun with its identity, as a canary pass applies them."""
    for kind in ("Deployment", "Service", "ConfigMap"):
        apply_owned(ctx, _obj(kind, f"m-r{r}"))
    create_once(ctx, _obj("EvalRun", f"run-{r}"))
    for kind in IDENTITY_KINDS:
        apply_owned(ctx, _obj(kind, f"run-{r}"))


def test_a_soak_of_rollouts_leaves_no_apply_or_write_records_of_deleted_objects(ctx: OperatorContext) -> None:
    """Old revisions go by watch DELETED (retention, garbage collection); an EvalRun's identity
    goes with the EvalRun although nothing watches it."""
    for r in range(ROLLOUTS):
        _rollout(ctx, r)
        if r:
            for kind in ("Deployment", "Service", "ConfigMap", "EvalRun"):
                name = f"m-r{r - 1}" if kind != "EvalRun" else f"run-{r - 1}"
                _deleted(ctx, kind, name)
    live_revision = 3 + len(IDENTITY_KINDS)
    assert len(ctx.applied) == live_revision
    assert len(ctx.passes._written) == 4  # Deployment, Service, ConfigMap, EvalRun of the last
    assert ctx.store.deployments.owned_by("ns", "m") == [
        ctx.store.deployments.get("ns", f"m-r{ROLLOUTS - 1}")
    ]


def test_objects_a_plan_deletes_leave_no_records(ctx: OperatorContext) -> None:
    model = {"metadata": {"name": "m", "namespace": "ns"}, "status": {}}
    for r in range(ROLLOUTS):
        _rollout(ctx, r)
        if r:
            old = [(k, f"m-r{r - 1}") for k in ("Deployment", "Service", "ConfigMap")]
            old += eval_run_objects(f"run-{r - 1}")  # what retention deletes of a stale run
            execute(ctx, model, ModelPlan(delete=old), NOW)
    assert len(ctx.applied) == 3 + len(IDENTITY_KINDS)
    assert len(ctx.passes._written) == 4  # the last revision's three and its EvalRun


def test_a_deleted_model_leaves_nothing_per_model(ctx: OperatorContext) -> None:
    model = {**MODEL, "metadata": {**MODEL["metadata"], "resourceVersion": "1"}}
    ctx.store.models.upsert(model)
    _rollout(ctx, 1)
    apply_owned(ctx, _obj("ServiceAccount", "m-picker"))  # unwatched, garbage collected
    apply_owned(ctx, _obj("ServiceAccount", "other-picker", model="other"))
    ctx.backoff.failed(("ns", "m"))
    ctx.kube.post_event(model, "Warning", "ReconcileError", "refused", "2026-12-02T00:00:00Z")
    ctx.metrics.count_measurement("ns", "m", "errors", "Successful")
    wiring.model_event("DELETED", model)
    for kind in ("Deployment", "Service", "ConfigMap", "EvalRun"):
        cache = ctx.store.cache_for(kind)
        for obj in cache.owned_by("ns", "m"):
            _deleted(ctx, kind, obj["metadata"]["name"])
    assert list(ctx.applied._entries) == [("ServiceAccount", "ns", "other-picker")]
    assert ctx.backoff.failures(("ns", "m")) == 0
    assert len(ctx.kube.events) == 0
    assert ctx.store.deployments._by_model == {}
    assert 'model="m"' not in generate_latest(ctx.metrics.registry).decode()


def test_what_the_cache_audit_drops_leaves_no_records(ctx: OperatorContext) -> None:
    _rollout(ctx, 1)
    assert cache_audit.audit(ctx) == 4
    assert len(ctx.applied) == 0  # the EvalRun's identity went with it
    assert ctx.passes._written == {}


def test_the_applied_table_is_capped_least_recently_used_first() -> None:
    table = AppliedTable(limit=100)
    table.put(("Deployment", "ns", "kept"), Applied("h", "1", "m"))
    for r in range(10_000):
        table.put(("Deployment", "ns", f"m-r{r}"), Applied("h", "1", "m"))
        table.get(("Deployment", "ns", "kept"))  # in use: never the one dropped
    assert len(table) == 100
    assert table.get(("Deployment", "ns", "kept")) is not None
    assert table.get(("Deployment", "ns", "m-r0")) is None


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["put", "forget"]), st.integers(0, 500)), max_size=400))
def test_the_applied_table_never_passes_its_cap(ops: list[tuple[str, int]]) -> None:
    table = AppliedTable(limit=32)
    for op, n in ops:
        key = ("ConfigMap", "ns", f"m-r{n}")
        if op == "put":
            table.put(key, Applied(str(n), "1", "m"))
            assert table.get(key) == Applied(str(n), "1", "m")
        else:
            table.forget([key])
            assert table.get(key) is None
        assert len(table) <= 32


def test_an_evicted_entry_costs_one_apply_and_no_more(ctx: OperatorContext) -> None:
    ctx.applied = AppliedTable(limit=2)
    kube = ctx.kube
    assert isinstance(kube, FakeKube)
    for name in ("a", "b", "c"):
        apply_owned(ctx, _obj("ServiceAccount", name))
    apply_owned(ctx, _obj("ServiceAccount", "a"))  # evicted: applied again
    apply_owned(ctx, _obj("ServiceAccount", "a"))  # remembered again: skipped
    assert kube.applies == 4


def test_the_model_index_drops_a_model_with_its_last_object() -> None:
    cache = KindCache()
    for i in range(10_000):
        cache.upsert(_obj("Pod", f"p{i}", model=f"m{i}"))
        cache.remove("ns", f"p{i}")
    assert cache._by_model == {}
