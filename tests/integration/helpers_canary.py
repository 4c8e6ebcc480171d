"""Given/When/Then helpers for the canary rollout integration tests and the rollback benchmark.

A canary Model is first applied (it becomes stable at once: a first deployment has nothing to
compare with), then a change of `engine.args` makes a new revision that walks the canary steps.
Everything is read through kubectl against the dev cluster, as a user would.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from helpers_model import Kubectl, condition, model_events, model_manifest, small_spec

from polling import wait_for

ANY_GPU = ["NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB", "NVIDIA-L4"]
"""Every GPU product of the dev cluster: the shared cluster's H100s are often all taken."""
PLUGIN = Path(sys.executable).parent / "kubectl-llmops"
"""The console script installed next to this interpreter by `pip install -e .`."""
DEPLOYMENT_LABEL = "llmops.dev/model"
REVISION_LABEL = "llmops.dev/revision"


def analysis(interval: str, *metrics: dict[str, Any], **limits: Any) -> dict[str, Any]:
    """`canary.analysis` with these metrics; `limits` are e.g. failureLimit=0."""
    return {"interval": interval, "metrics": list(metrics), **limits}


def ttft_ratio(window: str = "10s", ratio: float = 1.2) -> dict[str, Any]:
    return {"name": "ttft", "builtin": "timeToFirstTokenP95", "maxRatioToStable": ratio, "window": window}


def error_rate(window: str = "10s", limit: float = 0.05) -> dict[str, Any]:
    return {"name": "errors", "builtin": "errorRate", "max": limit, "window": window}


def canary_spec(
    steps: list[dict[str, Any]],
    analysis_spec: dict[str, Any] | None = None,
    replicas: int = 2,
    traffic_routing: dict[str, Any] | None = None,
    tag: str = "",
) -> dict[str, Any]:
    """A small vLLM Model (one GPU of any product per replica) with strategy Canary. `tag` makes the revision
    hash unique when several Models with otherwise equal specs share a namespace."""
    canary: dict[str, Any] = {"steps": steps}
    if analysis_spec is not None:
        canary["analysis"] = analysis_spec
    if traffic_routing is not None:
        canary["trafficRouting"] = traffic_routing
    args = ["--max-num-seqs=8"] + ([f"--served-model-name={tag}"] if tag else [])
    return small_spec(
        replicas=replicas,
        engine={"type": "vllm", "args": args},
        resources={"gpus": 1, "gpuProducts": ANY_GPU},
        rollout={"strategy": "Canary", "canary": canary},
    )


