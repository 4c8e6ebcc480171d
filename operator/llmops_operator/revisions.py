"""Revisions: the hash of what serves, the names and labels derived from it, and the
RollingUpdate lifecycle as a pure plan. The canary machine builds on the same pieces.

A revision hash covers source (uri, revision, credentials reference), engine (type, resolved
image, args, env), resources, serving, placement (it decides where pods run, so a change rolls
out like any other), cache and the bound prompts' content. It leaves out replicas,
autoscaling and rollout: they change how much and how, not what. The hash is taken over the
normalized wire form (camelCase, defaults and empty values dropped, keys sorted), so key order,
spelling out a default, and fields added later with a default do not change it.

The GPU plan is not hashed: compute it once when a revision first appears and keep it
(`status.plan`), so a node joining the cluster does not change a running revision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from llmops_operator import engines
from llmops_operator.api.common import LABEL_COMPONENT, LABEL_MODEL, LABEL_REVISION, MANAGED_LABELS
from llmops_operator.api.model import ModelSpec
from llmops_operator.api.model_status import RevisionRecord
from llmops_operator.hashing import digest

HASH_LENGTH = 10
DNS_LABEL_MAX = 63
HASHED_FIELDS = ("source", "engine", "resources", "serving", "placement", "cache", "prompts")
"""Top-level spec fields that change what serves."""

# status.revisions[].outcome
PROGRESSING = "Progressing"
STABLE = "Stable"
SUPERSEDED = "Superseded"
ROLLED_BACK = "RolledBack"
FAILED = "Failed"
OUTCOMES = (PROGRESSING, STABLE, SUPERSEDED, ROLLED_BACK, FAILED)


def _normalize(value: Any) -> Any:
    """Drop None, empty dicts and empty lists, recursively (they mean "unset")."""
    if isinstance(value, dict):
        items = ((k, _normalize(v)) for k, v in value.items())
        return {k: v for k, v in items if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value


def _short_hash(payload: Any) -> str:
    return digest(payload, HASH_LENGTH)


def hashed_content(spec: ModelSpec, prompts_hash: str | None = None) -> dict[str, Any]:
    """The normalized content a revision hash is taken over (exposed for debugging)."""
    wire = spec.model_dump(by_alias=True, exclude_defaults=True, mode="json")
    content = _normalize({key: wire.get(key) for key in HASHED_FIELDS})
    content.setdefault("engine", {})["image"] = engines.image(spec)
    content["engine"]["type"] = spec.engine.type
    if prompts_hash:
        content["promptsHash"] = prompts_hash
    return content


def revision_hash(spec: ModelSpec, prompts_hash: str | None = None) -> str:
    """Short (10 hex) stable hash of everything that changes what serves."""
    return _short_hash(hashed_content(spec, prompts_hash))


def cache_key(spec: ModelSpec) -> str:
    """Directory name of one source (uri + revision) inside the cache PVC."""
    return _short_hash({"uri": spec.source.uri, "revision": spec.source.revision})


# --- names and labels ------------------------------------------------------------------------


def fit_name(prefix: str, suffix: str) -> str:
    """`<prefix>-<suffix>` within 63 characters: truncate the prefix, keep the suffix."""
    room = DNS_LABEL_MAX - len(suffix) - 1
    return f"{prefix[:room].rstrip('-')}-{suffix}"


def deployment_name(model: str, revision: str) -> str:
    """`<model>-<revision>`, the model part truncated to keep within 63 characters."""
    return fit_name(model, revision)


def revision_service_name(model: str, revision: str) -> str:
    """Service of one revision (analysis, evaluation): same as its Deployment."""
    return fit_name(model, revision)


def inference_pool_name(model: str, revision: str) -> str:
    """InferencePool of one revision: named like its Service (another kind, no clash)."""
    return fit_name(model, revision)


def endpoint_picker_name(model: str, revision: str) -> str:
    """Deployment and Service of the endpoint picker the operator runs for a revision's pool."""
    return fit_name(model, f"{revision}-epp")


def shared_service_name(model: str) -> str:
    """The Service selecting every ready pod of the Model."""
    if len(model) <= DNS_LABEL_MAX:
        return model
    return fit_name(model, _short_hash(model))


def cache_pvc_name(model: str) -> str:
    return fit_name(model, "cache")


def cache_job_name(model: str, key: str) -> str:
    return fit_name(model, f"load-{key}")


def prompts_configmap_name(model: str, revision: str) -> str:
    return fit_name(model, f"prompts-{revision}")


