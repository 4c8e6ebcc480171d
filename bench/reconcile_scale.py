"""Reconcile at scale: apply N Models at once and measure how fast the operator makes them Ready.

For each N (default 100 and 500), in a fresh namespace on the dev cluster (`bash hack/cluster/up.sh`):
start `llmops-operator run --namespace <ns>` as a subprocess, create N small Models concurrently,
and measure

- the time from the last create until every Model shows `status.phase: Ready`,
- each Model's create-to-Ready latency (p50, p99, max), from a watch on Models,
- the operator's peak RSS (psutil, process plus children, sampled every 0.2 s),
- the API requests the operator's reconciles made (`llmops_api_requests` on its metrics
  endpoint; kopf's own list/watch requests are not counted there).

Goals (issue 10, at 500 and 1000 Models): <= 20 ms of operator CPU per Model from create to
Ready; 1000 Models all Ready within 30 s of the last apply; peak RSS <= 200 MiB at 1000; at rest
(`--idle S`) <= 1% of one core and <= 1 API request per Model per 10 minutes.

The dev cluster has 40 GPUs, so only `--gpu-models` Models (default 12) are vLLM with one GPU,
spread over H100, A100 and L4. The rest are ONNX Runtime on CPU (`gpus: 0`, `pvc://models/bench`,
tiny CPU and memory requests) with a toleration for the GPU taint, so they spread over all seven
KWOK nodes (250 pods each); the CPU node alone would hold only 250. The PVC `models` is bound to a
hostPath PV created for the run, so the scheduler's volume check passes.

    KUBECONFIG=.cluster/kubeconfig ~/.cache/llmops-operator/venv/bin/python \
        bench/reconcile_scale.py --counts 100,500

`--cprofile DIR` runs the operator under cProfile in every thread (reconciles run in worker
threads, which `python -m cProfile` would miss), timing each thread's CPU (`time.thread_time`,
so waiting for the API server or the GIL does not count), and writes DIR/operator-<N>.prof.
Results: a table on stdout and JSON in bench/results/reconcile_scale.json. The namespace, the PV
and the operator are removed at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.rest import ApiException

from cluster_cpu import component_cpu, used_since

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
GROUP, VERSION, PLURAL = "llmops.dev", "v1alpha1", "models"
GPU_PRODUCTS = ("NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB", "NVIDIA-L4")
GOAL_READY_SECONDS = 30.0
GOAL_RSS_MIB = 200.0
GOAL_COUNT = 1000
GOAL_CPU_MS_PER_MODEL = 20.0
GOAL_CPU_COUNT = 500
GOAL_IDLE_CORE_PERCENT = 1.0
GOAL_IDLE_REQUESTS_PER_MODEL_10MIN = 1.0
GOAL_LARGE_COUNT = 5000
GOAL_LARGE_RSS_MIB = 400.0
EXTRA_NODE_PODS = 1000
"""Pods per extra CPU node (`--extra-cpu-nodes`): the seven dev nodes hold 1750 pods in all."""
# Experiment only (--operator-workers): the reconcile worker count, patched in before kopf starts.
WORKERS_PATCH = """
import os
if os.environ.get("LLMOPS_BENCH_WORKERS"):
    import llmops_operator.handlers.wiring as runtime
    runtime.WORKERS = int(os.environ["LLMOPS_BENCH_WORKERS"])
"""
PLAIN_BOOTSTRAP = (
    WORKERS_PATCH
    + """
import sys
from llmops_operator.cli.main import main
sys.exit(main(sys.argv[1:]))
"""
)
PROFILE_BOOTSTRAP = (
    WORKERS_PATCH
    + """
import cProfile, pstats, sys, threading, time
from llmops_operator.cli.main import main

out = sys.argv.pop(1)
# per-thread CPU time, not wall time: waiting on a socket or the GIL costs nothing here
profiles = [cProfile.Profile(time.thread_time)]
_bootstrap_inner = threading.Thread._bootstrap_inner

