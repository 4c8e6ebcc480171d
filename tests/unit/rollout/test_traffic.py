"""Replica-ratio split and the Gateway API HTTPRoute weights."""

from __future__ import annotations

import copy
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.rollout.traffic.gateway import httproute_weights, route_weights
from llmops_operator.rollout.traffic.replica import split


@pytest.mark.parametrize(
    ("weight", "total", "dynamic", "canary", "stable"),
    [
        (0, 4, False, 0, 4),
        (10, 4, False, 1, 4),
        (25, 4, False, 1, 4),
        (50, 4, False, 2, 4),
        (100, 4, False, 4, 4),
        (10, 1, False, 1, 1),
        (10, 1, True, 1, 1),
        (50, 4, True, 2, 2),
        (75, 4, True, 3, 1),
        (100, 4, True, 4, 0),
        (0, 4, True, 0, 4),
        (30, 0, False, 0, 0),
    ],
)
def test_split(weight: int, total: int, dynamic: bool, canary: int, stable: int) -> None:
    assert (split(weight, total, dynamic).canary, split(weight, total, dynamic).stable) == (canary, stable)


@given(st.integers(0, 100), st.integers(0, 64), st.booleans())
def test_split_properties(weight: int, total: int, dynamic: bool) -> None:
    s = split(weight, total, dynamic)
    assert s.canary == math.ceil(weight * total / 100)
    assert 0 <= s.canary <= total and 0 <= s.stable <= total
    if not dynamic:
        assert s.stable == total
    else:
        assert s.canary + s.stable >= total  # never less capacity than the traffic needs


@pytest.mark.parametrize("bad", [(-1, 4), (101, 4), (10, -1)])
def test_split_rejects(bad: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        split(*bad)


ROUTE = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "chat", "namespace": "team-a", "resourceVersion": "7"},
    "spec": {
        "parentRefs": [{"name": "gw"}],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                "backendRefs": [
                    {"name": "support", "port": 8000},
                    {"name": "other-svc", "port": 80, "weight": 5},
                ],
            },
            {
                "matches": [{"path": {"type": "PathPrefix", "value": "/docs"}}],
                "backendRefs": [{"name": "docs", "port": 80}],
            },
        ],
    },
}


def test_route_weights_replace_the_models_refs_and_keep_everything_else() -> None:
    original = copy.deepcopy(ROUTE)
    patch = httproute_weights(ROUTE, "support", "old1", "new2", 30, port=8000)
    assert original == ROUTE, "input not mutated"
    assert patch.rules_changed == 1
    body = patch.body
    assert body["metadata"] == {"name": "chat", "namespace": "team-a"}
    assert set(body["spec"]) == {"rules"}, "only the rules are applied, parentRefs stay the user's"
    rule, docs = body["spec"]["rules"]
    assert rule["matches"] == ROUTE["spec"]["rules"][0]["matches"]
    assert rule["backendRefs"] == [
        {"name": "other-svc", "port": 80, "weight": 5},
        {"name": "support-old1", "port": 8000, "weight": 70},
        {"name": "support-new2", "port": 8000, "weight": 30},
    ]
    assert docs == ROUTE["spec"]["rules"][1]
    assert route_weights(body, "support") == {"support-old1": 70, "support-new2": 30}


def test_abort_and_promotion_leave_one_revision() -> None:
    step1 = httproute_weights(ROUTE, "support", "old1", "new2", 50, port=8000).body
    back = httproute_weights(step1, "support", "old1", "new2", 0, port=8000).body
    assert route_weights(back, "support") == {"support-old1": 100, "support-new2": 0}
    promoted = httproute_weights(step1, "support", "new2", None, 0, known_revisions=["old1"], port=8000).body
    assert route_weights(promoted, "support") == {"support-new2": 100}


def test_a_route_that_does_not_point_at_the_model_changes_nothing() -> None:
    patch = httproute_weights(ROUTE, "unrelated", "a", "b", 10, port=8000)
    assert patch.rules_changed == 0 and patch.body["spec"]["rules"] == ROUTE["spec"]["rules"]


@given(st.integers(0, 100))
def test_weights_always_sum_to_100(weight: int) -> None:
    w = route_weights(httproute_weights(ROUTE, "support", "old1", "new2", weight, port=8000).body, "support")
    assert sum(w.values()) == 100 and w["support-new2"] == weight
