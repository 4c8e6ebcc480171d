"""Gateway API traffic split: the weights of the Model's backendRefs in an HTTPRoute.

The user owns the HTTPRoute (parents, hostnames, matches, filters). Every rule that points at
the Model's Service `<model>` or at one of its revision Services `<model>-<revision>` gets its
Model backendRefs replaced by the stable and canary revision Services (on the engine's HTTP port) with the
current weights; other backendRefs and everything else stay as they are.

`spec.rules` and `backendRefs` are atomic lists in the Gateway API CRDs, so a server-side apply
body must carry each rule whole: the body is built from the route as read, and the operator
applies it with field manager `llmops-operator` (force, since the user's manager owns the
rules too). Argo CD must ignore the weights: see docs/rollouts.md.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from llmops_operator.revisions import revision_service_name as revision_service

GATEWAY_GROUP = "gateway.networking.k8s.io"
HTTPROUTE_API_VERSION = f"{GATEWAY_GROUP}/v1"


@dataclass(frozen=True)
class RoutePatch:
    """The apply body, and how many rules it changed (0: the route does not point at the Model)."""

    body: dict[str, Any]
    rules_changed: int


def _is_model_ref(ref: dict[str, Any], names: set[str]) -> bool:
    kind = ref.get("kind", "Service")
    group = ref.get("group", "")
    return kind == "Service" and group in ("", "core") and ref.get("name") in names


def replace_model_refs(
    route: dict[str, Any],
    is_model_ref: Callable[[dict[str, Any]], bool],
    wanted: list[dict[str, Any]],
) -> RoutePatch:
    """Apply body for `route` in which every rule holding a Model backendRef (as `is_model_ref`
    says) gets those refs replaced by `wanted`; other refs, rules and fields stay as they are."""
    rules = copy.deepcopy(route.get("spec", {}).get("rules", []))
    changed = 0
    for rule in rules:
        refs = rule.get("backendRefs", [])
        if not any(is_model_ref(r) for r in refs):
            continue
        others = [r for r in refs if not is_model_ref(r)]
        rule["backendRefs"] = others + copy.deepcopy(wanted)
        changed += 1
    meta = route.get("metadata", {})
    body = {
        "apiVersion": route.get("apiVersion", HTTPROUTE_API_VERSION),
        "kind": "HTTPRoute",
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
        "spec": {"rules": rules},
    }
    return RoutePatch(body=body, rules_changed=changed)


def check_weight(weight: int) -> None:
    """A canary weight is a percentage."""
    if not 0 <= weight <= 100:
        raise ValueError(f"weight must be within 0..100, got {weight}")


def httproute_weights(
    route: dict[str, Any],
    model: str,
    stable_revision: str,
    canary_revision: str | None,
    weight: int,
    known_revisions: Iterable[str] = (),
    *,
    port: int,
) -> RoutePatch:
    """Server-side apply body for `route` with the Model's backendRefs set to the weights.

    `known_revisions` are older revisions of the Model whose Services may still be referenced
    (they are replaced, so a removed revision never stays in the route).
    """
    check_weight(weight)
    names = {model, revision_service(model, stable_revision)}
    names |= {revision_service(model, r) for r in known_revisions}
    if canary_revision:
        names.add(revision_service(model, canary_revision))
    wanted = [{"name": revision_service(model, stable_revision), "port": port, "weight": 100 - weight}]
    if canary_revision and canary_revision != stable_revision:
        wanted.append({"name": revision_service(model, canary_revision), "port": port, "weight": weight})
    else:
        wanted[0]["weight"] = 100
    return replace_model_refs(route, lambda ref: _is_model_ref(ref, names), wanted)


def route_weights(route: dict[str, Any], model: str) -> dict[str, int]:
    """Service name -> weight of the Model's revision backendRefs (for status and tests)."""
    out: dict[str, int] = {}
    for rule in route.get("spec", {}).get("rules", []):
        for ref in rule.get("backendRefs", []):
            name = ref.get("name", "")
            if name.startswith(f"{model}-"):
                out[name] = ref.get("weight", 1)
    return out
