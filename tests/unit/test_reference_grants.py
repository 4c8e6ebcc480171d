"""Cross-namespace references need a ReferenceGrant in the target namespace (Gateway API rules)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.reference_grants import ObjectRef, allows, not_permitted_message

MODEL = ObjectRef("llmops.dev", "Model", "team-a", "chat")
ROUTE = ObjectRef("gateway.networking.k8s.io", "HTTPRoute", "edge", "public")


def grant(namespace: str, from_: list[dict[str, Any]], to: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": {"name": "g", "namespace": namespace},
        "spec": {"from": from_, "to": to},
    }


FROM_TEAM_A = {"group": "llmops.dev", "kind": "Model", "namespace": "team-a"}
TO_ROUTES = {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}


def test_same_namespace_needs_no_grant() -> None:
    assert allows([], MODEL, ObjectRef(ROUTE.group, ROUTE.kind, "team-a", "public"))


def test_cross_namespace_without_grant_is_refused_and_says_what_to_create() -> None:
    assert not allows([], MODEL, ROUTE)
    message = not_permitted_message(MODEL, ROUTE)
    assert "ReferenceGrant in edge" in message and "team-a" in message


def test_a_grant_in_the_target_namespace_allows() -> None:
    assert allows([grant("edge", [FROM_TEAM_A], [TO_ROUTES])], MODEL, ROUTE)
    assert allows([grant("edge", [FROM_TEAM_A], [{**TO_ROUTES, "name": "public"}])], MODEL, ROUTE)


def test_a_grant_in_the_tenants_own_namespace_does_not() -> None:
    """A tenant cannot grant itself access to someone else's namespace."""
    assert not allows([grant("team-a", [FROM_TEAM_A], [TO_ROUTES])], MODEL, ROUTE)


def test_a_grant_for_another_name_kind_or_namespace_does_not() -> None:
    for from_, to in (
        (FROM_TEAM_A, {**TO_ROUTES, "name": "private"}),
        (FROM_TEAM_A, {"group": "", "kind": "Service"}),
        ({**FROM_TEAM_A, "namespace": "team-b"}, TO_ROUTES),
        ({**FROM_TEAM_A, "kind": "EvalGate"}, TO_ROUTES),
        ({**FROM_TEAM_A, "group": "other.dev"}, TO_ROUTES),
    ):
        assert not allows([grant("edge", [from_], [to])], MODEL, ROUTE), (from_, to)


def test_core_group_spellings() -> None:
    secret = ObjectRef("", "Secret", "vault", "token")
    assert allows([grant("vault", [FROM_TEAM_A], [{"group": "core", "kind": "Secret"}])], MODEL, secret)
    assert allows([grant("vault", [FROM_TEAM_A], [{"group": "", "kind": "Secret"}])], MODEL, secret)


NAMES = st.sampled_from(["team-a", "team-b", "edge", ""])
ENTRY = st.fixed_dictionaries(
    {
        "group": st.sampled_from(["llmops.dev", "gateway.networking.k8s.io", "", None]),
        "kind": st.sampled_from(["Model", "HTTPRoute", "Service"]),
        "namespace": NAMES,
        "name": st.sampled_from([None, "", "public", "private"]),
    }
)
GRANTS = st.lists(
    st.builds(grant, NAMES, st.lists(ENTRY, max_size=3), st.lists(ENTRY, max_size=3)), max_size=4
)


@given(GRANTS)
def test_only_grants_in_the_target_namespace_ever_matter(grants: list[dict[str, Any]]) -> None:
    elsewhere = [g for g in grants if g["metadata"]["namespace"] != ROUTE.namespace]
    assert not allows(elsewhere, MODEL, ROUTE)
    here = [g for g in grants if g["metadata"]["namespace"] == ROUTE.namespace]
    assert allows(grants, MODEL, ROUTE) == allows(here, MODEL, ROUTE)
