"""What Argo CD and Flux make of an object: its Argo CD health (our Lua health scripts, run in
gopher-lua) and its kstatus status (sigs.k8s.io/cli-utils), both computed by hack/tools/health.

Set LLMOPS_RECORD_HEALTH=1 when running the integration tests to save every object they check
into the scripts' testdata/ (how the recorded test objects were made), then run
`python tests/gitops_health.py` to rewrite the health_test.yaml files from them.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
HEALTH_ROOT = REPO / "charts" / "llmops-operator" / "files" / "resource_customizations"
GROUP_DIR = HEALTH_ROOT / "llmops.dev"
KINDS = ("Model", "EvalRun", "PromptVersion", "EvalGate")
KSTATUS_OF_HEALTH = {"Healthy": "Current", "Progressing": "InProgress", "Suspended": "InProgress"}
"""The kstatus status an object of each Argo CD health has; Degraded is Failed or, while the
operator still retries (e.g. replicas lost), InProgress."""


@functools.cache
def health_binary() -> Path:
    """hack/tools/build-health.sh (a no-op when the build is up to date)."""
    out = subprocess.run(
        ["bash", str(REPO / "hack" / "tools" / "build-health.sh")], capture_output=True, text=True
    )
    if out.returncode != 0:
        pytest.fail(
            f"could not build llmops-health:\n{out.stderr[-2000:]}\n"
            "Fix: install Go >= 1.26 and run `bash hack/tools/build-health.sh`",
            pytrace=False,
        )
    return Path(out.stdout.strip().splitlines()[-1])


def _run(*args: str, objects: list[dict[str, Any]]) -> list[dict[str, str]]:
    text = "\n---\n".join(json.dumps(o) for o in objects)
    out = subprocess.run(
        [str(health_binary()), *args, "-"], input=text, capture_output=True, text=True, timeout=60
    )
    if out.returncode != 0:
        raise AssertionError(f"llmops-health {' '.join(args)} failed: {out.stderr.strip()}")
    return [json.loads(line) for line in out.stdout.splitlines()]


def argocd_health(obj: dict[str, Any]) -> dict[str, str]:
    """{status, message} from the kind's health.lua."""
    return _run("lua", str(GROUP_DIR / obj["kind"] / "health.lua"), objects=[obj])[0]


def kstatus(obj: dict[str, Any]) -> dict[str, str]:
    """{kind, name, status, message} from kstatus' Compute."""
    return _run("kstatus", objects=[obj])[0]


def recorded(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as kept in testdata: what `kubectl get -o yaml` shows, without managedFields."""
    meta = {k: v for k, v in obj["metadata"].items() if k not in ("managedFields", "uid", "resourceVersion")}
    return {**obj, "metadata": meta}


def check_health(obj: dict[str, Any], health: str, flux: str, case: str) -> None:
    """Assert Argo CD's and kstatus' view of a live object; record it as testdata `case`."""
    assert obj["kind"] in KINDS, obj["kind"]
    argo, flux_status = argocd_health(obj), kstatus(obj)
    if os.environ.get("LLMOPS_RECORD_HEALTH"):
        path = GROUP_DIR / obj["kind"] / "testdata" / f"{case}.yaml"
        path.write_text(yaml.safe_dump(recorded(obj), sort_keys=False))
    detail = f"{obj['kind']} {obj['metadata']['name']}: status {json.dumps(obj.get('status'))[:1500]}"
    assert argo["status"] == health, f"Argo CD health {argo} != {health}; {detail}"
    assert flux_status["status"] == flux, f"kstatus {flux_status} != {flux}; {detail}"


def write_health_tests() -> None:
    """Rewrite each kind's health_test.yaml from its testdata/ and the script's current answers
    (after recording: every recorded answer was asserted by `check_health` when it was taken)."""
    for kind in KINDS:
        directory = GROUP_DIR / kind
        tests = []
        for path in sorted((directory / "testdata").glob("*.yaml")):
            health = argocd_health(yaml.safe_load(path.read_text()))
            tests.append({"healthStatus": health, "inputPath": f"testdata/{path.name}"})
        (directory / "health_test.yaml").write_text(
            yaml.safe_dump({"tests": tests}, sort_keys=False, width=1000)
        )


if __name__ == "__main__":
    write_health_tests()
