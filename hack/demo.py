"""`make demo`: a versioned prompt and a canary, judged by an eval gate and by Prometheus, on the
local simulated cluster.

Act 1 binds a new prompt version: the new revision must pass its EvalGate, then takes traffic
step by step while its latency and error rate are compared with the stable revision, and is
promoted. Act 2 changes the engine arguments and the canary's time to first token regresses by
1.5x: the operator rolls it back by itself.

What is simulated (no GPUs here): GPU nodes (KWOK), engine metrics (llmops_sim.emitter, mirrored
to the running pods), model answers (llmops_sim.openai_stub), running the eval Job's container
(llmops_sim.job_runner) and a storage provisioner (llmops_sim.volumes). The API server,
scheduler, controllers, Prometheus and the operator are real. Takes about three minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from llmops_operator.cli.kubectl_plugin import render_status
from llmops_sim.emitter import Emitter
from llmops_sim.job_runner import JobRunner
from llmops_sim.openai_stub import OpenAIStub
from llmops_sim.pod_mirror import PodMirror
from llmops_sim.volumes import VolumeProvisioner

ROOT = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("LLMOPS_CLUSTER_DIR", ROOT / ".cluster"))  # as hack/cluster/lib.sh
KUBECONFIG = str(STATE / "kubeconfig")
NAMESPACE = "llmops-demo"
PROMETHEUS = os.environ.get("LLMOPS_PROMETHEUS_URL", "http://127.0.0.1:19090")
TRAFFIC = {"rps": 100.0}
"""Requests per second per simulated pod. Verdicts are confidence bounds from request counts, so a
1.5x regression against a 1.3 threshold is provable within an interval or two at this rate; at
the emitter's default 5 rps the evidence stays Inconclusive (docs/rollouts.md, minRequests)."""
GROUP, VERSION = "llmops.dev", "v1alpha1"

ANSWERS = {
    "refund": "Yes, you can get a refund within 30 days of purchase. Please send your order number.",
    "opening hours": "Our support team is available Monday to Friday, 9:00 to 17:00.",
    "shipping": "Shipping usually takes 3 to 5 working days.",
}
CASES = [
    {
        "id": "refund",
        "vars": {"question": "Can I get a refund for my kettle?"},
        "expected": ANSWERS["refund"],
    },
    {
        "id": "hours",
        "vars": {"question": "What are your opening hours?"},
        "expected": ANSWERS["opening hours"],
    },
    {"id": "shipping", "vars": {"question": "How long does shipping take?"}, "expected": ANSWERS["shipping"]},
]


def prompt_version(version: int, tone: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PromptVersion",
        "metadata": {"name": f"support-bot-v{version}"},
        "spec": {
            "prompt": "support-bot",
            "version": version,
            "description": tone,
            "messages": [
                {"role": "system", "content": f"You are Acme's support assistant. {tone}"},
                {"role": "user", "content": "{{ question }}"},
            ],
            "variables": [{"name": "question", "required": True}],
            "parameters": {"temperature": 0.2, "maxTokens": 256},
        },
    }


EVAL_GATE = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "EvalGate",
    "metadata": {"name": "support-quality"},
    "spec": {
        "prompt": {"name": "support-bot"},
        "dataset": {"inline": CASES},
        "assertions": [
            {"name": "no-rudeness", "type": "regex", "value": "figure it out yourself", "negate": True},
            {"name": "close-to-reference", "type": "rougeL", "threshold": 0.5},
        ],
        "passCriteria": {"passRate": 0.9},
        "concurrency": 4,
    },
}


