"""Writes HTTPRoute status the way a Gateway controller would.

Stands in for the inference gateway's controller (Envoy Gateway, kgateway, Istio, GKE, NGINX
Gateway Fabric), which cannot run here: no data plane, no Envoy. For every HTTPRoute of a
namespace it writes one `status.parents[]` entry per parentRef with `Accepted` and
`ResolvedRefs` for the route's current generation, so the operator reads back what a real
gateway would say. `refuse` makes it answer like a gateway without the Inference Extension:
`ResolvedRefs=False, reason InvalidKind` for routes with InferencePool backends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s

from llmops_sim.poller import Poller

CONTROLLER = "llmops.dev/sim-gateway"
GROUP, VERSION, PLURAL = "gateway.networking.k8s.io", "v1", "httproutes"


def _has_pool_backend(route: dict[str, Any]) -> bool:
    return any(
        ref.get("kind") == "InferencePool"
        for rule in (route.get("spec") or {}).get("rules") or []
        for ref in rule.get("backendRefs") or []
    )


def route_status(
    route: dict[str, Any], gateways: set[str], refuse_pools: bool, now: datetime
) -> dict[str, Any]:
    """The status a gateway managing `gateways` (`namespace/name`) writes for `route`;
    parentRefs to other Gateways get no entry, as no controller answers for them (pure)."""
    generation = route["metadata"].get("generation", 1)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    refused = refuse_pools and _has_pool_backend(route)

    def condition(type_: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
        return {
            "type": type_,
            "status": "True" if ok else "False",
            "reason": reason,
            "message": message,
            "observedGeneration": generation,
            "lastTransitionTime": stamp,
        }

    parents = []
    namespace = route["metadata"].get("namespace", "")
    for ref in (route.get("spec") or {}).get("parentRefs") or []:
        if f"{ref.get('namespace') or namespace}/{ref.get('name')}" not in gateways:
            continue
        resolved = condition(
            "ResolvedRefs",
            not refused,
            "InvalidKind" if refused else "ResolvedRefs",
            "backendRef kind InferencePool is not supported by this gateway" if refused else "resolved",
        )
        parents.append(
            {
                "parentRef": {
                    k: v
                    for k, v in ref.items()
                    if k in ("group", "kind", "namespace", "name", "sectionName", "port")
                },
                "controllerName": CONTROLLER,
                "conditions": [condition("Accepted", True, "Accepted", "accepted"), resolved],
            }
        )
    return {"parents": parents}


class SimGateway(Poller):
    """Keeps the status of every HTTPRoute of `namespace` as a gateway would write it."""

    name = "sim-gateway"

    def __init__(
        self, api_client: k8s.ApiClient, namespace: str, gateways: set[str], interval: float = 0.5
    ) -> None:
        super().__init__(interval)
        self.api = k8s.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.gateways = gateways
        self.refuse_pools = False
        self._written: dict[str, tuple[int, bool]] = {}

    def poll(self) -> int:
        routes = self.api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)["items"]
        written = 0
        for route in routes:
            name = route["metadata"]["name"]
            key = (route["metadata"].get("generation", 1), self.refuse_pools)
            if self._written.get(name) == key:
                continue
            body = {"status": route_status(route, self.gateways, self.refuse_pools, datetime.now(UTC))}
            self.api.patch_namespaced_custom_object_status(GROUP, VERSION, self.namespace, PLURAL, name, body)
            self._written[name] = key
            written += 1
        return written
