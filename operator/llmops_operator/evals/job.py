"""The Job that runs one EvalRun, and the least-privilege identity it runs as. Pure builders.

The Job runs the operator's own image as `llmops-operator eval --evalrun NS/NAME`; its
ServiceAccount may read the gate, prompts and dataset and patch EvalRun status, nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmops_operator.api.common import (
    GROUP,
    LABEL_COMPONENT,
    LABEL_MODEL,
    LABEL_REVISION,
    MANAGED_LABELS,
    OPERATOR_COMMAND,
)
from llmops_operator.resources import namespace_identity

EVAL_SERVICE_ACCOUNT = "llmops-eval"
EVAL_COMPONENT = "eval"
DEFAULT_ENDPOINT_TEMPLATE = "http://{service}.{namespace}.svc:{port}/v1"
"""How an eval Job reaches a revision. Placeholders: service, namespace, port, model, revision."""
JOB_BACKOFF_LIMIT = 1
JOB_TTL_SECONDS = 3600

EVAL_ROLE_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [GROUP],
        "resources": ["evalruns", "evalgates", "promptversions", "models"],
        "verbs": ["get", "list"],
    },
    {"apiGroups": [GROUP], "resources": ["evalruns/status"], "verbs": ["get", "patch"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
]


def endpoint(template: str, service: str, namespace: str, port: int, model: str, revision: str) -> str:
    """A revision's OpenAI-compatible base URL as the eval Job sees it."""
    return template.format(service=service, namespace=namespace, port=port, model=model, revision=revision)


def _labels(eval_run: Mapping[str, Any]) -> dict[str, str]:
    labels = eval_run["metadata"].get("labels") or {}
    return {
        **MANAGED_LABELS,
        LABEL_COMPONENT: EVAL_COMPONENT,
        LABEL_MODEL: labels.get(LABEL_MODEL, eval_run["spec"]["model"]),
        LABEL_REVISION: labels.get(LABEL_REVISION, eval_run["spec"]["revision"]),
    }


def eval_job(eval_run: Mapping[str, Any], operator_image: str, owner: Mapping[str, Any]) -> dict[str, Any]:
    """Job `<evalrun>` running the evaluation once (one retry: errors are recorded, not retried)."""
    meta = eval_run["metadata"]
    labels = _labels(eval_run)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [dict(owner)],
        },
        "spec": {
            "backoffLimit": JOB_BACKOFF_LIMIT,
            "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": EVAL_SERVICE_ACCOUNT,
                    "containers": [
                        {
                            "name": "eval",
                            "image": operator_image,
                            "command": [OPERATOR_COMMAND],
                            "args": ["eval", "--evalrun", f"{meta['namespace']}/{meta['name']}"],
                            "resources": {
                                "requests": {"cpu": "250m", "memory": "256Mi"},
                                "limits": {"memory": "1Gi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


def eval_identity(namespace: str) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding the eval Jobs of a namespace run as."""
    return namespace_identity(EVAL_SERVICE_ACCOUNT, namespace, EVAL_COMPONENT, EVAL_ROLE_RULES)
