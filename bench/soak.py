"""Soak: many Models through many eval-gated rollouts; is what the operator leaves behind flat?

On the dev cluster (`bash hack/cluster/up.sh`, CRDs applied), in a fresh namespace: start the
operator (`llmops-operator run`, leader election on, its own Lease), the OpenAI stub (answers
the gate) and the job runner (runs each eval Job's real `llmops-operator eval` in a process
forked from a pre-imported server, at most `--eval-slots` at once). Create `--models` Models
bound to PromptVersion v1 with a canary of one evalGate step (`--steps gate,weight,pause` adds
setWeight 50 and a 1 s pause), then `--rollouts` rounds: every Model is bound to the next
PromptVersion (a new revision each time) at once, and the round ends when every Model promoted
it (its stable revision changed, no canary, Ready).

Sampled when the first revisions are Ready (start) and after every `--sample-every` rounds:

- etcd's keys per resource (a keys-only range read of `/registry/`, so nothing is estimated),
  cluster-wide and in the soak's namespace, Events apart: they expire by the API server's
  `--event-ttl` (Kubernetes' default 1h; `LLMOPS_EVENT_TTL=5m bash hack/cluster/up.sh` sets the
  dev cluster's shorter so a soak shorter than an hour sees them level off);
- the operator's RSS and CPU-seconds (psutil), the cluster components' CPU-seconds, the
  harness's (stub, job runner and its forked eval runs);
- wall time per round.

Flat within noise: every resource's count in the soak's namespace (Events apart) after the
first sampled round past retention's fill-up (max of the two histories, plus 2) equals the
count after the last round, and RSS does not grow from sample to sample. Issue 15's scale:

    LLMOPS_EVENT_TTL=5m bash hack/cluster/up.sh
    KUBECONFIG=$LLMOPS_CLUSTER_DIR/kubeconfig python bench/soak.py --models 200 --rollouts 20

The default (20 x 5) runs in a few minutes. Results: a table on stdout and JSON in
bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from cluster_cpu import COMPONENTS, component_cpu, cpu_seconds
from llmops_sim.job_runner import JobRunner
from llmops_sim.openai_stub import OpenAIStub

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
STATE = Path(os.environ.get("LLMOPS_CLUSTER_DIR", REPO / ".cluster"))
GROUP, VERSION = "llmops.dev", "v1alpha1"
PROMPT, GATE = "soak-bot", "soak-gate"
WEIGHTS_CLAIM = "soak-weights"
"""A claim every Model serves from (onnxruntime serves a local repository; no GPUs needed)."""
EVENTS = "events"


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
            "timeoutSeconds": 600,
            "requestTimeoutSeconds": 5,
            "retries": 0,
        },
    }


STEPS = {
    "gate": [{"evalGate": {"name": GATE}}],
    "gate,weight,pause": [{"evalGate": {"name": GATE}}, {"setWeight": 50}, {"pause": {"duration": "1s"}}],
}
"""Canary steps to choose from (`--steps`): the gate alone costs the fewest passes per rollout."""


def model(name: str, version: int, revision_history: int, steps: list[dict[str, Any]]) -> dict[str, Any]:
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
            "rollout": {
                "strategy": "Canary",
                "canary": {"steps": steps},
                "revisionHistoryLimit": revision_history,
            },
        },
    }


def resource_of(key: str) -> tuple[str, str | None]:
    """(resource, namespace or None) of an etcd key `/registry/<resource>/[<ns>/]<name>`; a
    group's resources are `<plural>.<group>`, Services and Endpoints share `/registry/services/`."""
    parts = key.split("/")[2:]
    if not parts:
        return key, None
    if "." in parts[0] and len(parts) > 1:
        resource, rest = f"{parts[1]}.{parts[0]}", parts[2:]
    elif parts[0] == "services" and len(parts) > 1:
        resource, rest = ("services" if parts[1] == "specs" else parts[1]), parts[2:]
    else:
        resource, rest = parts[0], parts[1:]
    return resource, (rest[0] if len(rest) == 2 else None)


def etcd_keys(port: str, namespace: str) -> tuple[Counter[str], Counter[str]]:
    """Keys per resource in etcd: all, and those in `namespace`."""

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    response = httpx.post(
        f"http://127.0.0.1:{port}/v3/kv/range",
        json={"key": b64("/registry/"), "range_end": b64("/registry0"), "keys_only": True},
        timeout=60,
    )
    response.raise_for_status()
    everywhere: Counter[str] = Counter()
    mine: Counter[str] = Counter()
    for kv in response.json().get("kvs", []):
        resource, ns = resource_of(base64.b64decode(kv["key"]).decode(errors="replace"))
        everywhere[resource] += 1
        if ns == namespace:
            mine[resource] += 1
    return everywhere, mine


def event_ttl() -> str:
    """The dev cluster's API server `--event-ttl` (1h when not given), from its command line."""
    try:
        pid = int((STATE / "pids" / "kube-apiserver.pid").read_text().strip())
        for arg in psutil.Process(pid).cmdline():
            if arg.startswith("--event-ttl="):
                return arg.split("=", 1)[1]
    except (OSError, ValueError, psutil.Error):
        return "unknown"
    return "1h (default)"


