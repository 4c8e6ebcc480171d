"""InferencePool routing (Gateway API Inference Extension): one pool per revision, its endpoint
picker, and the HTTPRoute backendRefs weighted across the stable and canary pools.

Why a pool per revision: the gateway's endpoint picker balances *within* a pool (queue depth,
KV cache, prefix affinity), and the HTTPRoute's weights split traffic *between* pools, which is
exactly a canary. Each pool selects the engine pods of one revision (`llmops.dev/revision`,
component `engine`) on the engine's port; nothing else matches that selector.

The picker is either the user's Service (`endpointPicker.service`) or one the operator deploys
per pool: the reference EPP image with `--pool-name/--pool-namespace` and the engine's own
queue and KV-cache metric names (vLLM, TensorRT-LLM and Triton name them differently; the EPP
defaults are vLLM's). All builders here are pure; the caller applies what they return.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from llmops_operator import engines, pod_security, revisions
from llmops_operator.api.common import LABEL_MODEL
from llmops_operator.api.rollout import EndpointPickerSpec, InferencePoolRouting
from llmops_operator.resources import ModelRef, pod_identity
from llmops_operator.rollout.traffic.gateway import (
    HTTPROUTE_API_VERSION,
    RoutePatch,
    check_weight,
    replace_model_refs,
)

POOL_GROUP = "inference.networking.k8s.io"
POOL_API_VERSION = f"{POOL_GROUP}/v1"
POOL_KIND = "InferencePool"
PICKER_COMPONENT = "endpoint-picker"
LABEL_POOL = "llmops.dev/inference-pool"
PICKER_HEALTH_PORT = 9003
PICKER_METRICS_PORT = 9090

# engine -> the picker's metric flags: the engine's waiting-requests and KV-cache gauges (the
# same series the autoscaler reads, see metrics_source/builtins.py), "" turning a signal off.
PICKER_METRIC_FLAGS: dict[str, dict[str, str]] = {
    "vllm": {
        "--total-queued-requests-metric": "vllm:num_requests_waiting",
        "--kv-cache-usage-percentage-metric": "vllm:kv_cache_usage_perc",
    },
    "tensorrt-llm": {
        "--total-queued-requests-metric": "trtllm_num_requests_waiting",
        "--kv-cache-usage-percentage-metric": "trtllm_kv_cache_utilization",
        "--lora-info-metric": "",
    },
    "onnxruntime": {
        "--total-queued-requests-metric": "nv_inference_pending_request_count",
        "--kv-cache-usage-percentage-metric": "",
        "--lora-info-metric": "",
    },
}

PICKER_ROLE_RULES: list[dict[str, Any]] = [
    {"apiGroups": [POOL_GROUP], "resources": ["inferencepools"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
]
"""What the reference picker reads in its namespace (the operator holds these permissions too)."""


def _meta(ref: ModelRef, name: str, pool: str, component: str, owner: Mapping[str, Any]) -> dict[str, Any]:
    labels = {**revisions.component_labels(ref.name, component), LABEL_POOL: pool}
    return {"name": name, "namespace": ref.namespace, "labels": labels, "ownerReferences": [dict(owner)]}


def picker_service_name(ref: ModelRef, revision: str, picker: EndpointPickerSpec) -> str:
    """The Service the revision's pool names: the user's, or the operator's per pool."""
    return picker.service or revisions.endpoint_picker_name(ref.name, revision)


def inference_pool(
    ref: ModelRef, engine_type: str, revision: str, picker: EndpointPickerSpec, owner: Mapping[str, Any]
) -> dict[str, Any]:
    """The InferencePool of one revision: its engine pods on the engine's port."""
    pool = revisions.inference_pool_name(ref.name, revision)
    return {
        "apiVersion": POOL_API_VERSION,
        "kind": POOL_KIND,
        "metadata": _meta(ref, pool, pool, "inference-pool", owner),
        "spec": {
            "selector": {"matchLabels": revisions.revision_selector(ref.name, revision)},
            "targetPorts": [{"number": engines.get_engine(engine_type).http_port}],
            "endpointPickerRef": {
                "group": "",
                "kind": "Service",
                "name": picker_service_name(ref, revision, picker),
                "port": {"number": picker.port},
                "failureMode": picker.failure_mode,
            },
        },
    }


