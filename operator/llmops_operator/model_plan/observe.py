"""Pure readers of observed objects: which revisions run and why their pods are not ready."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llmops_operator import revisions
from llmops_operator.api.common import LABEL_REVISION


def revision_of(obj: Mapping[str, Any]) -> str | None:
    """The revision label of an owned object."""
    return (obj.get("metadata", {}).get("labels") or {}).get(LABEL_REVISION)


def observed_revisions(deployments: Sequence[Mapping[str, Any]]) -> dict[str, revisions.ObservedRevision]:
    """Revision -> replicas as the Deployments report them."""
    out: dict[str, revisions.ObservedRevision] = {}
    for deployment in deployments:
        revision = revision_of(deployment)
        if not revision:
            continue
        status = deployment.get("status") or {}
        out[revision] = revisions.ObservedRevision(
            spec_replicas=int((deployment.get("spec") or {}).get("replicas") or 0),
            ready_replicas=int(status.get("readyReplicas") or 0),
        )
    return out


def serving_revision(deployments: Sequence[Mapping[str, Any]], exclude: str) -> str | None:
    """The revision other than `exclude` whose Deployment serves the most (ready replicas, then
    the oldest): the stable one, as the owned objects show it."""
    candidates = [
        (
            -int((d.get("status") or {}).get("readyReplicas") or 0),
            d["metadata"].get("creationTimestamp") or "",
            rev,
        )
        for d in deployments
        if (rev := revision_of(d)) and rev != exclude and not d["metadata"].get("deletionTimestamp")
    ]
    return min(candidates)[2] if candidates else None


def pod_problems(pods: Sequence[Mapping[str, Any]], revision: str) -> tuple[list[str], list[str]]:
    """(unschedulable messages, not-ready reasons) of one revision's pods, for conditions."""
    unschedulable: list[str] = []
    not_ready: list[str] = []
    for pod in pods:
        if revision_of(pod) != revision or pod.get("metadata", {}).get("deletionTimestamp"):
            continue
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        # a bound pod is scheduled, whatever its PodScheduled says: a binding that failed and was
        # retried (an API server restart) can leave a stale False next to a Running pod
        bound = bool((pod.get("spec") or {}).get("nodeName"))
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False" and not bound:
                unschedulable.append(f"pod {name}: {condition.get('message') or condition.get('reason')}")
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting")
            if waiting and waiting.get("reason") not in (None, "ContainerCreating"):
                not_ready.append(
                    f"pod {name}: {waiting.get('reason')}: {waiting.get('message', '')}".rstrip(": ")
                )
    return unschedulable, not_ready


def deadline_exceeded(deployments: Sequence[Mapping[str, Any]], revision: str) -> bool:
    """Whether the revision's Deployment reports ProgressDeadlineExceeded."""
    for deployment in deployments:
        if revision_of(deployment) != revision:
            continue
        for condition in (deployment.get("status") or {}).get("conditions") or []:
            if (
                condition.get("type") == "Progressing"
                and condition.get("reason") == "ProgressDeadlineExceeded"
            ):
                return True
    return False
