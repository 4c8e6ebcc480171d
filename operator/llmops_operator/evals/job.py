"""The Job that runs one EvalRun, and the least-privilege identity it runs as. Pure builders.

The Job runs the operator's own image as `llmops-operator eval --evalrun NS/NAME`. Each run has
an identity of its own, all named after the run: a ServiceAccount whose Role may read that
EvalRun, its gate, the prompts and judge Models, read and write ConfigMaps (the dataset, the
run's case record), and patch that one EvalRun's status (`resourceNames`), nothing else; and a
Secret with the run's verdict key (see `evals/verdict.py`). Judge API keys reach the Job only as
secretKeyRef env, never in args.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from llmops_operator import pod_security
from llmops_operator.api.common import (
    GROUP,
    LABEL_COMPONENT,
    LABEL_MODEL,
    LABEL_REVISION,
    MANAGED_LABELS,
    OPERATOR_COMMAND,
)
from llmops_operator.evals import verdict
from llmops_operator.resources import pod_identity

EVAL_COMPONENT = "eval"
JUDGE_KEY_ENV_PREFIX = "LLMOPS_JUDGE_API_KEY_"
DEFAULT_ENDPOINT_TEMPLATE = "http://{service}.{namespace}.svc:{port}/v1"
"""How an eval Job reaches a revision. Placeholders: service, namespace, port, model, revision."""
JOB_BACKOFF_LIMIT = 1
JOB_TTL_SECONDS = 3600


def judge_key_env(secret_name: str, key: str) -> str:
    """The env variable carrying the judge API key from Secret `secret_name` key `key`."""
    digest = hashlib.sha256(f"{secret_name}/{key}".encode()).hexdigest()[:12].upper()
    return f"{JUDGE_KEY_ENV_PREFIX}{digest}"


def _assertions(gate: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    return list(((gate or {}).get("spec") or {}).get("assertions") or [])


def judge_key_refs(gate: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(Secret name, key) of every judge API key the gate names, in order, without repeats."""
    refs: list[tuple[str, str]] = []
    for assertion in _assertions(gate):
        ref = (assertion.get("judge") or {}).get("apiKeySecretRef") or {}
        if ref.get("name") and (ref["name"], ref.get("key", "token")) not in refs:
            refs.append((ref["name"], ref.get("key", "token")))
    return refs


def role_rules(eval_run: Mapping[str, Any], gate: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """What one eval Job may do: read its own inputs, write its own EvalRun's status."""
    run = eval_run["metadata"]["name"]

    rules: list[dict[str, Any]] = [
        {"apiGroups": [GROUP], "resources": ["evalruns"], "resourceNames": [run], "verbs": ["get"]},
        {
            "apiGroups": [GROUP],
            "resources": ["evalruns/status"],
            "resourceNames": [run],
            "verbs": ["get", "patch"],
        },
        {
            "apiGroups": [GROUP],
            "resources": ["evalgates"],
            "resourceNames": [eval_run["spec"]["gate"]],
            "verbs": ["get"],
        },
        # PromptVersions are found by spec.prompt, not by name: list cannot take resourceNames
        {"apiGroups": [GROUP], "resources": ["promptversions"], "verbs": ["list"]},
    ]
    # the dataset ConfigMap, and the ConfigMap that keeps the run's case record (create cannot
    # take resourceNames)
    rules.append({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "patch"]})
    judges = sorted({(a.get("judge") or {}).get("model") for a in _assertions(gate)} - {None, ""})
    if judges:
        rules.append(
            {"apiGroups": [GROUP], "resources": ["models"], "resourceNames": judges, "verbs": ["get"]}
        )
    return rules


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


def eval_job(
    eval_run: Mapping[str, Any],
    operator_image: str,
    owner: Mapping[str, Any],
    gate: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Job `<evalrun>` running the evaluation once (one retry: errors are recorded, not retried),
    as the run's own ServiceAccount, with its verdict key and judge API keys as secretKeyRef env."""
    meta = eval_run["metadata"]
    labels = _labels(eval_run)
    env: list[dict[str, Any]] = [
        {
            "name": verdict.KEY_ENV,
            "valueFrom": {"secretKeyRef": {"name": meta["name"], "key": verdict.SECRET_KEY}},
        }
    ]
    env += [
        {"name": judge_key_env(name, key), "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}
        for name, key in judge_key_refs(gate)
    ]
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
                    "serviceAccountName": meta["name"],
                    "enableServiceLinks": False,
                    "securityContext": pod_security.restricted_pod(),
                    "containers": [
                        {
                            "name": "eval",
                            "image": operator_image,
                            "command": [OPERATOR_COMMAND],
                            "args": ["eval", "--evalrun", f"{meta['namespace']}/{meta['name']}"],
                            "env": env,
                            "resources": {
                                "requests": {"cpu": "250m", "memory": "256Mi"},
                                "limits": {"memory": "1Gi"},
                            },
                            "securityContext": pod_security.restricted_container(),
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


IDENTITY_KINDS = ("ServiceAccount", "Role", "RoleBinding", "Secret")
"""What `eval_identity` creates per run, each named after the run."""


def eval_run_objects(name: str) -> list[tuple[str, str]]:
    """(kind, name) of everything one eval run leaves behind: the run, its Job, its identity."""
    return [("EvalRun", name), ("Job", name), *((kind, name) for kind in IDENTITY_KINDS)]


def eval_identity(
    eval_run: Mapping[str, Any],
    gate: Mapping[str, Any] | None,
    owner: Mapping[str, Any],
    verdict_key: bytes,
) -> list[dict[str, Any]]:
    """ServiceAccount, Role, RoleBinding and verdict-key Secret of one eval run, all `<run>`."""
    name, namespace = eval_run["metadata"]["name"], eval_run["metadata"]["namespace"]
    meta = {
        "name": name,
        "namespace": namespace,
        "labels": _labels(eval_run),
        "ownerReferences": [dict(owner)],
    }
    account, role, binding = pod_identity(meta, role_rules(eval_run, gate))
    return [account, verdict.key_secret(eval_run, verdict_key, owner), role, binding]