def picker_args(engine_type: str, pool: str, namespace: str, port: int, extra: Iterable[str]) -> list[str]:
    """The picker's flags: pool, ports, the engine's metric names, then the user's flags (a
    flag the user gives replaces ours, whether written `--f value` or `--f=value`)."""
    info = engines.get_engine(engine_type)
    ours: dict[str, str] = {
        "--pool-name": pool,
        "--pool-namespace": namespace,
        "--pool-group": POOL_GROUP,
        "--grpc-port": str(port),
        "--grpc-health-port": str(PICKER_HEALTH_PORT),
        "--metrics-port": str(PICKER_METRICS_PORT),
        "--model-server-metrics-port": str(info.metrics_port),
        "--model-server-metrics-path": info.metrics_path,
        **PICKER_METRIC_FLAGS.get(engine_type, {}),
    }
    user = list(extra)
    given = {token.split("=", 1)[0] for token in user if token.startswith("--")}
    args: list[str] = []
    for flag, value in ours.items():
        if flag not in given:
            args += [flag, value]
    return args + user


def endpoint_picker(
    ref: ModelRef,
    engine_type: str,
    revision: str,
    picker: EndpointPickerSpec,
    owner: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Deployment + Service of the picker for one revision's pool ([] with the user's picker)."""
    if picker.service:
        return []
    name = revisions.endpoint_picker_name(ref.name, revision)
    pool = revisions.inference_pool_name(ref.name, revision)
    selector = {LABEL_MODEL: revisions.model_labels(ref.name)[LABEL_MODEL], LABEL_POOL: pool}
    args = picker_args(engine_type, pool, ref.namespace, picker.port, picker.args)
    pod_labels = {**revisions.component_labels(ref.name, PICKER_COMPONENT), LABEL_POOL: pool}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(ref, name, pool, PICKER_COMPONENT, owner),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "serviceAccountName": picker_account_name(ref.name),
                    "securityContext": pod_security.restricted_pod(),
                    "containers": [_picker_container(picker, args)],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(ref, name, pool, PICKER_COMPONENT, owner),
        "spec": {
            "selector": selector,
            "ports": [
                {"name": "grpc", "port": picker.port, "targetPort": picker.port, "appProtocol": "http2"},
                {"name": "metrics", "port": PICKER_METRICS_PORT, "targetPort": PICKER_METRICS_PORT},
            ],
        },
    }
    return [deployment, service]


def _picker_container(picker: EndpointPickerSpec, args: list[str]) -> dict[str, Any]:
    """The picker's container: gRPC for the gateway, gRPC health, metrics; restricted."""
    grpc_probe = {"grpc": {"port": PICKER_HEALTH_PORT, "service": "inference-extension"}, "periodSeconds": 5}
    return {
        "name": "epp",
        "image": picker.image,
        "args": args,
        "ports": [
            {"name": "grpc", "containerPort": picker.port},
            {"name": "grpc-health", "containerPort": PICKER_HEALTH_PORT},
            {"name": "metrics", "containerPort": PICKER_METRICS_PORT},
        ],
        "resources": picker.resources.to_wire(),
        "securityContext": pod_security.restricted_container(),
        "readinessProbe": grpc_probe,
        "livenessProbe": {**grpc_probe, "initialDelaySeconds": 5, "periodSeconds": 10},
    }


def picker_account_name(model: str) -> str:
    """ServiceAccount (and Role, RoleBinding) the operator's pickers of one Model run as."""
    return revisions.fit_name(model, "endpoint-picker")


