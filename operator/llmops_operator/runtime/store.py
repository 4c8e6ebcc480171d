"""In-memory caches fed by kopf watch events, so a reconcile reads the world without API calls.

A cache is only ever a hint: writes go to the API server, and deterministic object names make
a write from a stale cache idempotent rather than a duplicate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from llmops_operator.api.common import LABEL_MODEL

Key = tuple[str, str]


def plain(obj: Any) -> Any:
    """A deep, mutable copy of a kopf body view (Mappings and sequences)."""
    if isinstance(obj, Mapping):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    return obj


def _rv(obj: Mapping[str, Any]) -> int:
    try:
        return int(obj.get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class KindCache:
    """Objects of one kind, by (namespace, name), with an index by owning Model."""

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.by_model: dict[Key, set[str]] = defaultdict(set)

    def upsert(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        current = self.objects.get(key)
        if current is not None and _rv(current) > _rv(obj):
            return  # an older event arrived after a fresher write response
        meta.pop("managedFields", None)
        self.objects[key] = obj
        model = (meta.get("labels") or {}).get(LABEL_MODEL)
        if model:
            self.by_model[(meta["namespace"], model)].add(meta["name"])

    def remove(self, namespace: str, name: str) -> None:
        obj = self.objects.pop((namespace, name), None)
        if obj is not None:
            model = (obj["metadata"].get("labels") or {}).get(LABEL_MODEL)
            if model:
                self.by_model[(namespace, model)].discard(name)

    def owned_by(self, namespace: str, model: str) -> list[dict[str, Any]]:
        names = self.by_model.get((namespace, model), set())
        return [self.objects[(namespace, n)] for n in sorted(names) if (namespace, n) in self.objects]

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((namespace, name))


class Store:
    """Every cache the Model reconcile reads."""

    def __init__(self) -> None:
        self.models = KindCache()
        self.deployments = KindCache()
        self.services = KindCache()
        self.pods = KindCache()
        self.jobs = KindCache()
        self.pvcs = KindCache()
        self.configmaps = KindCache()
        self.prompt_versions = KindCache()
        self.eval_runs = KindCache()
        self.eval_gates = KindCache()
        self.nodes: dict[str, dict[str, Any]] = {}

    def cache_for(self, kind: str) -> KindCache:
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
        }[kind]

    def on_event(self, kind: str, event_type: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        """Apply one watch event; returns the plain object."""
        obj = plain(body)
        cache = self.cache_for(kind)
        if event_type == "DELETED":
            cache.remove(obj["metadata"]["namespace"], obj["metadata"]["name"])
        else:
            cache.upsert(obj)
        return obj