def model(args: list[str], prompt: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Model",
        "metadata": {"name": "support-llama"},
        "spec": {
            "source": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"},
            "engine": {"type": "vllm", "args": args},
            "resources": {"gpus": 2, "gpuProducts": ["NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB"]},
            "serving": {"maxModelLen": 8192, "dtype": "bfloat16"},
            "prompts": [{"name": "support-bot", "version": prompt}],
            "replicas": 4,
            "rollout": {
                "strategy": "Canary",
                "canary": {
                    "steps": [
                        {"evalGate": {"name": "support-quality"}},
                        {"setWeight": 25},
                        {"pause": {"duration": "10s"}},
                        {"analysis": {}},
                        {"setWeight": 50},
                        {"pause": {"duration": "10s"}},
                    ],
                    "analysis": {
                        "interval": "5s",
                        "metrics": [
                            {
                                "name": "ttft-p95",
                                "builtin": "timeToFirstTokenP95",
                                "maxRatioToStable": 1.3,
                                "window": "15s",
                            },
                            {"name": "error-rate", "builtin": "errorRate", "max": 0.02, "window": "15s"},
                        ],
                    },
                },
            },
        },
    }


class Demo:
    def __init__(self) -> None:
        k8s_config.load_kube_config(KUBECONFIG)
        self.api = k8s.ApiClient()
        self.core = k8s.CoreV1Api(self.api)
        self.custom = k8s.CustomObjectsApi(self.api)
        self.processes: list[Any] = []

    def say(self, text: str) -> None:
        print(f"\n== {text}", flush=True)

    def apply(self, obj: dict[str, Any]) -> None:
        body = json.dumps(obj)
        subprocess.run(
            [kubectl(), "--kubeconfig", KUBECONFIG, "-n", NAMESPACE, "apply", "--server-side", "-f", "-"],
            input=body,
            text=True,
            check=True,
            capture_output=True,
        )
        print(f"   applied {obj['kind']} {obj['metadata']['name']}")

    def status(self) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, "models", "support-llama")

    def watch(
        self, done: Callable[[dict[str, Any]], bool], timeout: float, on_tick: Any = None
    ) -> dict[str, Any]:
        """Print each change of phase, step and weight until ``done``; ``on_tick`` sees each poll."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            obj = self.status()
            status = obj.get("status") or {}
            rollout = status.get("rollout") or {}
            line = (
                f"   phase={status.get('phase')} stable={status.get('stableRevision')} "
                f"canary={status.get('canaryRevision') or '-'} step={rollout.get('stepIndex', '-')} "
                f"weight={rollout.get('weight', '-')}% {rollout.get('message', '')}"
            )
            if line != last:
                print(line, flush=True)
                last = line
            if on_tick:
                on_tick(obj)
            if done(obj):
                return obj
            time.sleep(1)
        print(render_status(self.status()))
        raise SystemExit(
            f"demo: timed out after {timeout}s; the operator log is {STATE / 'logs' / 'demo-operator.log'}"
        )


def kubectl() -> str:
    out = subprocess.run(
        ["bash", "-c", f'source "{ROOT}/hack/cluster/lib.sh" && printf %s "$KUBECTL"'],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def main() -> int:
    demo = Demo()
    kube = [kubectl(), "--kubeconfig", KUBECONFIG]
    subprocess.run([*kube, "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true"], check=True)
    subprocess.run([*kube, "create", "namespace", NAMESPACE], check=True, capture_output=True)
    for crd in sorted((ROOT / "crds").glob("*.llmops.dev.yaml")):
        subprocess.run([*kube, "apply", "--server-side", "-f", str(crd)], check=True, capture_output=True)

    demo.say("starting the stand-ins (engine metrics, model answers, eval Job runner) and the operator")
    emitter = Emitter().start()
    shaped: set[str] = set()

    def busy(obj: dict[str, Any]) -> None:
        """Every revision the operator creates serves TRAFFIC (the regressed one keeps its shape)."""
        status = obj.get("status") or {}
        for revision in (status.get("stableRevision"), status.get("canaryRevision")):
            if revision and revision not in shaped:
                emitter.set_shape("steady", revision=revision, namespace=NAMESPACE, **TRAFFIC)
                shaped.add(revision)

    target = STATE / "prometheus" / "targets" / "demo-emitter.json"
    target.write_text(json.dumps([{"targets": [emitter.address], "labels": {"job": "demo-emitter"}}]))
    mirror = PodMirror(emitter, demo.api, NAMESPACE).start()
    volumes = VolumeProvisioner(demo.api).start()
    stub = OpenAIStub(port=0, answers=ANSWERS).start()
    runner = JobRunner(demo.api, KUBECONFIG, NAMESPACE, log_dir=STATE / "logs" / "demo-eval-jobs").start()
    log = open(STATE / "logs" / "demo-operator.log", "wb")  # noqa: SIM115
    operator = subprocess.Popen(
        [sys.executable, "-m", "llmops_operator.cli.main", "run", "--namespace", NAMESPACE],
        env={
            **os.environ,
            "KUBECONFIG": KUBECONFIG,
            "LLMOPS_PROMETHEUS_URL": PROMETHEUS,
            "LLMOPS_METRICS_PORT": "0",
            "LLMOPS_HEALTH_PORT": "0",
            "LLMOPS_LEADER_ELECTION_ID": f"llmops-{uuid.uuid4().hex[:8]}",  # a Lease of its own
            "LLMOPS_RESYNC_SECONDS": "3",
            "HF_HUB_OFFLINE": "1",
            "LLMOPS_EVAL_ENDPOINT_TEMPLATE": f"http://127.0.0.1:{stub.port}/r/{{revision}}/v1",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        demo.say("a prompt (v1 and v2), an eval gate, and a Model serving prompt v1 on 4 replicas x 2 H100")
        for obj in (prompt_version(1, "Be brief."), prompt_version(2, "Be brief and warm."), EVAL_GATE):
            demo.apply(obj)
        demo.apply(model(["--enable-prefix-caching"], prompt=1))
        demo.watch(lambda m: (m.get("status") or {}).get("phase") == "Ready", 90, on_tick=busy)
        subprocess.run([*kube, "-n", NAMESPACE, "get", "llm,deploy,pods", "-o", "wide"], check=True)

        demo.say("act 1: bind prompt v2 -> a new revision, gated by support-quality, judged on Prometheus")
        demo.apply(model(["--enable-prefix-caching"], prompt=2))
        first = demo.status()["status"]["stableRevision"]
        final = demo.watch(
            lambda m: (
                (m.get("status") or {}).get("stableRevision") not in (None, first)
                and (m.get("status") or {}).get("phase") == "Ready"
            ),
            240,
            on_tick=busy,
        )
        print(render_status(final))

        demo.say("act 2: new engine args; the canary's time to first token regresses 1.5x")
        demo.apply(model(["--enable-prefix-caching", "--max-num-seqs=128"], prompt=2))

        def inject(obj: dict[str, Any]) -> None:
            canary = (obj.get("status") or {}).get("canaryRevision")
            if canary and canary not in shaped:
                emitter.set_shape(
                    "latency_regression", revision=canary, namespace=NAMESPACE, factor=1.5, **TRAFFIC
                )
                shaped.add(canary)
                print(f"   >> the new revision {canary} answers 1.5x slower to its first token")
            busy(obj)

        final = demo.watch(
            lambda m: bool(((m.get("status") or {}).get("rollout") or {}).get("abort")), 240, on_tick=inject
        )
        print(render_status(final))
        subprocess.run(
            [
                *kube,
                "-n",
                NAMESPACE,
                "get",
                "events",
                "--sort-by=.lastTimestamp",
                "--field-selector",
                "involvedObject.kind=Model",
            ],
            check=False,
        )
        demo.say("done: the regressed revision was rolled back by the operator; stable kept serving")
        return 0
    finally:
        operator.terminate()
        operator.wait(timeout=15)
        runner.stop()
        stub.stop()
        mirror.stop()
        volumes.stop()
        emitter.stop()
        target.unlink(missing_ok=True)
        if not os.environ.get("DEMO_KEEP"):
            subprocess.run([*kube, "delete", "namespace", NAMESPACE, "--wait=false"], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
