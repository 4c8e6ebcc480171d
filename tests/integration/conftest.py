"""Operator fixtures: the real operator process against the dev cluster, killable and restartable."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers_model import Kubectl
from prometheus_client.parser import text_string_to_metric_families

from llmops_sim.emitter import Emitter
from llmops_sim.job_runner import JobRunner
from llmops_sim.openai_stub import OpenAIStub
from llmops_sim.pod_mirror import PodMirror
from llmops_sim.real_model import RealModel, RealModelMissing
from llmops_sim.volumes import VolumeProvisioner
from polling import wait_for

NAMESPACE_PREFIX = os.environ["LLMOPS_TEST_NAMESPACE_PREFIX"]  # set by tests/conftest.py

ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = ROOT / ".cluster" / "logs"
LEASE_NAMESPACE = "default"
FAST_LEASE = {
    "LLMOPS_LEASE_DURATION_SECONDS": "8",
    "LLMOPS_RENEW_DEADLINE_SECONDS": "6",
    "LLMOPS_RETRY_PERIOD_SECONDS": "1",
}
"""Short leader-election timings, so a takeover after SIGKILL takes seconds in tests."""


def free_port() -> int:
    """A loopback port nothing listens on now (sessions on one machine never share a fixed one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


DEV_GPU_PRICES = {"NVIDIA-H100-80GB-HBM3": 2.5, "NVIDIA-A100-SXM4-80GB": 1.8, "NVIDIA-L4": 0.7}
"""Made-up prices for the dev cluster's GPU products (the operator has no built-in prices)."""


class OperatorProcess:
    """`llmops-operator run` in a subprocess; its log stays in .cluster/logs for failures.

    Each instance holds a Lease of its own (`lease_id`) unless given one to share with other
    replicas; its identity survives restarts, so a restarted process takes its Lease back at
    once, as a restarted container of the same pod does."""

    def __init__(
        self,
        kubeconfig: str,
        prometheus_url: str,
        extra_env: dict[str, str] | None = None,
        namespace_glob: str | None = None,
        lease_id: str | None = None,
        identity: str | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.namespace_glob = namespace_glob or f"{NAMESPACE_PREFIX}*"
        self.prometheus_url = prometheus_url
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_path = LOG_DIR / "operator.log"
        self.lease_id = lease_id or f"llmops-test-{uuid.uuid4().hex[:8]}"
        self.identity = identity or f"{self.lease_id}-0"
        self.health_port = free_port()
        self.metrics_port = free_port()

    def start(self) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        env = {
            **os.environ,
            "KUBECONFIG": self.kubeconfig,
            "LLMOPS_PROMETHEUS_URL": self.prometheus_url,
            "LLMOPS_METRICS_PORT": str(self.metrics_port),
            "LLMOPS_METRICS_ADDRESS": "127.0.0.1",
            "LLMOPS_RESYNC_SECONDS": "5",
            "LLMOPS_OPERATOR_IMAGE": "llmops-operator:dev",
            "HF_HUB_OFFLINE": "1",  # tests reach nothing but loopback; model metadata stays unknown
            "LLMOPS_LEADER_ELECTION_ID": self.lease_id,
            "LLMOPS_LEADER_ELECTION_NAMESPACE": LEASE_NAMESPACE,
            "LLMOPS_LEADER_ELECTION_IDENTITY": self.identity,
            "LLMOPS_HEALTH_PORT": str(self.health_port),
            "LLMOPS_HEALTH_ADDRESS": "127.0.0.1",
            **FAST_LEASE,
            # one master key across restarts, so an eval running while the operator restarts
            # still has a verdict the new process can verify
            "LLMOPS_VERDICT_MASTER_KEY": "integration-tests-verdict-key",
            **self.extra_env,
        }
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        log.write(f"\n===== operator start #{self.starts} =====\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llmops_operator.cli.main",
                "run",
                "--log-format",
                "full",
                "--namespace",
                self.namespace_glob,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        time.sleep(1.0)
        if self.proc.poll() is not None:
            raise RuntimeError(f"the operator exited at once; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def health(self, path: str) -> tuple[int, dict[str, Any]]:
        """GET /healthz or /readyz: (HTTP status, JSON body)."""
        url = f"http://127.0.0.1:{self.health_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def wait_ready(self, timeout: float = 120) -> None:
        """Until /readyz answers 200: the caches have listed and leader election runs (a
        process start takes long on a loaded machine)."""
        wait_for(
            lambda: self.health("/readyz")[0] == 200,
            timeout,
            0.2,
            "the operator ready (/readyz)",
            tolerate_errors=True,
            describe=self.log_tail,
        )

    def passes(self, namespace: str, model: str) -> float:
        """Reconcile passes this operator process made over one Model (its own metric)."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        want = {"namespace": namespace, "model": model}
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "llmops_model_reconciles_total" and sample.labels == want
        )

    def reconciles(self, result: str) -> float:
        """Passes of this operator process over all Models with one result (ok, unchanged, error)."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "llmops_reconciles_total" and sample.labels == {"result": result}
        )

    def wait_passes(self, namespace: str, model: str, count: int = 2, timeout: float = 60) -> None:
        """Return once the operator has passed over the Model `count` more times: what a test
        checks afterwards held while the operator provably looked (never a fixed sleep)."""
        start = self.passes(namespace, model)
        wait_for(
            lambda: self.passes(namespace, model) >= start + count,
            timeout,
            0.2,
            f"{count} more reconcile passes over {namespace}/{model}",
            tolerate_errors=True,
            describe=self.log_tail,
        )

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


@pytest.fixture(scope="session")
def openai_stub() -> Iterator[OpenAIStub]:
    """A local OpenAI-compatible server standing in for model answers. Eval Jobs reach revision R
    at `/r/R/v1`: configure one revision's answers with `openai_stub.configure_route(R, ...)`."""
    with OpenAIStub(port=0) as stub:
        yield stub


@pytest.fixture(scope="session")
def real_model() -> Iterator[RealModel]:
    """SmolLM2-135M-Instruct on CPU behind llama.cpp's OpenAI-compatible server, loaded once per
    session; missing, it fails the tests that need it with how to install it."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    try:
        model = RealModel(log_path=LOG_DIR / "real-model.log").start()
    except RealModelMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    yield model
    model.stop()


@pytest.fixture(scope="session")
def operator(cluster: Any, prometheus: Any, openai_stub: OpenAIStub) -> Iterator[OperatorProcess]:
    """The operator for the whole session, watching only this session's namespaces, with the
    volume provisioner stand-in so weight-cache PVCs bind as they would on a real cluster."""
    url = prometheus.url if hasattr(prometheus, "url") else str(prometheus)
    template = f"http://127.0.0.1:{openai_stub.port}/r/{{revision}}/v1"
    volumes = VolumeProvisioner(cluster.api_client).start()
    env = {
        "LLMOPS_EVAL_ENDPOINT_TEMPLATE": template,
        "LLMOPS_GPU_PRICES": json.dumps({"currency": "USD", "gpuHourPrices": DEV_GPU_PRICES}),
        "LLMOPS_COST_WINDOW": "10s",
        "LLMOPS_COST_REFRESH_SECONDS": "5",
    }
    proc = OperatorProcess(str(cluster.kubeconfig), url, env)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_start = proc.log_path.stat().st_size if proc.log_path.exists() else 0
    proc.start()
    # the first test's waits start once the caches have listed, not while the process imports
    # (seconds on a loaded machine: test_valid_prompt_version_gets_valid_status_and_content_hash
    # timed out at 30 s as the first test of a session)
    proc.wait_ready()
    # Prometheus scrapes the operator's own metrics (the dashboard and alerts read them)
    target = f"llmops-operator-{proc.metrics_port}"
    prometheus.add_target(target, f"127.0.0.1:{proc.metrics_port}", {"job": "llmops-operator"})
    yield proc
    prometheus.remove_target(target)
    proc.stop()
    volumes.stop()
    with proc.log_path.open("rb") as log:
        log.seek(log_start)
        session_log = log.read().decode(errors="replace")
    tracebacks = session_log.count("Traceback (most recent call last)")
    # every failure must end in a condition and one log line, never an escaped exception
    assert tracebacks == 0, (
        f"{tracebacks} tracebacks in {proc.log_path}; the first:\n"
        + session_log[session_log.index("Traceback") :][:3000]
    )


@pytest.fixture
def own_namespace(cluster: Any) -> Iterator[str]:
    """A namespace outside this session's prefix, so only the test's own operators watch it."""
    name = f"x{NAMESPACE_PREFIX}{uuid.uuid4().hex[:6]}"
    cluster.core.create_namespace({"metadata": {"name": name, "labels": {"llmops.dev/test": "true"}}})
    yield name
    cluster.core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def own_operators(
    cluster: Any, operator: OperatorProcess, own_namespace: str
) -> Iterator[Callable[..., OperatorProcess]]:
    """Start operators of the test's own, watching only `own_namespace`, with the session
    operator's settings (eval endpoints, prices) plus `env`; all stopped at the end. Each has
    a log file of its own."""
    started: list[OperatorProcess] = []

    def start(
        prometheus_url: str | None = None,
        lease_id: str | None = None,
        identity: str | None = None,
        **env: str,
    ) -> OperatorProcess:
        proc = OperatorProcess(
            str(cluster.kubeconfig),
            prometheus_url or operator.prometheus_url,
            {**operator.extra_env, **env},
            namespace_glob=own_namespace,
            lease_id=lease_id,
            identity=identity,
        )
        proc.log_path = proc.log_path.with_name(f"operator-{own_namespace}-{len(started)}.log")
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def own_job_runner(cluster: Any, own_namespace: str) -> Iterator[JobRunner]:
    """The eval Jobs of `own_namespace`, run as local processes."""
    runner = JobRunner(
        cluster.api_client, str(cluster.kubeconfig), own_namespace, log_dir=LOG_DIR / "eval-jobs"
    ).start()
    yield runner
    runner.stop()


@pytest.fixture
def traffic(emitter: Emitter, cluster: Any, namespace: str) -> Iterator[Emitter]:
    """The emitter, kept equal to the engine pods running in the test namespace: each serving pod
    'exposes' engine metrics while it runs. Set shapes per revision with `traffic.set_shape`."""
    mirror = PodMirror(emitter, cluster.api_client, namespace, interval=0.5).start()
    yield emitter
    mirror.stop()


@pytest.fixture
def job_runner(cluster: Any, namespace: str) -> Iterator[JobRunner]:
    """Runs the eval Jobs of the test namespace as local processes (KWOK runs no containers)."""
    runner = JobRunner(
        cluster.api_client, str(cluster.kubeconfig), namespace, log_dir=LOG_DIR / "eval-jobs"
    ).start()
    yield runner
    runner.stop()


@pytest.fixture(scope="session")
def kube(cluster: Any) -> Kubectl:
    """kubectl against the session's dev cluster (JSON in, JSON out)."""
    return Kubectl(cluster.kubeconfig)


@pytest.fixture
def stub(openai_stub: OpenAIStub) -> Iterator[OpenAIStub]:
    """The session's OpenAI stub with unknown routes answering errors, so a revision whose route
    a test forgot to configure can never pass a gate by accident; reset to `good` after."""
    openai_stub.configure(mode="error")
    yield openai_stub
    openai_stub.configure(mode="good")
