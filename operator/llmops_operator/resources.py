"""Dicts for the objects a Model owns: Deployment and Service per revision, the shared Service,
the weight-cache PVC and its loader Job, the prompts ConfigMap. Pure: no API calls.

Every builder returns a complete object (apiVersion, kind, metadata with name, namespace and
labels, spec) ready for server-side apply; pass `owner=owner_reference(model_obj)` to adopt it.

Mount points inside serving pods:
  /cache                  weight cache PVC, read-only; weights of one source at /cache/<cacheKey>
  /mnt/source             the PVC of a pvc:// source, read-only; weights at /mnt/source/<path>
  /etc/llmops/prompts     bound prompts ConfigMap, read-only; one `<name>.json` per prompt
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmops_operator import engines, pod_security, revisions
from llmops_operator.api.common import API_VERSION, OPERATOR_COMMAND
from llmops_operator.api.model import ModelSpec
from llmops_operator.engines.base import CONTAINER_NAME, EngineInputs, EngineOutput
from llmops_operator.gpu.planner import Plan

CACHE_MOUNT = "/cache"
SOURCE_MOUNT = "/mnt/source"
PROMPTS_MOUNT = "/etc/llmops/prompts"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
LOADER_BACKOFF_LIMIT = 6
PROMPTS_COMPONENT = "prompts"
LOADER_COMPONENT = "cache-loader"
TERMINATION_GRACE_SECONDS = 60


@dataclass(frozen=True)
class ModelRef:
    """The identity of the Model the objects belong to."""

    name: str
    namespace: str
    uid: str = ""

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> ModelRef:
        meta = obj["metadata"]
        return cls(meta["name"], meta["namespace"], meta.get("uid", ""))


def owner_reference(model_obj: Mapping[str, Any]) -> dict[str, Any]:
    """Controller ownerReference to the Model (garbage collection deletes children with it)."""
    meta = model_obj["metadata"]
    return {
        "apiVersion": model_obj.get("apiVersion", API_VERSION),
        "kind": model_obj.get("kind", "Model"),
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_identity(meta: Mapping[str, Any], rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding, all with `meta` (name, namespace, labels, owners),
    that pods the operator runs use: exactly `rules`, each of which the operator must hold."""
    name, namespace = meta["name"], meta["namespace"]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": dict(meta),
            "rules": [dict(r) for r in rules],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": dict(meta),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]


def _metadata(
    name: str, model: ModelRef, labels: Mapping[str, str], owner: Mapping[str, Any] | None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": model.namespace, "labels": dict(labels)}
    if owner is not None:
        metadata["ownerReferences"] = [dict(owner)]
    return metadata


# --- weights location ---------------------------------------------------------------------------


def weights_path(spec: ModelSpec) -> str | None:
    """Where serving pods find the weights on disk; None when the engine downloads them (hf://)."""
    if spec.cache.enabled:
        return f"{CACHE_MOUNT}/{revisions.cache_key(spec)}"
    if spec.source.scheme == "pvc":
        _, _, path = spec.source.location.partition("/")
        return f"{SOURCE_MOUNT}/{path}".rstrip("/")
    return None


def _weights_volumes(model: ModelRef, spec: ModelSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if spec.cache.enabled:
        claim = revisions.cache_pvc_name(model.name)
        return (
            [{"name": "weights-cache", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
            [{"name": "weights-cache", "mountPath": CACHE_MOUNT, "readOnly": True}],
        )
    if spec.source.scheme == "pvc":
        claim = spec.source.location.partition("/")[0]
        return (
            [{"name": "weights-source", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
            [{"name": "weights-source", "mountPath": SOURCE_MOUNT, "readOnly": True}],
        )
    return [], []


# --- scheduling ----------------------------------------------------------------------------------


def gpu_affinity(products: Sequence[str]) -> dict[str, Any] | None:
    """Require one of `products`; prefer them in list order (weights 100, 90, ... at least 1)."""
    if not products:
        return None
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": GPU_PRODUCT_LABEL, "operator": "In", "values": list(products)}
                        ]
                    }
                ]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": max(1, 100 - 10 * index),
                    "preference": {
                        "matchExpressions": [
                            {"key": GPU_PRODUCT_LABEL, "operator": "In", "values": [product]}
                        ]
                    },
                }
                for index, product in enumerate(products)
            ],
        }
    }


def tolerations(spec: ModelSpec, gpus: int) -> list[dict[str, Any]]:
    """The default GPU toleration (when GPUs are used) plus the user's, without duplicates."""
    result: list[dict[str, Any]] = [dict(GPU_TOLERATION)] if gpus > 0 else []
    for toleration in spec.placement.tolerations:
        wire = toleration.to_wire()
        if wire not in result:
            result.append(wire)
    return result