def sample(label: str, namespace: str, operator: psutil.Process, t0: float) -> dict[str, Any]:
    everywhere, mine = etcd_keys(os.environ.get("LLMOPS_ETCD_PORT", "12379"), namespace)
    rss = operator.memory_info().rss
    return {
        "at": label,
        "wall_s": round(time.monotonic() - t0, 1),
        "etcd_keys": sum(everywhere.values()),
        "etcd_keys_without_events": sum(v for k, v in everywhere.items() if k != EVENTS),
        "events": everywhere[EVENTS],
        "namespace_keys": dict(sorted(mine.items())),
        "all_keys": dict(sorted(everywhere.items())),
        "operator_rss_mib": round(rss / 2**20, 1),
        "operator_cpu_s": round(cpu_seconds(operator), 1),
        "harness_cpu_s": round(cpu_seconds(psutil.Process()), 1),
        "cluster_cpu_s": component_cpu(),
        "load_avg": [round(x, 1) for x in os.getloadavg()],
    }


def retrying(call: Callable[..., Any], *args: Any, tries: int = 10) -> Any:
    """The harness's own API calls survive a busy or restarting API server (the shared machine)."""
    for attempt in range(tries):
        try:
            return call(*args)
        except (k8s.ApiException, urllib3.exceptions.HTTPError) as exc:
            status = getattr(exc, "status", 0) or 0
            if attempt == tries - 1 or (400 <= status < 500 and status not in (409, 429)):
                raise
            time.sleep(min(2.0 * (attempt + 1), 10.0))
    raise AssertionError("unreachable")


def wait_all(
    custom: k8s.CustomObjectsApi,
    namespace: str,
    names: list[str],
    done: Callable[[dict[str, Any]], bool],
    timeout: float,
) -> float:
    start = time.monotonic()
    pending = set(names)
    while pending:
        if time.monotonic() - start > timeout:
            raise SystemExit(f"timed out after {timeout}s; still pending: {sorted(pending)[:5]}")
        listed = retrying(custom.list_namespaced_custom_object, GROUP, VERSION, namespace, "models")
        pending -= {m["metadata"]["name"] for m in listed["items"] if done(m)}
        time.sleep(3.0)
    return time.monotonic() - start


def stable_revisions(custom: k8s.CustomObjectsApi, namespace: str) -> dict[str, str]:
    items = retrying(custom.list_namespaced_custom_object, GROUP, VERSION, namespace, "models")["items"]
    return {m["metadata"]["name"]: (m.get("status") or {}).get("stableRevision") or "" for m in items}


def report(result: dict[str, Any]) -> None:
    samples = result["samples"]
    print(f"\nevent TTL: {result['event_ttl']}; wall time {result['wall_s']:.0f}s")
    header = f"{'':34}" + "".join(f"{s['at']:>12}" for s in samples)
    print(header)
    rows = ("wall_s", "etcd_keys", "etcd_keys_without_events", "events", "operator_rss_mib", "operator_cpu_s")
    for key in rows:
        print(f"{key:34}" + "".join(f"{s[key]:>12}" for s in samples))
    resources = sorted({k for s in samples for k in s["namespace_keys"]})
    for resource in resources:
        print(f"  ns {resource:31}" + "".join(f"{s['namespace_keys'].get(resource, 0):>12}" for s in samples))
    print(f"{'harness_cpu_s':34}" + "".join(f"{s['harness_cpu_s']:>12}" for s in samples))
    for name in COMPONENTS:
        print(f"  cpu {name:30}" + "".join(f"{s['cluster_cpu_s'].get(name, 0):>12}" for s in samples))
    flat = result["flat"]
    print(f"\nflat (after {flat['from']} vs after {flat['to']}, Events apart): {flat['equal']}")
    if flat["differences"]:
        print("  differences:", flat["differences"])


