"""Soak: many Models through many eval-gated rollouts; is what the operator leaves behind flat?

On the dev cluster (`bash hack/cluster/up.sh`), in a fresh namespace: start the operator
(`llmops-operator run`, leader election on, its own Lease), the OpenAI stub (answers the gate)
and the job runner (runs the eval Jobs as local processes). Create `--models` Models bound to
PromptVersion v1 with one evalGate step, then `--rollouts` times flip every Model's prompt
(v1 <-> v2: each flip is a canary through the gate) and wait until every Model promoted it.

Measured after the first revisions are Ready (start) and after the last rollout (end):

- etcd's key count (`etcd_debugging_mvcc_keys_total`) and the API server's object count per
  resource (`apiserver_resource_objects` / `apiserver_storage_objects`), Events apart (they
  expire after an hour by themselves, so they grow during any soak shorter than that);
- the operator's RSS (psutil, process and children);
- EvalRuns and eval Jobs in the namespace (retention keeps `--eval-run-history` per gate).

Issue 15's scale is 200 Models x 20 rollouts (`--models 200 --rollouts 20`); the default is
a reduced 20 x 5 that runs on a shared laptop-size machine in a few minutes.

    KUBECONFIG=.cluster/kubeconfig ~/.cache/llmops-operator/venv/bin/python bench/soak.py \
        --models 20 --rollouts 5

Results: a table on stdout and JSON in bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from llmops_sim.job_runner import JobRunner
from llmops_sim.openai_stub import OpenAIStub

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
GROUP, VERSION = "llmops.dev", "v1alpha1"
PROMPT, GATE = "soak-bot", "soak-gate"
WEIGHTS_CLAIM = "soak-weights"
"""A claim every Model serves from (onnxruntime serves a local repository; no GPUs needed)."""


def weights_volume(core: k8s.CoreV1Api, namespace: str) -> str:
    """A hostPath PV pre-bound to the claim, and the claim: the dev cluster has no provisioner."""
    pv = f"{namespace}-weights"
    core.create_persistent_volume(
        {
            "metadata": {"name": pv},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadOnlyMany", "ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "claimRef": {"namespace": namespace, "name": WEIGHTS_CLAIM},
                "hostPath": {"path": f"/tmp/llmops-soak/{pv}"},
            },
        }
    )
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": WEIGHTS_CLAIM},
            "spec": {
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "",
                "volumeName": pv,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    return pv


def prompt_version(version: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PromptVersion",
        "metadata": {"name": f"{PROMPT}-v{version}"},
        "spec": {
            "prompt": PROMPT,
            "version": version,
            "messages": [
                {"role": "system", "content": f"You are a helpful assistant (v{version})."},
                {"role": "user", "content": "{{ question }}"},
            ],
            "variables": [{"name": "question", "required": True}],
        },
    }


def gate() -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "EvalGate",
        "metadata": {"name": GATE},
        "spec": {
            "prompt": {"name": PROMPT},
            "dataset": {"inline": [{"id": "hello", "vars": {"question": "Say hello"}, "expected": "hello"}]},
            "assertions": [{"name": "polite", "type": "regex", "value": "care", "negate": True}],
            "passCriteria": {"passRate": 1.0},
            "timeoutSeconds": 60,
            "requestTimeoutSeconds": 5,
            "retries": 0,
        },
    }


def model(name: str, version: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Model",
        "metadata": {"name": name},
        "spec": {
            "source": {"uri": f"pvc://{WEIGHTS_CLAIM}/{name}"},
            "engine": {"type": "onnxruntime"},
            "resources": {"gpus": 0, "cpu": "10m", "memory": "16Mi"},
            "placement": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]},
            "cache": {"enabled": False},
            "prompts": [{"name": PROMPT, "version": version}],
            "replicas": 1,
            "rollout": {"strategy": "Canary", "canary": {"steps": [{"evalGate": {"name": GATE}}]}},
        },
    }


def scrape(text: str, names: tuple[str, ...]) -> dict[str, float]:
    """`{resource: value}` (or `{"": value}`) of the first metric name present in a text exposition."""
    out: dict[str, float] = {}
    for name in names:
        for match in re.finditer(rf"^{name}(?:{{([^}}]*)}})? ([0-9.e+-]+)$", text, re.MULTILINE):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
            out[labels.get("resource", "")] = float(match.group(2))
        if out:
            return out
    return out


def sample(api: k8s.ApiClient, namespace: str, operator: psutil.Process) -> dict[str, Any]:
    etcd_port = os.environ.get("LLMOPS_ETCD_PORT", "12379")
    etcd = scrape(
        httpx.get(f"http://127.0.0.1:{etcd_port}/metrics", timeout=10).text,
        ("etcd_debugging_mvcc_keys_total",),
    )
    url = api.configuration.host + "/metrics"
    headers = {"Accept": "text/plain"}
    api.update_params_for_auth(headers, [], ["BearerToken"], url, "GET", None)
    response = api.call_api("GET", url, header_params=headers)
    response.read()
    objects = scrape(response.data.decode(), ("apiserver_resource_objects", "apiserver_storage_objects"))
    custom = k8s.CustomObjectsApi(api)
    batch = k8s.BatchV1Api(api)
    rss = operator.memory_info().rss + sum(c.memory_info().rss for c in operator.children(recursive=True))
    return {
        "etcd_keys": etcd.get("", 0.0),
        "api_objects": sum(v for k, v in objects.items() if k != "events"),
        "events": objects.get("events", 0.0),
        "evalruns": len(custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "evalruns")["items"]),
        "eval_jobs": len(
            batch.list_namespaced_job(namespace, label_selector="llmops.dev/component=eval").items
        ),
        "operator_rss_mib": round(rss / 2**20, 1),
        "objects_by_resource": {k: v for k, v in sorted(objects.items()) if v},
    }


def wait_all(
    custom: k8s.CustomObjectsApi, namespace: str, names: list[str], done: Any, timeout: float
) -> float:
    start = time.monotonic()
    pending = set(names)
    while pending:
        if time.monotonic() - start > timeout:
            raise SystemExit(f"timed out after {timeout}s; still pending: {sorted(pending)[:5]}")
        items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "models")["items"]
        pending -= {m["metadata"]["name"] for m in items if done(m)}
        time.sleep(1.0)
    return time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--rollouts", type=int, default=5)
    parser.add_argument("--eval-run-history", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=900.0, help="per rollout round")
    args = parser.parse_args(argv)

    k8s_config.load_kube_config()
    api = k8s.ApiClient()
    core, custom = k8s.CoreV1Api(api), k8s.CustomObjectsApi(api)
    namespace = f"soak-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    pv = weights_volume(core, namespace)
    stub = OpenAIStub(port=0, defaultAnswer="Hello! How can I help?").start()
    runner = JobRunner(
        api, os.environ.get("KUBECONFIG", str(REPO / ".cluster" / "kubeconfig")), namespace
    ).start()
    env = {
        **os.environ,
        "LLMOPS_METRICS_PORT": "0",
        "LLMOPS_HEALTH_PORT": "0",
        "LLMOPS_RESYNC_SECONDS": "30",
        "LLMOPS_EVAL_RUN_HISTORY": str(args.eval_run_history),
        "LLMOPS_EVAL_ENDPOINT_TEMPLATE": f"http://127.0.0.1:{stub.port}/v1",
        "LLMOPS_LEADER_ELECTION_ID": f"llmops-{namespace}",
        "LLMOPS_LEADER_ELECTION_NAMESPACE": "default",
        "HF_HUB_OFFLINE": "1",
    }
    log = open(REPO / ".cluster" / "logs" / f"soak-{namespace}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmops_operator.cli.main", "run", "--namespace", namespace],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    names = [f"m{i:03d}" for i in range(args.models)]
    rounds: list[dict[str, Any]] = []
    try:
        for version in (1, 2):
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, "promptversions", prompt_version(version)
            )
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "evalgates", gate())
        for name in names:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "models", model(name, 1))
        ready = wait_all(
            custom, namespace, names, lambda m: (m.get("status") or {}).get("phase") == "Ready", args.timeout
        )
        operator = psutil.Process(proc.pid)
        start = sample(api, namespace, operator)
        print(f"{args.models} Models Ready in {ready:.0f}s; start: {start}", flush=True)
        for r in range(args.rollouts):
            version = 2 if r % 2 == 0 else 1
            patch = {"spec": {"prompts": [{"name": PROMPT, "version": version}]}}
            for name in names:
                custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, "models", name, patch)
            time.sleep(2.0)  # every Model saw its change before "no canary" can mean promoted

            def promoted(m: dict[str, Any], version: int = version) -> bool:
                status = m.get("status") or {}
                bound = ((m.get("spec") or {}).get("prompts") or [{}])[0].get("version")
                return (
                    bound == version and not status.get("canaryRevision") and status.get("phase") == "Ready"
                )

            took = wait_all(custom, namespace, names, promoted, args.timeout)
            rounds.append({"rollout": r + 1, "seconds": round(took, 1), **sample(api, namespace, operator)})
            print(f"rollout {r + 1}/{args.rollouts}: all promoted in {took:.0f}s; {rounds[-1]}", flush=True)
        end = rounds[-1] if rounds else start
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        runner.stop()
        stub.stop()
        core.delete_namespace(namespace, propagation_policy="Background")
        core.delete_persistent_volume(pv)
    result = {"models": args.models, "rollouts": args.rollouts, "start": start, "end": end, "rounds": rounds}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2))
    print(f"\n{'':18}{'start':>12}{'end':>12}")
    for key in ("etcd_keys", "api_objects", "events", "evalruns", "eval_jobs", "operator_rss_mib"):
        print(f"{key:18}{start[key]:>12}{end[key]:>12}")
    before, after = start["objects_by_resource"], end["objects_by_resource"]
    grown = {k: after.get(k, 0) - before.get(k, 0) for k in sorted({*before, *after})}
    print("objects grown by resource:", {k: v for k, v in grown.items() if v})
    return 0


if __name__ == "__main__":
    sys.exit(main())
