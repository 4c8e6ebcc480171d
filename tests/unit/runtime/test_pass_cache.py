"""The World fingerprint and the pass cache: a pass is skipped only when no plan input changed."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmops_operator.api.rollout import Measurement
from llmops_operator.autoscaling.decide import Signals
from llmops_operator.autoscaling.scale_to_zero import Pending
from llmops_operator.gpu.planner import GpuNodeInfo, ModelFacts
from llmops_operator.model_plan import SecretCheck, World
from llmops_operator.monitoring.cost import Rates
from llmops_operator.monitoring.prices import Prices
from llmops_operator.runtime.pass_cache import UNFINGERPRINTED, PassCache, fingerprint

NOW = datetime(2026, 1, 1, tzinfo=UTC)
names = st.text("abcdefghij0123456789-", min_size=1, max_size=8)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), names)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=4,
)


@st.composite
def api_object(draw: st.DrawFn) -> dict[str, Any]:
    """An API object as a watch cache holds it: with a resourceVersion that changes with its
    content (as the API server's does), or (in a hand-made World) without one."""
    obj: dict[str, Any] = {
        "metadata": {"name": draw(names), "namespace": "ns", "uid": draw(names)},
        "spec": draw(json_values),
        "status": draw(json_values),
    }
    if draw(st.booleans()):
        obj["metadata"]["resourceVersion"] = hashlib.sha256(repr(obj).encode()).hexdigest()[:12]
    return obj


objects = st.lists(api_object(), max_size=3).map(tuple)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "model": api_object(),
    "operator_image": names,
    "deployments": objects,
    "pods": objects,
    "jobs": objects,
    "prompt_versions": objects,
    "eval_runs": objects,
    "eval_gates": objects,
    "configmaps": objects,
    "service_names": st.lists(names, max_size=3, unique=True).map(lambda n: tuple(sorted(n))),
    "eval_run_history": st.integers(0, 50),
    "secret": st.none() | st.builds(SecretCheck, st.booleans(), st.booleans()),
    "inventory": st.none()
    | st.lists(st.builds(GpuNodeInfo, names, names, st.integers(0, 8)), max_size=3).map(tuple),
    "http_route": st.none() | api_object(),
    "model_facts": st.none() | st.builds(ModelFacts, st.integers(1, 10**9)),
    "model_facts_error": st.none() | names,
    "model_facts_pending": st.booleans(),
    "autoscaling_signals": st.none()
    | st.builds(Signals, st.none() | st.floats(0, 100), st.integers(0, 5), st.just(NOW), names),
    "endpoint_template": names,
    "verdict_key": st.binary(max_size=8),
    "http_route_denied": st.none() | names,
    "token_rates": st.dictionaries(
        names, st.builds(Rates, st.none() | st.floats(0, 9), st.none() | st.floats(0, 9)), max_size=2
    ),
    "prices": st.builds(Prices, st.none(), st.none() | names),
    "cost_refresh": st.integers(1, 900).map(lambda s: timedelta(seconds=s)),
    "wake_pending": st.none() | st.builds(Pending, st.none() | st.floats(0, 100), st.just(NOW), names),
    "inference_pools": objects,
    "missing_gateways": st.lists(names, max_size=2).map(tuple),
    "reference_grants": st.none() | objects,
    "pool_read_error": st.none() | names,
}


def test_every_plan_input_is_covered_by_the_property() -> None:
    """A new World field must be fingerprinted (and given a strategy here), or declared not an input."""
    inputs = {f.name for f in dataclasses.fields(World)} - UNFINGERPRINTED
    assert inputs == set(FIELDS)


@st.composite
def world_and_change(draw: st.DrawFn) -> tuple[World, World]:
    """A World, and the same World with one input changed the way the API server changes it
    (content and resourceVersion together)."""
    values = {name: draw(strategy) for name, strategy in FIELDS.items()}
    field = draw(st.sampled_from(sorted(FIELDS)))
    other = draw(FIELDS[field].filter(lambda v: v != values[field]))
    return World(now=NOW, **values), dataclasses.replace(World(now=NOW, **values), **{field: other})


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(world_and_change())
def test_changing_any_plan_input_changes_the_fingerprint(pair: tuple[World, World]) -> None:
    before, after = pair
    assert fingerprint(before) != fingerprint(after)


@settings(max_examples=20, suppress_health_check=[HealthCheck.too_slow])
@given(world_and_change())
def test_the_clock_and_measurements_are_not_inputs(pair: tuple[World, World]) -> None:
    world, _ = pair
    later = dataclasses.replace(
        world,
        now=NOW + timedelta(hours=1),
        measurements=(Measurement(metric="ttft", phase="Successful", value=1.0, measured_at=NOW),),
    )
    assert fingerprint(later) == fingerprint(world)


def test_watched_objects_compare_by_resource_version() -> None:
    """The cache's copy of an object stands for its content by resourceVersion: re-delivering
    the same object (a watch echo of our own write) changes nothing."""
    model = {"metadata": {"name": "m", "namespace": "ns", "uid": "u", "resourceVersion": "7"}, "status": {}}
    echo = {**model, "status": {"phase": "Ready"}}  # same resourceVersion: the same object
    assert fingerprint(World(model=model, now=NOW, operator_image="i")) == fingerprint(
        World(model=echo, now=NOW, operator_image="i")
    )


def test_a_pass_is_skipped_only_while_the_print_holds_and_no_timer_is_due() -> None:
    cache = PassCache()
    key = ("ns", "m")
    assert cache.skip(key, "a", 0.0) is None  # never passed over
    cache.record(key, "a", 0.0, requeue=None, full_resync=3600)
    assert cache.skip(key, "a", 10.0) == 3590.0  # nothing due until the safety re-plan
    assert cache.skip(key, "b", 10.0) is None  # an input changed
    assert cache.skip(key, "a", 3600.0) is None  # the safety re-plan is due
    cache.record(key, "a", 0.0, requeue=30.0, full_resync=3600)
    assert cache.skip(key, "a", 29.0) == 1.0
    assert cache.skip(key, "a", 30.0) is None  # the plan's own timer (pause, analysis, autoscaling)
    cache.forget(key)
    assert cache.skip(key, "a", 1.0) is None


def _obj(uid: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": uid, "namespace": "ns", "uid": uid, "resourceVersion": rv}}


def test_the_world_a_pass_left_is_recorded_only_when_every_change_is_its_own() -> None:
    """Our writes' answers are what the next pass will see (skipped); an object someone else
    changed or removed in between is not (the next pass plans)."""
    cache, key = PassCache(), ("ns", "m")
    seen = World(model=_obj("m", "1"), now=NOW, operator_image="i", deployments=(_obj("d", "5"),))
    ours = dataclasses.replace(seen, model=_obj("m", "2"), deployments=(_obj("d", "6"),))
    cache.wrote(_obj("m", "2"))
    cache.wrote(_obj("d", "6"))
    cache.settle(key, seen, ours, 0.0, None, 3600)
    assert cache.skip(key, fingerprint(ours), 1.0) is not None

    theirs = dataclasses.replace(
        ours, deployments=(_obj("d", "7"),)
    )  # the Deployment controller wrote status
    cache.settle(key, seen, theirs, 0.0, None, 3600)
    assert cache.skip(key, fingerprint(theirs), 1.0) is None

    cache.settle(key, seen, dataclasses.replace(ours, deployments=()), 0.0, None, 3600)  # deleted meanwhile
    assert cache.skip(key, fingerprint(dataclasses.replace(ours, deployments=())), 1.0) is None