def picker_identity(ref: ModelRef, owner: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The pickers' least-privilege identity, one per Model and owned by it (garbage-collected
    with it): read InferencePools and pods of the namespace, nothing else."""
    labels = revisions.component_labels(ref.name, PICKER_COMPONENT)
    meta = {
        "name": picker_account_name(ref.name),
        "namespace": ref.namespace,
        "labels": labels,
        "ownerReferences": [dict(owner)],
    }
    return pod_identity(meta, PICKER_ROLE_RULES)


# ---------------------------------------------------------------------------------------------
# the HTTPRoute
# ---------------------------------------------------------------------------------------------


def pool_backend_ref(model_namespace: str, route_namespace: str, pool: str, weight: int) -> dict[str, Any]:
    """A backendRef to a pool; cross-namespace refs name the Model's namespace (and need a
    ReferenceGrant there)."""
    ref: dict[str, Any] = {"group": POOL_GROUP, "kind": POOL_KIND, "name": pool, "weight": weight}
    if route_namespace != model_namespace:
        ref["namespace"] = model_namespace
    return ref


def wanted_pool_refs(
    model_namespace: str,
    route_namespace: str,
    model: str,
    stable_revision: str,
    canary_revision: str | None,
    weight: int,
) -> list[dict[str, Any]]:
    """The stable pool at 100 - weight and the canary pool at weight; a canary at weight 0 is
    not in the route at all (added only once it takes traffic, dropped at once on abort)."""
    check_weight(weight)
    stable = revisions.inference_pool_name(model, stable_revision)
    if not canary_revision or canary_revision == stable_revision or weight == 0:
        return [pool_backend_ref(model_namespace, route_namespace, stable, 100)]
    canary = revisions.inference_pool_name(model, canary_revision)
    return [
        pool_backend_ref(model_namespace, route_namespace, stable, 100 - weight),
        pool_backend_ref(model_namespace, route_namespace, canary, weight),
    ]


def _is_model_ref(
    ref: Mapping[str, Any], route_namespace: str, model_namespace: str, model: str, names: set[str]
) -> bool:
    if (ref.get("namespace") or route_namespace) != model_namespace:
        return False
    kind, group = ref.get("kind", "Service"), ref.get("group", "")
    if kind == "Service" and group in ("", "core"):
        return ref.get("name") in names | {revisions.shared_service_name(model)}
    return kind == POOL_KIND and group == POOL_GROUP and ref.get("name") in names


def pool_route(
    route: Mapping[str, Any] | None,
    routing: InferencePoolRouting,
    model_namespace: str,
    model: str,
    stable_revision: str,
    canary_revision: str | None,
    weight: int,
    known_revisions: Iterable[str] = (),
    owner: Mapping[str, Any] | None = None,
) -> RoutePatch | None:
    """Apply body for the HTTPRoute: an existing route keeps everything but the Model's
    backendRefs (its Service, revision Services or pools), which become the weighted pools; a
    missing route in the Model's namespace is created with `parentRefs` (None: missing, and no
    parentRefs or another namespace).
    With `parentRefs` set, the operator manages the route's parentRefs too."""
    route_namespace = routing.namespace or model_namespace
    wanted = wanted_pool_refs(
        model_namespace, route_namespace, model, stable_revision, canary_revision, weight
    )
    if route is None:
        if not routing.parent_refs or route_namespace != model_namespace:
            return None  # never created in another namespace: that namespace's owner makes it
        metadata: dict[str, Any] = {
            "name": routing.http_route,
            "namespace": route_namespace,
            "labels": revisions.model_labels(model),
        }
        if owner is not None:
            metadata["ownerReferences"] = [dict(owner)]
        body = {
            "apiVersion": HTTPROUTE_API_VERSION,
            "kind": "HTTPRoute",
            "metadata": metadata,
            "spec": {
                "parentRefs": [p.to_wire() for p in routing.parent_refs],
                "rules": [{"backendRefs": wanted}],
            },
        }
        return RoutePatch(body=body, rules_changed=1)
    names = {revisions.inference_pool_name(model, r) for r in {stable_revision, *known_revisions}}
    if canary_revision:
        names.add(revisions.inference_pool_name(model, canary_revision))
    patch = replace_model_refs(
        dict(route), lambda ref: _is_model_ref(ref, route_namespace, model_namespace, model, names), wanted
    )
    if routing.parent_refs:
        # server-side apply drops fields our manager set before and omits now: a route the
        # operator created keeps its parents only if every apply carries them
        patch.body["spec"]["parentRefs"] = [p.to_wire() for p in routing.parent_refs]
    owners = (route.get("metadata") or {}).get("ownerReferences") or []
    if owner is not None and any(o.get("uid") == owner.get("uid") for o in owners):
        # the route the operator created: it stays owned (and labelled) by the Model
        patch.body["metadata"]["labels"] = revisions.model_labels(model)
        patch.body["metadata"]["ownerReferences"] = [dict(owner)]
    return patch


def pool_weights(route: Mapping[str, Any], model: str) -> dict[str, int]:
    """InferencePool name -> weight of the Model's pools in a route (for status and tests)."""
    out: dict[str, int] = {}
    for rule in (route.get("spec") or {}).get("rules") or []:
        for ref in rule.get("backendRefs") or []:
            if ref.get("kind") == POOL_KIND and str(ref.get("name", "")).startswith(f"{model}-"):
                out[ref["name"]] = int(ref.get("weight", 1))
    return out
