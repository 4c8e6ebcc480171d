"""Runs the operator's eval Jobs as local processes.

Stands in for the kubelet and the container runtime, which KWOK does not have: KWOK marks Job
pods Running and then Succeeded without running anything. This runner watches Jobs labelled
`llmops.dev/component=eval` and runs each one's container command once, on this machine, with
the dev cluster's kubeconfig, so the real `llmops-operator eval --evalrun NS/NAME` code reads the
EvalRun and writes its result exactly as it would in a pod. Like the kubelet, it sets the
container's env: literal values and `valueFrom.secretKeyRef` (read from the Secret), so the run's
verdict key and judge API keys arrive the way they do in a pod.

With `fork=True` each run is a process forked from a server that imported the operator once
(multiprocessing's forkserver), not a fresh interpreter: importing the eval command costs about
2 CPU-seconds, which a soak of thousands of eval Jobs cannot pay each time. `max_running` holds
the other Jobs back until a slot frees, like pods waiting for a node with room.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

from kubernetes import client as k8s
from kubernetes.watch.watch import iter_resp_lines

from llmops_sim.poller import Poller

EVAL_SELECTOR = "llmops.dev/component=eval"
OPERATOR_MAIN = "llmops_operator.cli.main"
FORK_SERVER = "llmops_sim.eval_fork"


class Run(Protocol):
    """A started eval run: a subprocess or a forked process."""

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...


class _Forked:
    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self.process = process

    def poll(self) -> int | None:
        return None if self.process.is_alive() else self.process.exitcode

    def terminate(self) -> None:
        self.process.terminate()


class _Done:
    def poll(self) -> int | None:
        return 0

    def terminate(self) -> None:
        return None


DONE = _Done()
"""A run that finished: its process object (and its pipes) are let go."""


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
        fork: bool = False,
        max_running: int | None = None,
    ) -> None:
        super().__init__(interval)
        self.batch = k8s.BatchV1Api(api_client)
        self.core = k8s.CoreV1Api(api_client)
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_dir = log_dir
        self.started: dict[str, Run] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        """uid -> the eval Jobs that exist, as watched."""
        self._version: str | None = None
        self.max_running = max_running
        self._forks: Any = None
        if fork:
            self._forks = multiprocessing.get_context("forkserver")
            self._forks.set_forkserver_preload([FORK_SERVER])

    def _request(self, **kwargs: Any) -> Any:
        """A list or watch of the eval Jobs, unparsed: the client's model classes would cost a
        soak of thousands of Jobs more CPU than the operator."""
        kwargs.update(label_selector=EVAL_SELECTOR, _preload_content=False)
        if self.namespace:
            return self.batch.list_namespaced_job(self.namespace, **kwargs)
        return self.batch.list_job_for_all_namespaces(**kwargs)

    def _changes(self) -> None:
        """Bring `self.jobs` up to date: a list the first time (and after 410 Gone), then the
        watch events since the last resourceVersion for one interval, starting Jobs as they come."""
        if self._version is None:
            listed = json.loads(self._request().data)
            self.jobs = {j["metadata"]["uid"]: j for j in listed["items"]}
            self._version = listed["metadata"]["resourceVersion"]
            self._start_waiting()
            return
        response = self._request(
            watch=True,
            resource_version=self._version,
            allow_watch_bookmarks=True,
            timeout_seconds=max(1, round(self.interval)),
        )
        try:
            for line in iter_resp_lines(response):
                event = json.loads(line)
                obj = event["object"]
                if event["type"] == "ERROR":
                    self._version = None  # 410 Gone: the events since our version are compacted
                    return
                self._version = obj["metadata"]["resourceVersion"]
                if event["type"] == "DELETED":
                    self.jobs.pop(obj["metadata"]["uid"], None)
                elif event["type"] in ("ADDED", "MODIFIED"):
                    self.jobs[obj["metadata"]["uid"]] = obj
                    self._start_waiting()
        finally:
            response.release_conn()

    def command_for(self, job: dict[str, Any]) -> list[str]:
        """The Job's container command, with `llmops-operator` resolved to this interpreter."""
        container = job["spec"]["template"]["spec"]["containers"][0]
        command = list(container.get("command") or []) + list(container.get("args") or [])
        if command and command[0] == "llmops-operator":
            command = [sys.executable, "-m", OPERATOR_MAIN, *command[1:]]
        return command

    def env_for(self, job: dict[str, Any]) -> dict[str, str]:
        """The container's env as the kubelet would set it (values and Secret keys)."""
        env: dict[str, str] = {}
        for var in job["spec"]["template"]["spec"]["containers"][0].get("env") or []:
            if var.get("value") is not None:
                env[var["name"]] = var["value"]
            elif (ref := (var.get("valueFrom") or {}).get("secretKeyRef")) is not None:
                secret = self.core.read_namespaced_secret(ref["name"], job["metadata"]["namespace"])
                value = (secret.data or {}).get(ref["key"])
                if value is not None:
                    env[var["name"]] = base64.b64decode(value).decode()
        return env

    def running(self) -> int:
        """Runs still going (finished ones are forgotten, their uids kept so none runs twice)."""
        for uid, run in list(self.started.items()):
            if run is not DONE and run.poll() is not None:
                self.started[uid] = DONE
        return sum(run is not DONE for run in self.started.values())

    def poll(self) -> None:
        self._changes()
        self._start_waiting()

    def _start_waiting(self) -> None:
        """Start the Jobs not started yet, oldest first, as far as `max_running` allows."""
        free = None if self.max_running is None else self.max_running - self.running()
        if free is not None and free <= 0:
            return
        waiting = [j for uid, j in self.jobs.items() if uid not in self.started]
        for job in sorted(waiting, key=lambda j: j["metadata"]["creationTimestamp"]):
            if free is not None and free <= 0:
                return  # the rest wait for a slot
            try:
                container_env = self.env_for(job)
            except k8s.ApiException:
                continue  # like a kubelet: the pod waits until its Secrets exist
            env = {**os.environ, **container_env, "KUBECONFIG": self.kubeconfig}
            self.started[job["metadata"]["uid"]] = self._start(job, env)
            if free is not None:
                free -= 1

    def _start(self, job: dict[str, Any], env: dict[str, str]) -> Run:
        log = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = str(self.log_dir / f"{job['metadata']['name']}.log")
        command = self.command_for(job)
        if self._forks is not None and command[:3] == [sys.executable, "-m", OPERATOR_MAIN]:
            from llmops_sim import eval_fork

            process = self._forks.Process(target=eval_fork.run, args=(command[3:], env, log), daemon=True)
            process.start()
            return _Forked(process)
        output: Any = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
        return subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        super().stop()
        for run in self.started.values():
            if run.poll() is None:
                run.terminate()