def _profiled_bootstrap_inner(self):
    prof = cProfile.Profile(time.thread_time)
    profiles.append(prof)
    prof.enable()
    try:
        _bootstrap_inner(self)
    finally:
        prof.disable()

threading.Thread._bootstrap_inner = _profiled_bootstrap_inner
profiles[0].enable()
try:
    main(sys.argv[1:])
finally:
    profiles[0].disable()
    stats = None
    for prof in profiles:
        prof.create_stats()
        if prof.stats:
            stats = pstats.Stats(prof) if stats is None else stats.add(prof)
    if stats is not None:
        stats.dump_stats(out)
"""
)


@dataclass
class RunResult:
    count: int
    namespace: str
    gpu_models: int
    operator_workers: int | None
    apply_seconds: float
    ready: int
    all_ready_after_last_apply_seconds: float | None
    latency_p50_seconds: float | None
    latency_p99_seconds: float | None
    latency_max_seconds: float | None
    peak_rss_mib: float
    baseline_rss_mib: float
    api_requests: int | None
    api_requests_after_settle: int | None
    reconciles: dict[str, float] = field(default_factory=dict)
    reconcile_seconds_sum: float | None = None
    operator_log: str = ""
    goals: dict[str, bool] = field(default_factory=dict)
    """Issue 10's goals that apply at this count: name -> met."""
    load_average: float | None = None
    """The machine's 1-minute load average when all were Ready (the figures' context)."""
    cpu_seconds_to_ready: float | None = None
    """Operator CPU (user + system) from the first create until every Model is Ready."""
    cpu_ms_per_model: float | None = None
    idle: dict[str, Any] = field(default_factory=dict)
    """At rest after all Ready (`--idle`): CPU and API requests over the window, per Model."""
    api_requests_by_resource: dict[str, float] = field(default_factory=dict)
    cluster_cpu_seconds: dict[str, float] = field(default_factory=dict)
    """CPU-seconds of each cluster process from the first create until all Ready (`cluster_cpu.py`)."""


@dataclass
class Idle:
    seconds: float
    cpu_seconds: float
    requests: float
    passes: float

    by_resource: dict[str, float] = field(default_factory=dict)

    def per_model(self, count: int) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 1),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "core_percent": round(100 * self.cpu_seconds / self.seconds, 3),
            "cpu_seconds_per_model_hour": round(self.cpu_seconds / count * 3600 / self.seconds, 4),
            "api_requests": self.requests,
            "api_requests_per_model_per_10min": round(self.requests / count * 600 / self.seconds, 4),
            "passes": self.passes,
            "passes_per_model_per_10min": round(self.passes / count * 600 / self.seconds, 4),
            "api_requests_by_resource": self.by_resource,
        }


def measure_idle(operator: Operator, sampler: RssSampler, seconds: float) -> Idle:
    """CPU, API requests and reconcile passes of the operator over `seconds` with nothing changing."""
    quiet = wait_quiet(operator)
    print(f"  at rest ({quiet:.0f}s until no request for 10s): measuring {seconds:.0f}s of idle", flush=True)
    before = scrape(operator.metrics_url, tries=5) or {}
    cpu = sampler.cpu_seconds()
    time.sleep(seconds)
    after = scrape(operator.metrics_url, tries=5) or {}
    cpu = sampler.cpu_seconds() - cpu
    return Idle(
        seconds=seconds,
        cpu_seconds=cpu,
        requests=after.get("llmops_api_requests", 0) - before.get("llmops_api_requests", 0),
        passes=_total(after, "llmops_reconciles_total{") - _total(before, "llmops_reconciles_total{"),
        by_resource={k: v - before.get(k, 0) for k, v in by_resource(after).items() if v - before.get(k, 0)},
    )


def by_resource(metrics: dict[str, float]) -> dict[str, float]:
    """The operator's API requests by verb and resource (`llmops_api_requests_by_resource`)."""
    return {k: v for k, v in metrics.items() if k.startswith("llmops_api_requests_by_resource{")}