def component_labels(model: str, component: str) -> dict[str, str]:
    """Labels of an owned object that plays one part (`llmops.dev/component`) for the Model."""
    return {**model_labels(model), LABEL_COMPONENT: component}


def model_labels(model: str) -> dict[str, str]:
    """Labels every owned object carries."""
    return {
        LABEL_MODEL: model[:DNS_LABEL_MAX],
        **MANAGED_LABELS,
        "app.kubernetes.io/name": model[:DNS_LABEL_MAX],
    }


def revision_labels(model: str, revision: str, component: str = "engine") -> dict[str, str]:
    """Labels of one revision's objects and pods."""
    return {**model_labels(model), LABEL_REVISION: revision, LABEL_COMPONENT: component}


def model_selector(model: str) -> dict[str, str]:
    """Selects every serving pod of the Model (the shared Service; scale subresource)."""
    return {LABEL_MODEL: model[:DNS_LABEL_MAX], LABEL_COMPONENT: "engine"}


def revision_selector(model: str, revision: str) -> dict[str, str]:
    """Selects the serving pods of one revision (Deployment selector, revision Service)."""
    return {**model_selector(model), LABEL_REVISION: revision}


def selector_string(selector: Mapping[str, str]) -> str:
    """`status.selector` form: `k=v,k=v`."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


# --- RollingUpdate lifecycle ------------------------------------------------------------------


@dataclass(frozen=True)
class ObservedRevision:
    """What the cluster says about one revision's Deployment."""

    spec_replicas: int
    ready_replicas: int


@dataclass(frozen=True)
class RevisionPlan:
    """What to do with each revision's Deployment in this pass."""

    replicas: dict[str, int]
    """Desired replicas per revision to keep (create or scale)."""
    complete: bool
    """The desired revision has every replica ready and nothing else is left."""
    stable_revision: str | None
    """The stable revision after this pass."""
    superseded: list[str] = field(default_factory=list)
    """Revisions replaced in this pass, whose Deployment and Service go away (and whose history
    records say so)."""


def rolling_update(
    desired: str,
    observed: Mapping[str, ObservedRevision],
    desired_replicas: int,
    stable: str | None,
) -> RevisionPlan:
    """One pass of RollingUpdate: the new revision gets all replicas at once; the stable one
    gives up one replica per ready new replica (ready capacity never drops below the target,
    and a new revision that never gets ready never takes the old one down); any other old
    revision (an abandoned intermediate rollout) is deleted at once. Once the new revision is
    fully ready, it becomes stable and everything else is deleted.
    """
    others = sorted(r for r in observed if r != desired)
    new_ready = observed[desired].ready_replicas if desired in observed else 0
    if new_ready >= desired_replicas:
        return RevisionPlan(
            replicas={desired: desired_replicas},
            complete=True,
            stable_revision=desired,
            superseded=others,
        )
    if stable is None or stable == desired or stable not in observed:
        # nothing old to keep serving (first deploy, back to stable, or stable already gone)
        return RevisionPlan(
            replicas={desired: desired_replicas},
            complete=False,
            stable_revision=stable,
            superseded=others,
        )
    abandoned = [r for r in others if r != stable]
    return RevisionPlan(
        replicas={desired: desired_replicas, stable: max(desired_replicas - new_ready, 0)},
        complete=False,
        stable_revision=stable,
        superseded=abandoned,
    )


# --- history -----------------------------------------------------------------------------------


def record_revision(
    history: Sequence[RevisionRecord],
    revision: str,
    now: datetime,
    outcome: str = PROGRESSING,
    reason: str = "",
) -> list[RevisionRecord]:
    """Add a revision (newest first) or update its outcome; `createdAt` is kept."""
    for record in history:
        if record.revision == revision:
            updated = record.model_copy(update={"outcome": outcome, "reason": reason})
            return [updated if r.revision == revision else r for r in history]
    return [RevisionRecord(revision=revision, created_at=now, outcome=outcome, reason=reason), *history]


def prune_history(
    history: Sequence[RevisionRecord], limit: int, keep: Sequence[str | None] = ()
) -> list[RevisionRecord]:
    """Newest first; keep `limit` old revisions plus the ones in `keep` (stable, canary)."""
    kept_names = {k for k in keep if k}
    ordered = sorted(history, key=lambda r: r.created_at, reverse=True)
    pinned = [r for r in ordered if r.revision in kept_names]
    old = [r for r in ordered if r.revision not in kept_names][:limit]
    return sorted([*pinned, *old], key=lambda r: r.created_at, reverse=True)