def container_resources(spec: ModelSpec, gpus: int) -> dict[str, Any]:
    """Requests from `resources.cpu/memory`; memory and GPUs also as limits."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    if spec.resources.cpu is not None:
        requests["cpu"] = spec.resources.cpu
    if spec.resources.memory is not None:
        requests["memory"] = limits["memory"] = spec.resources.memory
    if gpus > 0:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(gpus)
    result: dict[str, Any] = {}
    if requests:
        result["requests"] = requests
    if limits:
        result["limits"] = limits
    return result


# --- serving -------------------------------------------------------------------------------------


def _pod_spec(
    model: ModelRef, spec: ModelSpec, plan: Plan, engine: EngineOutput, prompts_configmap: str | None
) -> dict[str, Any]:
    """The engine container with weights and prompts mounted, resources and GPU placement."""
    container = dict(engine["container"])
    volumes = list(engine["volumes"])
    extra_volumes, mounts = _weights_volumes(model, spec)
    volumes += extra_volumes
    if prompts_configmap is not None:
        volumes.append({"name": "prompts", "configMap": {"name": prompts_configmap}})
        mounts.append({"name": "prompts", "mountPath": PROMPTS_MOUNT, "readOnly": True})
    container["volumeMounts"] = [*container.get("volumeMounts", []), *mounts]
    container["securityContext"] = {
        **pod_security.engine_container(),
        **(container.get("securityContext") or {}),
    }
    resources = container_resources(spec, plan.gpus)
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": volumes,
        "enableServiceLinks": False,  # service env vars collide with engine settings (VLLM_PORT)
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "automountServiceAccountToken": False,  # engines never call the Kubernetes API
        "securityContext": pod_security.engine_pod(),
    }
    affinity = gpu_affinity(spec.resources.gpu_products) if plan.gpus > 0 else None
    if affinity:
        pod_spec["affinity"] = affinity
    if spec.placement.node_selector:
        pod_spec["nodeSelector"] = dict(spec.placement.node_selector)
    pod_tolerations = tolerations(spec, plan.gpus)
    if pod_tolerations:
        pod_spec["tolerations"] = pod_tolerations
    if spec.placement.priority_class_name:
        pod_spec["priorityClassName"] = spec.placement.priority_class_name
    return pod_spec


def render_revision(
    model: ModelRef,
    spec: ModelSpec,
    revision: str,
    plan: Plan,
    replicas: int,
    *,
    prompts_configmap: str | None = None,
    owner: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Deployment `<model>-<revision>` running the engine's container with GPU scheduling
    (raises `EngineConfigError` with a message)."""
    prompts_mount = PROMPTS_MOUNT if prompts_configmap else None
    engine = engines.build(EngineInputs(spec, model.name, plan, prompts_mount, weights_path(spec)))
    labels = revisions.revision_labels(model.name, revision)
    pod_spec = _pod_spec(model, spec, plan, engine, prompts_configmap)
    engine_info = engines.get_engine(spec.engine.type)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(revisions.deployment_name(model.name, revision), model, labels, owner),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": revisions.revision_selector(model.name, revision)},
            # GPU replicas are too big to surge; a revision never changes its template anyway
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(engine_info.metrics_port),
                        "prometheus.io/path": engine_info.metrics_path,
                    },
                },
                "spec": pod_spec,
            },
        },
    }


def _service_ports(engine_type: str) -> list[dict[str, Any]]:
    info = engines.get_engine(engine_type)
    ports = [{"name": "http", "port": info.http_port, "targetPort": "http", "protocol": "TCP"}]
    if info.metrics_port != info.http_port:
        ports.append(
            {"name": "metrics", "port": info.metrics_port, "targetPort": "metrics", "protocol": "TCP"}
        )
    return ports


def shared_service(
    model: ModelRef, spec: ModelSpec, owner: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Service `<model>` over every ready serving pod of every revision: with replica-ratio
    traffic splitting, the replica counts are the canary weight."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(
            revisions.shared_service_name(model.name),
            model,
            revisions.component_labels(model.name, "service"),
            owner,
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": revisions.model_selector(model.name),
            "ports": _service_ports(spec.engine.type),
        },
    }


def revision_service(
    model: ModelRef, spec: ModelSpec, revision: str, owner: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Headless Service `<model>-<revision>` over one revision's pods (evaluation, Gateway API)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(
            revisions.revision_service_name(model.name, revision),
            model,
            revisions.revision_labels(model.name, revision, component="service"),
            owner,
        ),
        "spec": {
            "type": "ClusterIP",
            # headless: analysis and evals reach the pods by DNS, and the API server assigns
            # cluster IPs one at a time, the slowest write when hundreds of Models roll out
            "clusterIP": "None",
            "selector": revisions.revision_selector(model.name, revision),
            "ports": _service_ports(spec.engine.type),
        },
    }