def wait_quiet(operator: Operator, quiet: float = 10.0, limit: float = 300.0) -> float:
    """Seconds until the operator made no API request for `quiet` seconds (Events decided while
    Models became Ready are posted off the reconcile path and may still be draining)."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < limit:
        count = (scrape(operator.metrics_url, tries=5) or {}).get("llmops_api_requests")
        if count is not None and count == last:
            break
        last = count
        time.sleep(quiet)
    return time.monotonic() - started


def _total(metrics: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in metrics.items() if k.startswith(prefix))


# ---------------------------------------------------------------------------------------------
# cluster objects
# ---------------------------------------------------------------------------------------------


def model_body(index: int, gpu_models: int) -> dict[str, Any]:
    """A small Model: vLLM on one GPU for the first `gpu_models`, ONNX Runtime on CPU after."""
    name = f"m{index:04d}"
    if index < gpu_models:
        spec: dict[str, Any] = {
            "source": {"uri": "hf://bench/tiny-llm"},
            "engine": {"type": "vllm"},
            "resources": {
                "gpus": 1,
                "gpuProducts": [GPU_PRODUCTS[index % len(GPU_PRODUCTS)]],
                "cpu": "100m",
                "memory": "256Mi",
            },
        }
    else:
        spec = {
            "source": {"uri": "pvc://models/bench"},
            "engine": {"type": "onnxruntime"},
            "resources": {"gpus": 0, "cpu": "10m", "memory": "64Mi"},
            "placement": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]},
        }
    spec.update(replicas=1, cache={"enabled": False}, rollout={"strategy": "RollingUpdate"})
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Model", "metadata": {"name": name}, "spec": spec}


@contextmanager
def bench_namespace(core: k8s.CoreV1Api, count: int) -> Iterator[str]:
    """A fresh namespace with a bound PVC `models`; deleted (with its PV) on exit."""
    namespace = f"bench-scale-{count}-{uuid.uuid4().hex[:6]}"
    pv_name = f"{namespace}-models"
    core.create_namespace(
        {"metadata": {"name": namespace, "labels": {"llmops.dev/bench": "reconcile-scale"}}}
    )
    try:
        core.create_persistent_volume(
            {
                "metadata": {"name": pv_name, "labels": {"llmops.dev/bench": "reconcile-scale"}},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadOnlyMany", "ReadWriteMany"],
                    "hostPath": {"path": "/tmp/llmops-bench-models"},
                    "storageClassName": "",
                    "persistentVolumeReclaimPolicy": "Delete",
                    "claimRef": {"namespace": namespace, "name": "models"},
                },
            }
        )
        core.create_namespaced_persistent_volume_claim(
            namespace,
            {
                "metadata": {"name": "models"},
                "spec": {
                    "accessModes": ["ReadOnlyMany"],
                    "storageClassName": "",
                    "volumeName": pv_name,
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )
        wait_until(
            lambda: (
                core.read_namespaced_persistent_volume_claim(namespace=namespace, name="models").status.phase
                == "Bound"
            ),
            60,
            "PVC models to bind",
        )
        yield namespace
    finally:
        _delete_namespace(core, namespace, pv_name)


def _delete_namespace(core: k8s.CoreV1Api, namespace: str, pv_name: str) -> None:
    """Delete the run's namespace and PV, retrying while the API server is unreachable."""
    print(f"  cleanup: deleting namespace {namespace} and PV {pv_name}", flush=True)

    def request(call: Any, *args: Any, **kwargs: Any) -> bool:
        """True once the call succeeded or the object is gone."""
        try:
            call(*args, **kwargs)
        except ApiException as exc:
            return exc.status == 404
        except Exception:  # connection refused while someone restarts the dev cluster
            return False
        return True

    def deleted() -> bool:
        ns_done = request(core.delete_namespace, namespace, propagation_policy="Background")
        return request(core.delete_persistent_volume, pv_name) and ns_done

    def gone() -> bool:
        try:
            core.read_namespace(namespace)
        except ApiException as exc:
            return exc.status == 404
        except Exception:
            return False
        return False

    try:  # pods of this run would otherwise take node capacity from the next one
        wait_until(deleted, 120, f"the API server to accept deleting {namespace}")
        wait_until(gone, 300, f"namespace {namespace} to be deleted")
    except TimeoutError as exc:
        print(f"  cleanup: {exc}; delete it by hand", file=sys.stderr)