@dataclass
class CanaryModel:
    """One Model under test: Given (a stable revision), When (a canary starts), Then (reads)."""

    kube: Kubectl
    namespace: str
    name: str
    log_tail: Callable[[], str] = lambda: ""
    stable: str = ""
    canary: str = ""

    # ---- reads -----------------------------------------------------------------------------
    def model(self) -> dict[str, Any]:
        model = self.kube.get("model", self.namespace, self.name)
        assert model is not None, f"Model {self.namespace}/{self.name} is gone"
        return model

    def status(self) -> dict[str, Any]:
        return dict(self.model().get("status") or {})

    def rollout(self) -> dict[str, Any]:
        return dict(self.status().get("rollout") or {})

    def deployments(self) -> list[dict[str, Any]]:
        return self.kube.items("deployments", self.namespace, f"{DEPLOYMENT_LABEL}={self.name}")

    def deployment_of(self, revision: str) -> dict[str, Any] | None:
        for deployment in self.deployments():
            if deployment["metadata"]["labels"].get(REVISION_LABEL) == revision:
                return deployment
        return None

    def replicas_of(self, revision: str) -> int | None:
        deployment = self.deployment_of(revision)
        return None if deployment is None else int(deployment["spec"].get("replicas") or 0)

    def condition(self, type_: str) -> dict[str, Any]:
        return condition(self.model(), type_)

    def events(self) -> list[tuple[str, str, str]]:
        return model_events(self.kube, self.namespace, self.name)

    def revision_record(self, revision: str) -> dict[str, Any]:
        for record in self.status().get("revisions") or []:
            if record.get("revision") == revision:
                return dict(record)
        return {}

    # ---- waiting ---------------------------------------------------------------------------
    def wait(self, check: Callable[[dict[str, Any]], Any], timeout: float, what: str) -> Any:
        """Poll the Model until `check(model)` is truthy; fail with its status and the log."""
        seen: dict[str, Any] = {}

        def look() -> Any:
            seen.clear()
            seen.update(self.model())
            return check(seen)

        return wait_for(
            look,
            timeout,
            0.2,
            f"{what} on {self.namespace}/{self.name}",
            tolerate_errors=True,  # the API server may restart under us: poll on
            describe=lambda: f"status: {seen.get('status')}\noperator log:\n{self.log_tail()}",
        )

    def wait_phase(self, phase: str, timeout: float = 90) -> dict[str, Any]:
        def check(model: dict[str, Any]) -> dict[str, Any] | None:
            status = model.get("status") or {}
            current = status.get("observedGeneration") == model["metadata"]["generation"]
            return model if current and status.get("phase") == phase else None

        return self.wait(check, timeout, f"phase {phase}")  # type: ignore[no-any-return]

    def wait_step(self, index: int, timeout: float = 90) -> dict[str, Any]:
        """Until status.rollout.stepIndex >= index (steps may complete within one pass)."""
        return self.wait(  # type: ignore[no-any-return]
            lambda m: m if _step_index(m) >= index else None,
            timeout,
            f"stepIndex >= {index}",
        )

    # ---- given / when ----------------------------------------------------------------------
    def given_stable(self, spec: dict[str, Any], timeout: float = 90) -> str:
        """Apply the Model and wait until its first revision is stable and Ready."""
        self.kube.apply(model_manifest(self.name, spec), self.namespace)
        model = self.wait_phase("Ready", timeout)
        self.stable = model["status"]["stableRevision"]
        return self.stable

    def when_args_change(self, arg: str = "--max-num-seqs=16", timeout: float = 30) -> str:
        """Change engine.args: a new revision, rolled out as a canary. Returns its revision."""
        args = list(self.model()["spec"]["engine"]["args"])
        args[0] = arg
        self.kube.patch("model", self.namespace, self.name, {"spec": {"engine": {"args": args}}})
        self.canary = self.wait(
            lambda m: (m.get("status") or {}).get("canaryRevision"), timeout, "a canary revision"
        )
        return self.canary

    def plugin(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`kubectl-llmops -n NS ARGS... MODEL` with this cluster's kubeconfig."""
        result = subprocess.run(
            [str(PLUGIN), "-n", self.namespace, *args, self.name],
            capture_output=True,
            text=True,
            timeout=60,
            env={"KUBECONFIG": self.kube.kubeconfig, "PATH": "/usr/bin:/bin"},
        )
        assert result.returncode == 0, f"kubectl-llmops {' '.join(args)} failed: {result.stderr}"
        return result

    def rolled_back_to_stable(self) -> bool:
        """All traffic on stable: abort set, weight 0 and the canary Deployment at 0 replicas."""
        rollout = self.rollout()
        on_stable = bool(rollout.get("abort")) and rollout.get("weight") == 0
        return on_stable and self.replicas_of(self.canary) == 0


def _step_index(model: dict[str, Any]) -> int:
    return int(((model.get("status") or {}).get("rollout") or {}).get("stepIndex", 0))


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class DeploymentCensus:
    """A background thread counting each Model's Deployments in some namespaces, to catch a
    duplicate (more than two revisions live, or a name seen twice) at any moment."""

    kube: Kubectl
    namespaces: Iterable[str]
    interval: float = 0.5
    max_per_model: dict[tuple[str, str], int] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    uids: dict[str, set[str]] = field(default_factory=dict)
    """Every UID seen per Deployment: two mean it was deleted and created again."""
    polls: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def poll(self) -> None:
        for ns in self.namespaces:
            items = self.kube.items("deployments", ns, DEPLOYMENT_LABEL)
            per_model: dict[str, list[str]] = {}
            for d in items:
                self.uids.setdefault(f"{ns}/{d['metadata']['name']}", set()).add(d["metadata"]["uid"])
                per_model.setdefault(d["metadata"]["labels"][DEPLOYMENT_LABEL], []).append(
                    d["metadata"]["labels"].get(REVISION_LABEL, "")
                )
            for model, revs in per_model.items():
                key = (ns, model)
                self.max_per_model[key] = max(self.max_per_model.get(key, 0), len(revs))
                if len(set(revs)) != len(revs):
                    self.duplicates.append(f"{ns}/{model}: revisions {revs}")
        self.polls += 1

    @property
    def recreated(self) -> dict[str, set[str]]:
        """Deployments deleted and created again while counted (a serving one never is)."""
        return {name: uids for name, uids in self.uids.items() if len(uids) > 1}

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # keep counting through API hiccups
                self.poll()
            self._stop.wait(self.interval)

    def start(self) -> DeploymentCensus:
        self._thread = threading.Thread(target=self._run, name="deployment-census", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