def endpoint(model: ModelRef, spec: ModelSpec) -> str:
    """In-cluster base URL: `/v1` for OpenAI-compatible engines, `/v2` for Triton."""
    info = engines.get_engine(spec.engine.type)
    suffix = "/v1" if info.openai_port else "/v2"
    return (
        f"http://{revisions.shared_service_name(model.name)}.{model.namespace}.svc:{info.http_port}{suffix}"
    )


def prompts_configmap(
    model: ModelRef, revision: str, rendered: Mapping[str, str], owner: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """ConfigMap of one revision's bound prompts (`<name>.json` -> PromptVersion spec JSON)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(
            revisions.prompts_configmap_name(model.name, revision),
            model,
            revisions.revision_labels(model.name, revision, component=PROMPTS_COMPONENT),
            owner,
        ),
        "immutable": True,
        "data": dict(rendered),
    }


# --- weight cache ----------------------------------------------------------------------------------


def cache_pvc(model: ModelRef, spec: ModelSpec, owner: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The weight-cache PVC; one directory per source inside, so two revisions can share it."""
    pvc_spec: dict[str, Any] = {
        "accessModes": [spec.cache.access_mode],
        "resources": {"requests": {"storage": spec.cache.size}},
    }
    if spec.cache.storage_class_name:
        pvc_spec["storageClassName"] = spec.cache.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(
            revisions.cache_pvc_name(model.name),
            model,
            revisions.component_labels(model.name, "cache"),
            owner,
        ),
        "spec": pvc_spec,
    }


def cache_loader_job(
    model: ModelRef, spec: ModelSpec, operator_image: str, owner: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Job running `llmops-operator load-weights` into `/cache/<cacheKey>` (resumable: a retry
    continues the partial download in the same directory)."""
    key = revisions.cache_key(spec)
    args = ["load-weights", "--uri", spec.source.uri, "--dest", f"{CACHE_MOUNT}/{key}"]
    if spec.source.revision:
        args += ["--revision", spec.source.revision]
    env: list[dict[str, Any]] = [{"name": "HF_HOME", "value": f"{CACHE_MOUNT}/.hf-home"}]
    ref = spec.source.credentials_secret_ref
    if ref is not None:
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
    labels = revisions.component_labels(model.name, LOADER_COMPONENT)
    volumes, mounts = _loader_volumes(model, spec)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(revisions.cache_job_name(model.name, key), model, labels, owner),
        "spec": {
            "backoffLimit": LOADER_BACKOFF_LIMIT,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,  # the loader needs no API access
                    "enableServiceLinks": False,
                    # restricted; fsGroup makes the cache PVC writable by the non-root loader
                    "securityContext": pod_security.restricted_pod(),
                    "containers": [
                        {
                            "name": "loader",
                            "image": operator_image,
                            "command": [OPERATOR_COMMAND],
                            "args": args,
                            "env": env,
                            "volumeMounts": [*mounts, {"name": "tmp", "mountPath": "/tmp"}],
                            "securityContext": pod_security.restricted_container(),
                        }
                    ],
                    "volumes": [*volumes, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def _loader_volumes(model: ModelRef, spec: ModelSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The loader's volumes and mounts: the cache PVC, and the source PVC read-only for pvc:// sources."""
    volumes: list[dict[str, Any]] = [
        {
            "name": "weights-cache",
            "persistentVolumeClaim": {"claimName": revisions.cache_pvc_name(model.name)},
        }
    ]
    mounts: list[dict[str, Any]] = [{"name": "weights-cache", "mountPath": CACHE_MOUNT}]
    if spec.source.scheme == "pvc":
        volumes.append(
            {
                "name": "weights-source",
                "persistentVolumeClaim": {
                    "claimName": spec.source.location.partition("/")[0],
                    "readOnly": True,
                },
            }
        )
        mounts.append({"name": "weights-source", "mountPath": SOURCE_MOUNT, "readOnly": True})
    return volumes, mounts


def job_state(job: Mapping[str, Any] | None) -> str:
    """Missing, Running, Succeeded or Failed."""
    if job is None:
        return "Missing"
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "Succeeded"
        if condition.get("status") == "True" and condition.get("type") == "Failed":
            return "Failed"
    if status.get("succeeded"):
        return "Succeeded"
    return "Running"


__all__ = [
    "CONTAINER_NAME",
    "ModelRef",
    "cache_loader_job",
    "cache_pvc",
    "endpoint",
    "job_state",
    "owner_reference",
    "prompts_configmap",
    "render_revision",
    "revision_service",
    "shared_service",
    "weights_path",
]
