"""Runs the operator's eval Jobs as local processes.

Stands in for the kubelet and the container runtime, which KWOK does not have: KWOK marks Job
pods Running and then Succeeded without running anything. This runner watches Jobs labelled
`llmops.dev/component=eval` and runs each one's container command once, on this machine, with
the dev cluster's kubeconfig, so the real `llmops-operator eval --evalrun NS/NAME` code reads the
EvalRun and writes its result exactly as it would in a pod. Like the kubelet, it sets the
container's env: literal values and `valueFrom.secretKeyRef` (read from the Secret), so the run's
verdict key and judge API keys arrive the way they do in a pod.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from llmops_sim.poller import Poller

EVAL_SELECTOR = "llmops.dev/component=eval"


class JobRunner(Poller):
    """Polls for eval Jobs and runs each new one (by uid) in a subprocess."""

    name = "job-runner"

    def __init__(
        self,
        api_client: k8s.ApiClient,
        kubeconfig: str,
        namespace: str | None = None,
        interval: float = 0.5,
        log_dir: Path | None = None,
    ) -> None:
        super().__init__(interval)
        self.batch = k8s.BatchV1Api(api_client)
        self.core = k8s.CoreV1Api(api_client)
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_dir = log_dir
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    def _jobs(self) -> list[Any]:
        if self.namespace:
            return self.batch.list_namespaced_job(self.namespace, label_selector=EVAL_SELECTOR).items
        return self.batch.list_job_for_all_namespaces(label_selector=EVAL_SELECTOR).items

    def command_for(self, job: Any) -> list[str]:
        """The Job's container command, with `llmops-operator` resolved to this interpreter."""
        container = job.spec.template.spec.containers[0]
        command = list(container.command or []) + list(container.args or [])
        if command and command[0] == "llmops-operator":
            command = [sys.executable, "-m", "llmops_operator.cli.main", *command[1:]]
        return command

    def env_for(self, job: Any) -> dict[str, str]:
        """The container's env as the kubelet would set it (values and Secret keys)."""
        env: dict[str, str] = {}
        for var in job.spec.template.spec.containers[0].env or []:
            if var.value is not None:
                env[var.name] = var.value
            elif var.value_from is not None and var.value_from.secret_key_ref is not None:
                ref = var.value_from.secret_key_ref
                secret = self.core.read_namespaced_secret(ref.name, job.metadata.namespace)
                value = (secret.data or {}).get(ref.key)
                if value is not None:
                    env[var.name] = base64.b64decode(value).decode()
        return env

    def poll(self) -> None:
        for job in self._jobs():
            uid = job.metadata.uid
            if uid in self.started:
                continue
            try:
                container_env = self.env_for(job)
            except k8s.ApiException:
                continue  # like a kubelet: the pod waits until its Secrets exist
            env = {**os.environ, **container_env, "KUBECONFIG": self.kubeconfig}
            output: Any = subprocess.DEVNULL
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                output = open(self.log_dir / f"{job.metadata.name}.log", "wb")  # noqa: SIM115
            self.started[uid] = subprocess.Popen(
                self.command_for(job), env=env, stdout=output, stderr=subprocess.STDOUT
            )

    def stop(self) -> None:
        super().stop()
        for proc in self.started.values():
            if proc.poll() is None:
                proc.terminate()