@contextmanager
def extra_cpu_nodes(core: k8s.CoreV1Api, count: int) -> Iterator[list[str]]:
    """`count` more KWOK CPU nodes (the dev cluster's KWOK manages nodes with its annotation),
    deleted on exit."""
    names = [f"kwok-bench-cpu-{i}" for i in range(count)]
    capacity = {"cpu": "256", "memory": "2Ti", "pods": str(EXTRA_NODE_PODS), "ephemeral-storage": "2Ti"}
    try:
        for name in names:
            core.create_node(
                {
                    "metadata": {
                        "name": name,
                        "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                        "labels": {
                            "type": "kwok",
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                            "llmops.dev/bench": "reconcile-scale",
                        },
                    },
                    "status": {"capacity": capacity, "allocatable": capacity},
                }
            )
        if names:
            print(f"added {len(names)} KWOK CPU nodes ({EXTRA_NODE_PODS} pods each)", flush=True)
        yield names
    finally:
        for name in names:
            try:
                core.delete_node(name)
            except ApiException as exc:
                if exc.status != 404:
                    print(f"  could not delete node {name}: {exc.reason}", flush=True)


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    """Poll `predicate` every 0.2 s until it holds; a TimeoutError names `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def create_burst(
    custom: Any,
    namespace: str,
    body_of: Any,
    count: int,
    concurrency: int,
    resource: tuple[str, str, str] = (GROUP, VERSION, PLURAL),
) -> tuple[dict[str, float], float]:
    """Create `count` custom objects (`body_of(index)`; `resource` is group, version, plural)
    at once, `concurrency` at a time: each one's creation time by name, and when the burst
    started (both monotonic)."""
    created_at: dict[str, float] = {}

    def create(index: int) -> None:
        body = body_of(index)
        group, version, plural = resource
        custom.create_namespaced_custom_object(group, version, namespace, plural, body)
        created_at[body["metadata"]["name"]] = time.monotonic()

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(create, range(count)))
    return created_at, started


# ---------------------------------------------------------------------------------------------
# the operator process
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Operator:
    process: subprocess.Popen[bytes]
    metrics_url: str
    log_path: Path


@contextmanager
def operator_process(
    namespace: str, kubeconfig: str, log_path: Path, profile: Path | None, workers: int | None = None
) -> Iterator[Operator]:
    """`llmops-operator run` limited to `namespace`; stopped with SIGINT (then SIGKILL) on exit."""
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "LLMOPS_METRICS_PORT": str(port),
        "LLMOPS_HEALTH_PORT": "0",
        "LLMOPS_LEADER_ELECTION_ID": f"llmops-{uuid.uuid4().hex[:8]}",  # a Lease of its own
        "LLMOPS_METRICS_ADDRESS": "127.0.0.1",
        "LLMOPS_PROMETHEUS_URL": f"http://127.0.0.1:{os.environ.get('LLMOPS_PROMETHEUS_PORT', '19090')}",
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    if workers:
        env["LLMOPS_BENCH_WORKERS"] = str(workers)
    run_args = ["run", "--namespace", namespace]
    if profile is not None:
        command = [sys.executable, "-c", PROFILE_BOOTSTRAP, str(profile), *run_args]
    elif workers:
        command = [sys.executable, "-c", PLAIN_BOOTSTRAP, *run_args]
    else:
        command = [sys.executable, "-m", "llmops_operator.cli.main", *run_args]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    operator = Operator(process, f"http://127.0.0.1:{port}/metrics", log_path)
    try:
        wait_until(
            lambda: process.poll() is not None or scrape(operator.metrics_url) is not None,
            60,
            "the operator's metrics endpoint",
        )
        if process.poll() is not None:
            raise RuntimeError(f"the operator exited with {process.returncode}; see {log_path}")
        yield operator
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def scrape(url: str, tries: int = 1) -> dict[str, float] | None:
    """Prometheus text exposition as {series: value}; None when the endpoint does not answer
    (`tries` attempts, 10 s each after the first: a loaded machine answers late)."""
    for attempt in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=2 if attempt == 0 else 10) as response:
                text = response.read().decode()
            break
        except OSError:
            if attempt == tries - 1:
                return None
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            try:
                values[series] = float(value)
            except ValueError:
                continue
    return values


class RssSampler(threading.Thread):
    """Peak resident memory of a process tree, sampled every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.last = 0
        self._halt = threading.Event()

    def cpu_seconds(self) -> float:
        """User + system CPU of the process tree so far."""
        total = 0.0
        try:
            for proc in [self.root, *self.root.children(recursive=True)]:
                try:
                    times = proc.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                total += times.user + times.system
        except psutil.NoSuchProcess:
            return 0.0
        return total

    def sample(self) -> int:
        total = 0
        try:
            for proc in [self.root, *self.root.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
        except psutil.NoSuchProcess:
            return 0
        return total

    def run(self) -> None:
        while not self._halt.is_set():
            self.last = self.sample()
            self.peak = max(self.peak, self.last)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


# ---------------------------------------------------------------------------------------------
# watching objects
# ---------------------------------------------------------------------------------------------


class FirstSeen(threading.Thread):
    """Records the first time each object of one namespaced collection is seen meeting
    `predicate` (a list, then a watch from its resourceVersion; relisted when the watch breaks).
    `resource` is (group, version, plural): custom resources, or built-in ones such as
    ("apps", "v1", "deployments"), as plain dicts."""

    def __init__(
        self,
        custom: k8s.CustomObjectsApi,
        namespace: str,
        predicate: Callable[[dict[str, Any]], bool],
        resource: tuple[str, str, str] = (GROUP, VERSION, PLURAL),
    ) -> None:
        super().__init__(daemon=True)
        self.custom, self.namespace, self.predicate, self.resource = custom, namespace, predicate, resource
        self.seen_at: dict[str, float] = {}
        self.changed = threading.Condition()
        self._halt = threading.Event()
        self.started = threading.Event()

    def _see(self, obj: dict[str, Any], seen: float) -> None:
        if self.predicate(obj):
            with self.changed:
                if obj["metadata"]["name"] not in self.seen_at:
                    self.seen_at[obj["metadata"]["name"]] = seen
                    self.changed.notify_all()

    def run(self) -> None:
        list_call = self.custom.list_namespaced_custom_object
        group, version, plural = self.resource
        while not self._halt.is_set():
            try:
                listing = list_call(group, version, self.namespace, plural)
                seen = time.monotonic()
                for obj in listing.get("items", []):
                    self._see(obj, seen)
                self.started.set()
                stream = k8s_watch.Watch().stream(
                    list_call,
                    group,
                    version,
                    self.namespace,
                    plural,
                    resource_version=listing["metadata"]["resourceVersion"],
                    timeout_seconds=60,
                )
                for event in stream:
                    self._see(event["object"], time.monotonic())
                    if self._halt.is_set():
                        return
            except Exception as exc:  # a broken watch is relisted; the list catches up
                if not self._halt.is_set():
                    print(f"  watch: {exc!r}; relisting", file=sys.stderr)
                    time.sleep(0.2)

    def wait_for(self, names: set[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not names <= self.seen_at.keys():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 1.0))
        return True

    def stop(self) -> None:
        self._halt.set()


def model_ready(obj: dict[str, Any]) -> bool:
    return (obj.get("status") or {}).get("phase") == "Ready"


# ---------------------------------------------------------------------------------------------
# one run
# ---------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def run_once(
    args: argparse.Namespace, count: int, core: k8s.CoreV1Api, custom: k8s.CustomObjectsApi
) -> RunResult:
    gpu_models = min(args.gpu_models, count)
    with bench_namespace(core, count) as namespace:
        print(f"N={count}: namespace {namespace}", flush=True)
        log_path = RESULTS / f"reconcile_scale-operator-{count}.log"
        profile = Path(args.cprofile) / f"operator-{count}.prof" if args.cprofile else None
        if profile is not None:
            profile.parent.mkdir(parents=True, exist_ok=True)
        with operator_process(
            namespace, args.kubeconfig, log_path, profile, args.operator_workers
        ) as operator:
            sampler = RssSampler(operator.process.pid)
            sampler.start()
            watcher = FirstSeen(custom, namespace, model_ready)
            watcher.start()
            try:
                watcher.started.wait(30)
                time.sleep(1.0)  # kopf lists and starts its watches after the metrics endpoint is up
                baseline = sampler.sample()
                cpu_before = sampler.cpu_seconds()
                cluster_cpu = component_cpu()
                created_at, started = create_burst(
                    custom, namespace, lambda i: model_body(i, gpu_models), count, args.apply_concurrency
                )
                last_apply = max(created_at.values())
                apply_seconds = last_apply - started
                print(f"  applied {count} Models in {apply_seconds:.1f}s; waiting for Ready", flush=True)
                all_ready = watcher.wait_for(set(created_at), args.timeout)
                done = time.monotonic()
                cpu_at_ready = sampler.cpu_seconds()
                cluster_cpu_at_ready = used_since(cluster_cpu)
                load_average = os.getloadavg()[0]
                metrics_at_ready = scrape(operator.metrics_url, tries=3) or {}
                time.sleep(args.settle)
                metrics_settled = scrape(operator.metrics_url, tries=3) or {}
                idle = measure_idle(operator, sampler, args.idle) if args.idle > 0 else None
            finally:
                watcher.stop()
                sampler.stop()
            if operator.process.poll() is not None:
                print(f"  the operator exited early ({operator.process.returncode}); see {log_path}")
        ready_at = dict(watcher.seen_at)
    latencies = [ready_at[name] - created_at[name] for name in created_at if name in ready_at]
    requests = metrics_at_ready.get("llmops_api_requests")
    settled_requests = metrics_settled.get("llmops_api_requests")
    last_ready = max((ready_at[n] for n in created_at if n in ready_at), default=None)
    result = RunResult(
        count=count,
        namespace=namespace,
        gpu_models=gpu_models,
        operator_workers=args.operator_workers,
        apply_seconds=round(apply_seconds, 3),
        ready=len(latencies),
        all_ready_after_last_apply_seconds=round(last_ready - last_apply, 3)
        if all_ready and last_ready is not None
        else None,
        latency_p50_seconds=_round(percentile(latencies, 50)),
        latency_p99_seconds=_round(percentile(latencies, 99)),
        latency_max_seconds=_round(max(latencies, default=None)),
        peak_rss_mib=round(sampler.peak / 2**20, 1),
        baseline_rss_mib=round(baseline / 2**20, 1),
        api_requests=int(requests) if requests is not None else None,
        api_requests_after_settle=int(settled_requests) if settled_requests is not None else None,
        reconciles={
            series.split('"')[1]: value
            for series, value in metrics_settled.items()
            if series.startswith("llmops_reconciles_total{")
        },
        reconcile_seconds_sum=_round(metrics_settled.get("llmops_reconcile_duration_seconds_sum")),
        operator_log=str(log_path.relative_to(REPO)),
        cpu_seconds_to_ready=round(cpu_at_ready - cpu_before, 2),
        cpu_ms_per_model=round((cpu_at_ready - cpu_before) * 1000 / count, 1),
        api_requests_by_resource=by_resource(metrics_at_ready),
        cluster_cpu_seconds=cluster_cpu_at_ready,
    )
    if idle is not None:
        result.idle = idle.per_model(count)
    if not all_ready:
        print(f"  only {result.ready}/{count} Ready after {done - last_apply:.0f}s", flush=True)
    result.load_average = round(load_average, 1)
    result.goals = goals(result)
    return result


