"""May an object in one namespace refer to an object in another? Gateway API ReferenceGrant rules.

A tenant's Model may name an object in another namespace (today: the HTTPRoute whose weights a
canary shifts) only when the owner of that namespace says so, the way Gateway API does it: a
`ReferenceGrant` *in the target namespace* whose `from` lists the referring (group, kind,
namespace) and whose `to` lists the target (group, kind[, name]). Without one, the operator acts
as if the target did not exist and says so in a condition; it never uses its own cluster-wide
permission on the tenant's behalf. Pure: the caller lists the grants of the target namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

REFERENCE_GRANT_API = "gateway.networking.k8s.io/v1beta1"
NOT_PERMITTED_REASON = "RefNotPermitted"
"""Condition reason when a cross-namespace reference has no ReferenceGrant (Gateway API's name)."""


@dataclass(frozen=True)
class ObjectRef:
    """One end of a reference: the API group ("" for core), kind, namespace and name."""

    group: str
    kind: str
    namespace: str
    name: str


def _group(value: Any) -> str:
    return "" if value in (None, "core") else str(value)


def _from_matches(entry: Mapping[str, Any], source: ObjectRef) -> bool:
    return (
        _group(entry.get("group")) == _group(source.group)
        and entry.get("kind") == source.kind
        and entry.get("namespace") == source.namespace
    )


def _to_matches(entry: Mapping[str, Any], target: ObjectRef) -> bool:
    name = entry.get("name")
    return (
        _group(entry.get("group")) == _group(target.group)
        and entry.get("kind") == target.kind
        and (not name or name == target.name)
    )


def allows(grants: Iterable[Mapping[str, Any]], source: ObjectRef, target: ObjectRef) -> bool:
    """Whether `source` may refer to `target`: always within one namespace; across namespaces only
    when one ReferenceGrant in the target's namespace lists both ends."""
    if source.namespace == target.namespace:
        return True
    for grant in grants:
        if (grant.get("metadata") or {}).get("namespace") != target.namespace:
            continue  # a grant speaks only for its own namespace
        spec = grant.get("spec") or {}
        if any(_from_matches(f, source) for f in spec.get("from") or []) and any(
            _to_matches(t, target) for t in spec.get("to") or []
        ):
            return True
    return False


def not_permitted_message(source: ObjectRef, target: ObjectRef) -> str:
    """What the condition says when `allows` is False: who must create which ReferenceGrant."""
    group = source.group or "core"
    return (
        f"{target.kind} {target.namespace}/{target.name} is in another namespace; its owner must allow "
        f"the reference with a ReferenceGrant in {target.namespace} from {group} {source.kind} "
        f"in {source.namespace} to {target.kind} {target.name}"
    )
