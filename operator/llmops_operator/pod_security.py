"""The securityContexts of every pod the operator creates; one definition, tested against the
Pod Security Standards by the real API server's PodSecurity admission (integration test).

Loader and eval Jobs run the operator's own image (user 65532, see Containerfile) and pass
`restricted`. Engine pods run third-party images that may need root (vLLM, Triton), so they get
what `baseline` allows plus what costs nothing: no privilege escalation, RuntimeDefault seccomp,
no service account token.
"""

from __future__ import annotations

from typing import Any

NONROOT_UID = 65532
"""The operator image's user and group (Containerfile); fsGroup lets the loader write its PVC."""


def restricted_pod() -> dict[str, Any]:
    """Pod-level securityContext meeting Pod Security `restricted` (with `restricted_container`)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": NONROOT_UID,
        "runAsGroup": NONROOT_UID,
        "fsGroup": NONROOT_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container() -> dict[str, Any]:
    """Container-level securityContext meeting Pod Security `restricted`."""
    return {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def engine_pod() -> dict[str, Any]:
    """Engine pods: `baseline` (no host namespaces, no privileged containers) plus RuntimeDefault."""
    return {"seccompProfile": {"type": "RuntimeDefault"}}


def engine_container() -> dict[str, Any]:
    """Engine containers: no privilege escalation; capabilities as the image needs (baseline)."""
    return {"allowPrivilegeEscalation": False}
