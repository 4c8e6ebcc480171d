"""kubectl-driven helpers for the Model integration tests: the real binary, the dev kubeconfig."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("LLMOPS_CACHE", Path.home() / ".cache/llmops-operator"))
KUBECTL = Path(os.environ.get("LLMOPS_KUBECTL", CACHE / "k8s-v1.36.3/bin/kubectl"))


class Kubectl:
    """Runs kubectl against one kubeconfig; JSON in, JSON out."""

    def __init__(self, kubeconfig: str | Path) -> None:
        self.kubeconfig = str(kubeconfig)

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(KUBECTL), "--kubeconfig", self.kubeconfig, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        result = self.run("-n", namespace, "get", kind, name, "-o", "json", "--ignore-not-found", check=False)
        if result.returncode != 0 or not result.stdout.strip():
            return None
        return json.loads(result.stdout)

    def items(self, kind: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        args = ["-n", namespace, "get", kind]
        if selector:
            args += ["-l", selector]
        return list(self.json(*args)["items"])

    def apply(
        self, obj: dict[str, Any] | str, namespace: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        body = obj if isinstance(obj, str) else json.dumps(obj)
        args = ["apply", "-f", "-"]
        if namespace:
            args = ["-n", namespace, *args]
        return self.run(*args, stdin=body, check=check)

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any], *extra: str) -> None:
        self.run("-n", namespace, "patch", kind, name, "--type=merge", "-p", json.dumps(patch), *extra)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def model_manifest(name: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "llmops.dev/v1alpha1", "kind": "Model", "metadata": metadata, "spec": spec}


def small_spec(**overrides: Any) -> dict[str, Any]:
    """A quick RollingUpdate vLLM Model: no cache, no Secret, one H100 per replica."""
    spec: dict[str, Any] = {
        "source": {"uri": "hf://org/tiny-llm"},
        "engine": {"type": "vllm", "args": ["--max-num-seqs=8"]},
        "resources": {"gpus": 1, "gpuProducts": ["NVIDIA-H100-80GB-HBM3"]},
        "replicas": 2,
        "rollout": {"strategy": "RollingUpdate"},
    }
    spec.update(overrides)
    return spec


def load_example(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "examples" / name).read_text()))


def condition(model: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for c in ((model or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return {}


def engine_deployments(kube: Kubectl, namespace: str, model: str) -> list[dict[str, Any]]:
    return kube.items("deployments", namespace, f"llmops.dev/model={model}")


def model_events(kube: Kubectl, namespace: str, model: str) -> list[tuple[str, str, str]]:
    events = kube.items("events", namespace)
    return [
        (e.get("type", ""), e.get("reason", ""), e.get("message", ""))
        for e in events
        if (e.get("involvedObject") or {}).get("kind") == "Model"
        and (e.get("involvedObject") or {}).get("name") == model
    ]


def bound_volume(kube: Kubectl, namespace: str, claim: str, size: str = "100Gi") -> str:
    """A hostPath PV pre-bound to one claim: the dev cluster has no storage provisioner."""
    name = unique(f"pv-{namespace}")[:63]
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": {"llmops.dev/test-namespace": namespace}},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteMany", "ReadWriteOnce", "ReadOnlyMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "claimRef": {"namespace": namespace, "name": claim},
                "hostPath": {"path": f"/tmp/llmops-test/{name}"},
            },
        }
    )
    return name
