"""`llmops-operator`: run the operator, plan a Model without a cluster, run an evaluation, or load model
weights into a cache volume."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmops_operator.cli import eval_cmd, plan_cmd
from llmops_operator.cli.subcommands import Subcommands
from llmops_operator.handlers.wiring import run_operator
from llmops_operator.loader import load_weights


@dataclass(frozen=True)
class EnvFlag:
    """A `run` flag whose default comes from an environment variable (its help names it)."""

    flag: str
    variable: str
    default: str
    help: str
    kind: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None

    def add(self, parser: argparse.ArgumentParser) -> None:
        default = self.kind(os.environ.get(self.variable, self.default))
        parser.add_argument(self.flag, type=self.kind, default=default, choices=self.choices, help=self.help)


RUN_FLAGS = (
    EnvFlag(
        "--prometheus-url",
        "LLMOPS_PROMETHEUS_URL",
        "http://prometheus.monitoring.svc:9090",
        "Prometheus used for canary analysis (env LLMOPS_PROMETHEUS_URL)",
    ),
    EnvFlag(
        "--log-format",
        "LLMOPS_LOG_FORMAT",
        "plain",
        "log format (env LLMOPS_LOG_FORMAT)",
        choices=("plain", "full", "json"),
    ),
    EnvFlag(
        "--metrics-port",
        "LLMOPS_METRICS_PORT",
        "8080",
        "port of the operator's own Prometheus metrics (0 disables; env LLMOPS_METRICS_PORT)",
        int,
    ),
    EnvFlag(
        "--metrics-address",
        "LLMOPS_METRICS_ADDRESS",
        "0.0.0.0",
        "address the metrics endpoint binds to (env LLMOPS_METRICS_ADDRESS)",
    ),
    EnvFlag(
        "--operator-image",
        "LLMOPS_OPERATOR_IMAGE",
        "ghcr.io/llmops-dev/llmops-operator:0.1.0",
        "image used for the weight loader and evaluation Jobs (env LLMOPS_OPERATOR_IMAGE)",
    ),
    EnvFlag(
        "--resync-seconds",
        "LLMOPS_RESYNC_SECONDS",
        "300",
        "how often a Model at rest is looked at again: unwatched inputs (Secret, HTTPRoute, load "
        "signal) are re-read, and the pass is skipped when nothing changed (env LLMOPS_RESYNC_SECONDS)",
        float,
    ),
    EnvFlag(
        "--full-resync-seconds",
        "LLMOPS_FULL_RESYNC_SECONDS",
        "3600",
        "how often a Model is re-planned even when nothing it depends on changed; watch events "
        "and the plan's own timers drive every other pass (env LLMOPS_FULL_RESYNC_SECONDS)",
        float,
    ),
    EnvFlag(
        "--eval-endpoint-template",
        "LLMOPS_EVAL_ENDPOINT_TEMPLATE",
        "http://{service}.{namespace}.svc:{port}/v1",
        "how eval Jobs reach a revision; placeholders {service} {namespace} {port} {model} {revision} "
        "(env LLMOPS_EVAL_ENDPOINT_TEMPLATE)",
    ),
    EnvFlag(
        "--prometheus-timeout-seconds",
        "LLMOPS_PROMETHEUS_TIMEOUT_SECONDS",
        "10",
        "timeout of one Prometheus query, and the elapsed time after which a round of analysis "
        "measurements that has not answered counts as Error (env LLMOPS_PROMETHEUS_TIMEOUT_SECONDS)",
        float,
    ),
    EnvFlag(
        "--eval-run-history",
        "LLMOPS_EVAL_RUN_HISTORY",
        "5",
        "finished EvalRuns kept per Model and gate; older ones are deleted (env LLMOPS_EVAL_RUN_HISTORY)",
        int,
    ),
)
"""The `run` flags before the leader election ones, in `--help` order."""

LEADER_ELECTION_FLAGS = (
    EnvFlag(
        "--leader-election-id",
        "LLMOPS_LEADER_ELECTION_ID",
        "llmops-operator",
        "name of the Lease (env LLMOPS_LEADER_ELECTION_ID)",
    ),
    EnvFlag(
        "--leader-election-namespace",
        "LLMOPS_LEADER_ELECTION_NAMESPACE",
        "",
        "namespace of the Lease; default: the operator's own (env LLMOPS_LEADER_ELECTION_NAMESPACE)",
    ),
)

LEASE_FLAGS = (
    EnvFlag(
        "--lease-duration-seconds",
        "LLMOPS_LEASE_DURATION_SECONDS",
        "15",
        "how long a Lease not renewed stays with its holder before another replica takes it "
        "(env LLMOPS_LEASE_DURATION_SECONDS)",
        float,
    ),
    EnvFlag(
        "--renew-deadline-seconds",
        "LLMOPS_RENEW_DEADLINE_SECONDS",
        "10",
        "how long the leader tries to renew before it stops reconciling (env LLMOPS_RENEW_DEADLINE_SECONDS)",
        float,
    ),
    EnvFlag(
        "--retry-period-seconds",
        "LLMOPS_RETRY_PERIOD_SECONDS",
        "2",
        "time between two tries to take or renew the Lease (env LLMOPS_RETRY_PERIOD_SECONDS)",
        float,
    ),
)

SERVING_FLAGS = (
    EnvFlag(
        "--health-port",
        "LLMOPS_HEALTH_PORT",
        "8081",
        "port of /healthz and /readyz (0 disables; env LLMOPS_HEALTH_PORT)",
        int,
    ),
    EnvFlag(
        "--health-address",
        "LLMOPS_HEALTH_ADDRESS",
        "0.0.0.0",
        "address the health endpoints bind to (env LLMOPS_HEALTH_ADDRESS)",
    ),
    EnvFlag(
        "--stall-seconds",
        "LLMOPS_STALL_SECONDS",
        "300",
        "/healthz fails when the leader has had work this long without finishing a pass "
        "(env LLMOPS_STALL_SECONDS)",
        float,
    ),
    EnvFlag(
        "--gpu-prices",
        "LLMOPS_GPU_PRICES",
        "",
        'price of one GPU-hour per GPU product, JSON or YAML: {"currency": "USD", "gpuHourPrices": '
        '{"NVIDIA-H100-80GB-HBM3": 2.5}} (env LLMOPS_GPU_PRICES; default: no prices)',
    ),
    EnvFlag(
        "--cost-window",
        "LLMOPS_COST_WINDOW",
        "2m",
        "rate() window of the token rates in status.cost (env LLMOPS_COST_WINDOW)",
    ),
    EnvFlag(
        "--cost-refresh-seconds",
        "LLMOPS_COST_REFRESH_SECONDS",
        "300",
        "how often an unchanged revision's status.cost is rewritten; changes of replicas are "
        "accounted at once (env LLMOPS_COST_REFRESH_SECONDS)",
        float,
    ),
)
"""The `run` flags after the leader election ones: health, cost."""


def _add_run(subparsers: Subcommands) -> None:
    run = subparsers.add_parser("run", help="run the operator against the current kubeconfig or in-cluster")
    run.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[n for n in os.environ.get("LLMOPS_NAMESPACES", "").split(",") if n],
        help="watch only this namespace (repeatable; env LLMOPS_NAMESPACES, comma-separated); "
        "default: cluster-wide",
    )
    for flag in RUN_FLAGS:
        flag.add(run)
    _add_leader_election(run)
    for flag in SERVING_FLAGS:
        flag.add(run)
    run.add_argument("--verbose", "-v", action="store_true", help="debug logging")


def _add_leader_election(run: argparse.ArgumentParser) -> None:
    env = os.environ.get
    run.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=env("LLMOPS_LEADER_ELECT", "true").lower() in ("1", "true", "yes"),
        help="only the holder of a coordination.k8s.io Lease reconciles (env LLMOPS_LEADER_ELECT)",
    )
    for flag in LEADER_ELECTION_FLAGS:
        flag.add(run)
    run.add_argument(
        "--leader-election-identity",
        default=env("LLMOPS_LEADER_ELECTION_IDENTITY", env("POD_NAME", "")),
        help="this replica's name in the Lease; default: the pod name or host name "
        "(env LLMOPS_LEADER_ELECTION_IDENTITY)",
    )
    for flag in LEASE_FLAGS:
        flag.add(run)


def _add_load_weights(subparsers: Subcommands) -> None:
    load = subparsers.add_parser(
        "load-weights", help="download model weights into a cache volume (loader Job)"
    )
    load.add_argument("--uri", required=True, help="hf://org/repo, s3://bucket/prefix or pvc://claim/path")
    load.add_argument("--revision", default=None, help="source revision (commit or tag)")
    load.add_argument("--dest", required=True, help="directory on the cache volume")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmops-operator", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_run(subparsers)
    _add_load_weights(subparsers)
    eval_cmd.add_parser(subparsers)
    plan_cmd.add_parser(subparsers)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run_operator(args)
    if args.command == "load-weights":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        return load_weights(args.uri, args.revision, args.dest)
    if args.command == "plan":
        return plan_cmd.run(args)
    return eval_cmd.run(args)


if __name__ == "__main__":
    sys.exit(main())