def goals(result: RunResult) -> dict[str, bool]:
    """Issue 10's goals that apply at the run's count (CPU from 500 Models, the rest at 1000)."""
    out: dict[str, bool] = {}
    if result.count >= GOAL_CPU_COUNT and result.cpu_ms_per_model is not None:
        out[f"cpu<={GOAL_CPU_MS_PER_MODEL:.0f}ms/Model"] = result.cpu_ms_per_model <= GOAL_CPU_MS_PER_MODEL
    if result.count >= GOAL_COUNT:
        ready = result.all_ready_after_last_apply_seconds
        out[f"ready<={GOAL_READY_SECONDS:.0f}s"] = ready is not None and ready <= GOAL_READY_SECONDS
        if result.count >= GOAL_LARGE_COUNT:
            out[f"rss<={GOAL_LARGE_RSS_MIB:.0f}MiB@{GOAL_LARGE_COUNT}"] = (
                result.peak_rss_mib <= GOAL_LARGE_RSS_MIB
            )
        else:
            out[f"rss<={GOAL_RSS_MIB:.0f}MiB"] = result.peak_rss_mib <= GOAL_RSS_MIB
        if result.idle:
            out[f"idle<={GOAL_IDLE_CORE_PERCENT:g}%core"] = (
                result.idle["core_percent"] <= GOAL_IDLE_CORE_PERCENT
            )
            out[f"idle<={GOAL_IDLE_REQUESTS_PER_MODEL_10MIN:g}req/Model/10min"] = (
                result.idle["api_requests_per_model_per_10min"] <= GOAL_IDLE_REQUESTS_PER_MODEL_10MIN
            )
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def print_aligned(headers: list[str], rows: list[list[str]]) -> None:
    """A table with right-aligned columns, after a blank line."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    print()
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def print_table(results: list[RunResult]) -> None:
    def fmt(value: Any, suffix: str = "") -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.2f}{suffix}"
        return f"{value}{suffix}"

    headers = [
        "N", "apply s", "ready", "all Ready s", "p50 s", "p99 s", "max s",
        "RSS MiB", "API req", "req/Model", "reconciles", "CPU ms/Model", "idle %core",
        "idle req/Model/10min", "load", "goals",
    ]  # fmt: skip
    rows = []
    for r in results:
        missed = [name for name, met in r.goals.items() if not met]
        goal = "-" if not r.goals else ("met" if not missed else "MISSED " + ",".join(missed))
        per_model = r.api_requests / r.count if r.api_requests is not None else None
        rows.append(
            [
                fmt(r.count), fmt(r.apply_seconds), f"{r.ready}/{r.count}",
                fmt(r.all_ready_after_last_apply_seconds), fmt(r.latency_p50_seconds),
                fmt(r.latency_p99_seconds), fmt(r.latency_max_seconds), fmt(r.peak_rss_mib),
                fmt(r.api_requests), fmt(per_model), fmt(int(sum(r.reconciles.values()))),
                fmt(r.cpu_ms_per_model), fmt(r.idle.get("core_percent")),
                fmt(r.idle.get("api_requests_per_model_per_10min")), fmt(r.load_average), goal,
            ]
        )  # fmt: skip
    print_aligned(headers, rows)
    for r in results:
        if r.cluster_cpu_seconds:
            used = ", ".join(f"{name} {cpu:.1f}" for name, cpu in sorted(r.cluster_cpu_seconds.items()))
            print(f"N={r.count}: cluster CPU-seconds from the first create to all Ready: {used}")
    print(
        f"\nall Ready s: last create -> every Model phase Ready; p50/p99/max: per-Model create -> Ready."
        f"\nRSS: operator peak (process + children, 0.2 s samples). API req: llmops_api_requests at"
        f" all-Ready (reconcile requests only; the watches' LIST/WATCH requests are not counted)."
        f"\nCPU ms/Model: operator CPU (user + system) from the first create to all Ready, per Model."
        f"\nidle: with --idle, at rest after all Ready (% of one core; API requests per Model per 10 min)."
        f"\nGoals: CPU <= {GOAL_CPU_MS_PER_MODEL:.0f} ms/Model at N>={GOAL_CPU_COUNT}; at N>={GOAL_COUNT}"
        f" all Ready <= {GOAL_READY_SECONDS:.0f}s, RSS <= {GOAL_RSS_MIB:.0f} MiB"
        f" (<= {GOAL_LARGE_RSS_MIB:.0f} MiB at N>={GOAL_LARGE_COUNT}),"
        f" idle <= {GOAL_IDLE_CORE_PERCENT:g}% of a"
        f" core and <= {GOAL_IDLE_REQUESTS_PER_MODEL_10MIN:g} request per Model per 10 min."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", default="100,500", help="comma-separated Model counts (default 100,500)")
    parser.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG") or str(REPO / ".cluster" / "kubeconfig"),
        help="dev cluster kubeconfig (default: $KUBECONFIG or .cluster/kubeconfig)",
    )
    parser.add_argument("--gpu-models", type=int, default=12, help="vLLM Models with one GPU (default 12)")
    parser.add_argument("--apply-concurrency", type=int, default=32, help="threads creating Models")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for all Ready")
    parser.add_argument(
        "--settle", type=float, default=5, help="seconds after all Ready before the last scrape"
    )
    parser.add_argument(
        "--idle",
        type=float,
        default=0,
        help="after all Ready, measure this many seconds at rest: CPU, API requests and passes (0: skip)",
    )
    parser.add_argument("--cprofile", metavar="DIR", help="profile the operator (all threads) into DIR")
    parser.add_argument(
        "--operator-workers",
        type=int,
        help="experiment: override the operator's reconcile worker count (handlers.wiring.WORKERS)",
    )
    parser.add_argument(
        "--extra-cpu-nodes",
        type=int,
        default=0,
        help=f"add this many KWOK CPU nodes ({EXTRA_NODE_PODS} pods each) for the run, e.g. 4 for 5000"
        " CPU-only Models (`--gpu-models 0`); removed at the end",
    )
    parser.add_argument("--output", default=str(RESULTS / "reconcile_scale.json"), help="JSON results file")
    args = parser.parse_args(argv)
    args.kubeconfig = str(Path(args.kubeconfig).resolve())

    k8s_config.load_kube_config(config_file=args.kubeconfig)
    configuration = k8s.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = max(args.apply_concurrency + 8, 16)
    api_client = k8s.ApiClient(configuration)
    core, custom = k8s.CoreV1Api(api_client), k8s.CustomObjectsApi(api_client)
    try:
        k8s.ApiextensionsV1Api(api_client).read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    except ApiException as error:
        if error.status != 404:
            raise
        print(
            f"reconcile_scale: the CRD {PLURAL}.{GROUP} is not installed on this cluster;"
            f" install them with `kubectl --kubeconfig {args.kubeconfig} apply --server-side -k crds/`",
            file=sys.stderr,
        )
        return 2

    results: list[RunResult] = []
    with extra_cpu_nodes(core, args.extra_cpu_nodes):
        for count in (int(c) for c in args.counts.split(",") if c.strip()):
            results.append(run_once(args, count, core, custom))
    print_table(results)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps(
            {
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "goal": {
                    "count": GOAL_COUNT,
                    "ready_seconds": GOAL_READY_SECONDS,
                    "rss_mib": GOAL_RSS_MIB,
                    "cpu_ms_per_model": GOAL_CPU_MS_PER_MODEL,
                    "idle_core_percent": GOAL_IDLE_CORE_PERCENT,
                    "idle_requests_per_model_per_10min": GOAL_IDLE_REQUESTS_PER_MODEL_10MIN,
                },
                "runs": [asdict(r) for r in results],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {output.relative_to(REPO) if output.is_relative_to(REPO) else output}")
    ok = all(all(r.goals.values()) for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