def flatness(samples: list[dict[str, Any]], settled: int) -> dict[str, Any]:
    """The soak namespace's keys per resource, Events apart, after round `settled` (the first
    sampled round at or past it) vs after the last: before it retention is still filling up
    (history plus the runs in flight), and other namespaces are not the soak's."""
    rounds = [s for s in samples if s["at"].startswith("r")]
    after = [s for s in rounds if int(s["at"].removeprefix("r")) >= settled]
    if len(after) < 2:
        return {"from": None, "to": None, "equal": None, "differences": {}}
    first, last = after[0]["namespace_keys"], after[-1]["namespace_keys"]
    differences = {
        k: last.get(k, 0) - first.get(k, 0)
        for k in sorted({*first, *last})
        if k != EVENTS and last.get(k, 0) != first.get(k, 0)
    }
    return {
        "from": after[0]["at"],
        "to": after[-1]["at"],
        "equal": not differences,
        "differences": differences,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--rollouts", type=int, default=5)
    parser.add_argument("--sample-every", type=int, default=5, help="rounds between samples")
    parser.add_argument("--eval-run-history", type=int, default=3, help="operator --eval-run-history")
    parser.add_argument(
        "--revision-history", type=int, default=3, help="Models' rollout.revisionHistoryLimit"
    )
    parser.add_argument("--eval-slots", type=int, default=4, help="eval runs at once (job runner)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per rollout round")
    parser.add_argument("--keep", action="store_true", help="leave the namespace for a look")
    parser.add_argument("--steps", choices=sorted(STEPS), default="gate", help="canary steps")
    args = parser.parse_args(argv)

    k8s_config.load_kube_config()
    api = k8s.ApiClient()
    core, custom = k8s.CoreV1Api(api), k8s.CustomObjectsApi(api)
    namespace = f"soak-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    pv = weights_volume(core, namespace)
    stub = OpenAIStub(port=0, defaultAnswer="Hello! How can I help?").start()
    kubeconfig = os.environ.get("KUBECONFIG", str(STATE / "kubeconfig"))
    runner = JobRunner(
        api, kubeconfig, namespace, interval=1.0, fork=True, max_running=args.eval_slots
    ).start()
    env = {
        **os.environ,
        "LLMOPS_METRICS_PORT": "0",
        "LLMOPS_HEALTH_PORT": "0",
        "LLMOPS_EVAL_RUN_HISTORY": str(args.eval_run_history),
        "LLMOPS_PROMETHEUS_URL": f"http://127.0.0.1:{os.environ.get('LLMOPS_PROMETHEUS_PORT', '19090')}",
        "LLMOPS_EVAL_ENDPOINT_TEMPLATE": f"http://127.0.0.1:{stub.port}/v1",
        "LLMOPS_LEADER_ELECTION_ID": f"llmops-{namespace}",
        "LLMOPS_LEADER_ELECTION_NAMESPACE": "default",
        "HF_HUB_OFFLINE": "1",
    }
    (STATE / "logs").mkdir(parents=True, exist_ok=True)
    log = open(STATE / "logs" / f"soak-{namespace}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmops_operator.cli.main", "run", "--namespace", namespace],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    names = [f"m{i:03d}" for i in range(args.models)]

    def result() -> dict[str, Any]:
        return {
            "models": args.models,
            "rollouts": args.rollouts,
            "steps": args.steps,
            "eval_slots": args.eval_slots,
            "eval_run_history": args.eval_run_history,
            "revision_history": args.revision_history,
            "event_ttl": event_ttl(),
            "wall_s": round(time.monotonic() - t0, 1),
            "rounds": rounds,
            "samples": samples,
            "flat": flatness(samples, max(args.eval_run_history, args.revision_history) + 2),
        }

    def save() -> dict[str, Any]:
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = result()
        (RESULTS / "soak.json").write_text(json.dumps(out, indent=2))
        return out

    samples: list[dict[str, Any]] = []
    rounds: list[dict[str, Any]] = []
    t0 = time.monotonic()
    try:
        for version in range(1, args.rollouts + 2):
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, "promptversions", prompt_version(version)
            )
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "evalgates", gate())
        for name in names:
            body = model(name, 1, args.revision_history, STEPS[args.steps])
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "models", body)
        ready = wait_all(
            custom, namespace, names, lambda m: (m.get("status") or {}).get("phase") == "Ready", args.timeout
        )
        operator = psutil.Process(proc.pid)
        samples.append(sample("start", namespace, operator, t0))
        print(f"{args.models} Models Ready in {ready:.0f}s; {samples[-1]['namespace_keys']}", flush=True)
        for r in range(1, args.rollouts + 1):
            before = stable_revisions(custom, namespace)
            patch = {"spec": {"prompts": [{"name": PROMPT, "version": r + 1}]}}
            for name in names:
                retrying(
                    custom.patch_namespaced_custom_object, GROUP, VERSION, namespace, "models", name, patch
                )

            def promoted(m: dict[str, Any], before: dict[str, str] = before) -> bool:
                status = m.get("status") or {}
                stable = status.get("stableRevision") or ""
                return (
                    stable != before.get(m["metadata"]["name"], "")
                    and not status.get("canaryRevision")
                    and status.get("phase") == "Ready"
                )

            took = wait_all(custom, namespace, names, promoted, args.timeout)
            rounds.append({"rollout": r, "seconds": round(took, 1)})
            print(f"rollout {r}/{args.rollouts}: all {args.models} promoted in {took:.0f}s", flush=True)
            if r % args.sample_every == 0 or r == args.rollouts:
                samples.append(sample(f"r{r}", namespace, operator, t0))
                save()  # a soak stopped early still leaves its samples so far
                s = samples[-1]
                print(
                    f"  keys {s['etcd_keys']} (events {s['events']}), RSS {s['operator_rss_mib']} MiB, "
                    f"operator CPU {s['operator_cpu_s']} s; {s['namespace_keys']}",
                    flush=True,
                )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        runner.stop()
        stub.stop()
        if not args.keep:
            core.delete_namespace(namespace, propagation_policy="Background")
            core.delete_persistent_volume(pv)
    outcome = save()
    report(outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
