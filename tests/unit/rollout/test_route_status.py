"""HTTPRoute status, as gateways write it, read into the TrafficRouting condition."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.conditions import Reason
from llmops_operator.reference_grants import NOT_PERMITTED_REASON
from llmops_operator.rollout.traffic.route_status import route_verdict


def _route(parents: list[dict[str, Any]] | None, generation: int = 2) -> dict[str, Any]:
    route: dict[str, Any] = {
        "metadata": {"name": "r", "namespace": "ns", "generation": generation},
        "spec": {"parentRefs": [{"name": "gw"}, {"name": "gw2", "namespace": "infra"}]},
    }
    if parents is not None:
        route["status"] = {"parents": parents}
    return route


def _parent(name: str, namespace: str | None = None, **conditions: tuple[str, str]) -> dict[str, Any]:
    ref = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "parentRef": ref,
        "controllerName": "example.com/gateway",
        "conditions": [
            {"type": t, "status": s, "reason": r, "message": f"{t} says {r}", "observedGeneration": 2}
            for t, (s, r) in conditions.items()
        ],
    }


OK = {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("True", "ResolvedRefs")}


def test_accepted_by_every_parent() -> None:
    verdict = route_verdict(_route([_parent("gw", **OK), _parent("gw2", "infra", **OK)]))
    assert verdict.ok and verdict.reason == Reason.ROUTE_ACCEPTED


def test_no_status_yet_is_unknown_and_names_the_parent() -> None:
    verdict = route_verdict(_route([_parent("gw", **OK)]))
    assert verdict.status == "Unknown" and verdict.reason == Reason.ROUTE_PENDING
    assert "Gateway infra/gw2" in verdict.message


def test_gateway_refusing_inference_pool_backends() -> None:
    refused = {"Accepted": ("True", "Accepted"), "ResolvedRefs": ("False", "InvalidKind")}
    verdict = route_verdict(_route([_parent("gw", **refused), _parent("gw2", "infra", **OK)]))
    assert verdict.status == "False" and verdict.reason == Reason.REFS_NOT_RESOLVED
    assert "Gateway ns/gw" in verdict.message and "InvalidKind" in verdict.message


def test_not_accepted_by_a_listener() -> None:
    bad = {"Accepted": ("False", "NotAllowedByListeners"), "ResolvedRefs": ("True", "ResolvedRefs")}
    verdict = route_verdict(_route([_parent("gw", **OK), _parent("gw2", "infra", **bad)]))
    assert verdict.reason == Reason.ROUTE_NOT_ACCEPTED and "NotAllowedByListeners" in verdict.message


def test_stale_status_is_not_trusted() -> None:
    verdict = route_verdict(_route([_parent("gw", **OK), _parent("gw2", "infra", **OK)], generation=3))
    assert verdict.status == "Unknown"


def test_a_route_without_parents_is_not_accepted() -> None:
    route = _route([])
    route["spec"]["parentRefs"] = []
    assert route_verdict(route).reason == Reason.ROUTE_NOT_ACCEPTED


def test_missing_gateway_and_reference_grant_are_named() -> None:
    verdict = route_verdict(_route(None), missing_gateways=["infra/gw2"])
    assert verdict.reason == Reason.GATEWAY_MISSING and "infra/gw2" in verdict.message
    verdict = route_verdict(_route(None), not_permitted="no grant in team-a")
    assert verdict.reason == NOT_PERMITTED_REASON and "team-a" in verdict.message


conditions = st.fixed_dictionaries(
    {
        "Accepted": st.tuples(
            st.sampled_from(["True", "False", "Unknown"]), st.sampled_from(["Accepted", "NoMatchingParent"])
        ),
        "ResolvedRefs": st.tuples(
            st.sampled_from(["True", "False"]), st.sampled_from(["ResolvedRefs", "RefNotPermitted"])
        ),
    }
)


@given(conditions, conditions, st.booleans())
def test_true_only_when_every_parent_accepted_and_resolved(a: dict, b: dict, include_b: bool) -> None:
    parents = [_parent("gw", **a)] + ([_parent("gw2", "infra", **b)] if include_b else [])
    verdict = route_verdict(_route(parents))
    all_ok = include_b and all(s == "True" for s, _ in [*a.values(), *b.values()])
    assert verdict.ok == all_ok
    assert verdict.message
