"""In-memory caches fed by kopf watch events, so a reconcile reads the world without API calls.

A cache is only ever a hint: writes go to the API server, and deterministic object names make
a write from a stale cache idempotent rather than a duplicate.

Thread safety: watch events arrive on kopf's executor threads while reconciles read from worker
threads. Every cache guards its dicts with one lock, and readers get snapshots (`objects`,
`items()`), so iterating never sees a dict change size under it.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from llmops_operator.api.common import LABEL_MODEL
from llmops_operator.gpu.inventory import ParsedNode, inventory
from llmops_operator.gpu.planner import GpuNodeInfo
from llmops_operator.kube.watch import resource_version, vanished

Key = tuple[str, str]


def plain(obj: Any) -> Any:
    """A deep, mutable copy of a kopf body view (Mappings and sequences)."""
    if isinstance(obj, Mapping):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    return obj


def pod_as_read(pod: dict[str, Any]) -> dict[str, Any]:
    """What the plans read of a Pod: metadata, status and the node it is bound to. The rest of
    its spec (containers, volumes, probes) is about 60% of a cached Pod's memory and never read."""
    node = (pod.get("spec") or {}).get("nodeName")
    return {**pod, "spec": {"nodeName": node} if node else {}}


def deployment_as_read(deployment: dict[str, Any]) -> dict[str, Any]:
    """What the plans read of a Deployment: metadata, status, the replica count and each
    container's resources (the GPUs a revision was rendered with). Drift is told by generation,
    not by comparing templates, so the rest of the template is not kept."""
    spec = deployment.get("spec") or {}
    containers = (((spec.get("template") or {}).get("spec") or {}).get("containers")) or []
    kept: dict[str, Any] = {"replicas": spec.get("replicas")} if "replicas" in spec else {}
    if containers:
        kept["template"] = {
            "spec": {
                "containers": [
                    {"name": c.get("name"), "resources": c.get("resources") or {}} for c in containers
                ]
            }
        }
    return {**deployment, "spec": kept}


def service_as_read(service: dict[str, Any]) -> dict[str, Any]:
    """What the plans read of a Service: its name and ownership (which Services a Model has)."""
    return {k: v for k, v in service.items() if k not in ("spec", "status")}


