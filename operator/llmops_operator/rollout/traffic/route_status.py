"""Read an HTTPRoute's status as the gateways wrote it into one TrafficRouting verdict.

Each Gateway controller writes one `status.parents[]` entry per parentRef it manages, with
`Accepted` (the Gateway took the route) and `ResolvedRefs` (every backendRef resolved: a
missing ReferenceGrant is `RefNotPermitted`, a backend kind the gateway does not support,
such as InferencePool on a gateway without the Inference Extension, is `InvalidKind`). A
parentRef nobody answers for (e.g. the Gateway does not exist) has no entry at all, so the
caller also says which Gateways and ReferenceGrants it found (`missing_gateways`,
`not_permitted`). Pure: the operator reads, this module judges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmops_operator.conditions import Reason, Status
from llmops_operator.reference_grants import NOT_PERMITTED_REASON


@dataclass(frozen=True)
class RouteVerdict:
    """The TrafficRouting condition for one route: True only when every parent accepted it
    with all references resolved."""

    status: Status
    reason: str
    message: str

    @property
    def ok(self) -> bool:
        return self.status == "True"


def _parent_name(ref: Mapping[str, Any], route_namespace: str) -> str:
    return f"{ref.get('kind', 'Gateway')} {ref.get('namespace') or route_namespace}/{ref.get('name')}"


def _same_parent(a: Mapping[str, Any], b: Mapping[str, Any], route_namespace: str) -> bool:
    keys = ("name", "sectionName", "port")
    return all(a.get(k) == b.get(k) for k in keys) and (a.get("namespace") or route_namespace) == (
        b.get("namespace") or route_namespace
    )


def route_verdict(
    route: Mapping[str, Any],
    missing_gateways: Sequence[str] = (),
    not_permitted: str | None = None,
) -> RouteVerdict:
    """The verdict for `route` (as read back after our apply).

    `missing_gateways`: "namespace/name" of parentRef Gateways that do not exist.
    `not_permitted`: why the route (in another namespace than the Model) may not refer to the
    Model's InferencePools (no ReferenceGrant in the Model's namespace allows it).
    """
    meta = route.get("metadata") or {}
    name, route_namespace = meta.get("name", "?"), meta.get("namespace", "")
    what = f"HTTPRoute {route_namespace}/{name}"
    if missing_gateways:
        return RouteVerdict(
            "False",
            Reason.GATEWAY_MISSING,
            f"{what}: parentRef Gateway {', '.join(missing_gateways)} does not exist; "
            "create it or fix parentRefs",
        )
    if not_permitted:
        return RouteVerdict("False", NOT_PERMITTED_REASON, f"{what}: {not_permitted}")
    if not (route.get("spec") or {}).get("parentRefs"):
        return RouteVerdict(
            "False",
            Reason.ROUTE_NOT_ACCEPTED,
            f"{what} has no parentRefs: no Gateway serves it; add one (or set inferencePool.parentRefs)",
        )
    generation = meta.get("generation")
    parents = ((route.get("status") or {}).get("parents")) or []
    wanted = (route.get("spec") or {}).get("parentRefs") or []
    pending: list[str] = []
    for parent_ref in wanted:
        entry = next(
            (p for p in parents if _same_parent(p.get("parentRef") or {}, parent_ref, route_namespace)), None
        )
        label = _parent_name(parent_ref, route_namespace)
        if entry is None:
            pending.append(label)
            continue
        conditions = {c.get("type"): c for c in entry.get("conditions") or []}
        for type_ in ("Accepted", "ResolvedRefs"):
            c = conditions.get(type_)
            if c is None or (generation is not None and c.get("observedGeneration", generation) < generation):
                pending.append(label)
                break
            if c.get("status") != "True":
                reason = str(c.get("reason") or f"Not{type_}")
                detail = c.get("message") or reason
                ours = Reason.ROUTE_NOT_ACCEPTED if type_ == "Accepted" else Reason.REFS_NOT_RESOLVED
                return RouteVerdict("False", ours, f"{what}: {label} set {type_}=False ({reason}): {detail}")
    if pending:
        return RouteVerdict(
            "Unknown",
            Reason.ROUTE_PENDING,
            f"{what}: no gateway has accepted it yet for {', '.join(dict.fromkeys(pending))}",
        )
    return RouteVerdict("True", Reason.ROUTE_ACCEPTED, f"{what} accepted by {len(wanted)} parent(s)")