class KindCache:
    """Objects of one kind, by (namespace, name), with an index by owning Model. Any thread.

    `as_read` keeps only what the plans read of each object (watch events and write answers
    alike): at 1000 Models the full Pods and Deployments alone came to about 32 MiB."""

    def __init__(self, as_read: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self._as_read = as_read
        self._lock = threading.Lock()
        self._objects: dict[Key, dict[str, Any]] = {}
        self._by_model: dict[Key, set[str]] = defaultdict(set)

    @property
    def objects(self) -> dict[Key, dict[str, Any]]:
        """A snapshot of every object (safe to iterate while events keep arriving)."""
        with self._lock:
            return dict(self._objects)

    def in_namespace(self, namespace: str) -> list[dict[str, Any]]:
        """The objects of one namespace."""
        with self._lock:
            return [obj for (ns, _), obj in self._objects.items() if ns == namespace]

    def upsert(self, obj: dict[str, Any]) -> None:
        if self._as_read is not None:
            obj = self._as_read(obj)
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        meta.pop("managedFields", None)
        model = (meta.get("labels") or {}).get(LABEL_MODEL)
        with self._lock:
            current = self._objects.get(key)
            if current is not None and resource_version(current) > resource_version(obj):
                return  # an older event arrived after a fresher write response
            self._objects[key] = obj
            if model:
                self._by_model[(meta["namespace"], model)].add(meta["name"])

    def remove(self, namespace: str, name: str) -> None:
        with self._lock:
            obj = self._objects.pop((namespace, name), None)
            if obj is not None:
                model = (obj["metadata"].get("labels") or {}).get(LABEL_MODEL)
                names = self._by_model.get((namespace, model)) if model else None
                if names is not None:
                    names.discard(name)
                    if not names:  # a deleted Model's index goes with its last object
                        del self._by_model[(namespace, model)]

    def drop_missing(self, namespace: str, listed: set[str], list_version: int) -> list[dict[str, Any]]:
        """After a LIST of `namespace` at `list_version`: drop what the list no longer has (deleted
        during a watch gap, whose DELETED event never came). Entries newer than the list stay."""
        cached = {name: obj for (ns, name), obj in self.objects.items() if ns == namespace}
        gone = vanished(cached, listed, list_version)
        for obj in gone:
            self.remove(namespace, obj["metadata"]["name"])
        return gone

    def namespaces(self) -> set[str]:
        return {ns for ns, _ in self.objects}

    def owned_by(self, namespace: str, model: str) -> list[dict[str, Any]]:
        with self._lock:
            names = sorted(self._by_model.get((namespace, model), ()))
            return [self._objects[(namespace, n)] for n in names if (namespace, n) in self._objects]

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._objects.get((namespace, name))


class NodeCache:
    """Node name -> the node parsed once per resourceVersion, and the GPU inventory the planner
    reads, rebuilt only after a node changed (not on every pass). Any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: dict[str, ParsedNode] = {}
        self._inventory: tuple[GpuNodeInfo, ...] | None = None
        self._stale = False

    def __setitem__(self, name: str, node: ParsedNode) -> None:
        with self._lock:
            self._nodes[name] = node
            self._stale = True

    def get(self, name: str) -> ParsedNode | None:
        with self._lock:
            return self._nodes.get(name)

    def pop(self, name: str, default: Any = None) -> Any:
        with self._lock:
            self._stale = True
            return self._nodes.pop(name, default)

    def items(self) -> list[tuple[str, ParsedNode]]:
        """A snapshot."""
        with self._lock:
            return list(self._nodes.items())

    def inventory(self) -> tuple[GpuNodeInfo, ...] | None:
        """The GPU nodes (`gpu.inventory.inventory` of every node), the same tuple until a node
        changes."""
        with self._lock:
            if self._stale:
                self._inventory = inventory(self._nodes.values())
                self._stale = False
            return self._inventory

    def __iter__(self) -> Iterator[str]:
        return iter([name for name, _ in self.items()])

    def __len__(self) -> int:
        with self._lock:
            return len(self._nodes)


class Store:
    """Every cache the Model reconcile reads."""

    def __init__(self) -> None:
        self.models = KindCache()
        self.deployments = KindCache(deployment_as_read)
        self.services = KindCache(service_as_read)
        self.pods = KindCache(pod_as_read)
        self.jobs = KindCache()
        self.pvcs = KindCache()
        self.configmaps = KindCache()
        self.prompt_versions = KindCache()
        self.eval_runs = KindCache()
        self.eval_gates = KindCache()
        self.nodes = NodeCache()

    def cache_for(self, kind: str) -> KindCache:
        return self.caches()[kind]

    def caches(self) -> dict[str, KindCache]:
        """Every namespaced cache by kind."""
        return {
            "Model": self.models,
            "Deployment": self.deployments,
            "Service": self.services,
            "Pod": self.pods,
            "Job": self.jobs,
            "PersistentVolumeClaim": self.pvcs,
            "ConfigMap": self.configmaps,
            "PromptVersion": self.prompt_versions,
            "EvalRun": self.eval_runs,
            "EvalGate": self.eval_gates,
        }

    def on_event(self, kind: str, event_type: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        """Apply one watch event; returns the plain object.

        A plain dict (the event's object as kopf decoded it, fresh per event and never changed
        afterwards) is kept as it is, with copies of only the two levels the cache edits; any
        other mapping (a kopf body view) is copied whole."""
        if isinstance(body, dict):
            obj = {**body, "metadata": dict(body.get("metadata") or {})}
        else:
            obj = plain(body)
        cache = self.cache_for(kind)
        if event_type == "DELETED":
            cache.remove(obj["metadata"]["namespace"], obj["metadata"]["name"])
        else:
            cache.upsert(obj)
        return obj
