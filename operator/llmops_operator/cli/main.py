"""`llmops-operator`: run the operator, plan a Model without a cluster, run an evaluation, or load model
weights into a cache volume."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from llmops_operator.cli import eval_cmd, plan_cmd
from llmops_operator.loader import load_weights


def _add_run(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run the operator against the current kubeconfig or in-cluster")
    run.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[n for n in os.environ.get("LLMOPS_NAMESPACES", "").split(",") if n],
        help="watch only this namespace (repeatable; env LLMOPS_NAMESPACES, comma-separated); "
        "default: cluster-wide",
    )
    run.add_argument(
        "--prometheus-url",
        default=os.environ.get("LLMOPS_PROMETHEUS_URL", "http://prometheus.monitoring.svc:9090"),
        help="Prometheus used for canary analysis (env LLMOPS_PROMETHEUS_URL)",
    )
    run.add_argument(
        "--log-format",
        choices=["plain", "full", "json"],
        default=os.environ.get("LLMOPS_LOG_FORMAT", "plain"),
        help="log format (env LLMOPS_LOG_FORMAT)",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get("LLMOPS_METRICS_PORT", "8080")),
        help="port of the operator's own Prometheus metrics (0 disables; env LLMOPS_METRICS_PORT)",
    )
    run.add_argument(
        "--metrics-address",
        default=os.environ.get("LLMOPS_METRICS_ADDRESS", "0.0.0.0"),
        help="address the metrics endpoint binds to (env LLMOPS_METRICS_ADDRESS)",
    )
    run.add_argument(
        "--operator-image",
        default=os.environ.get("LLMOPS_OPERATOR_IMAGE", "ghcr.io/llmops-dev/llmops-operator:0.1.0"),
        help="image used for the weight loader and evaluation Jobs (env LLMOPS_OPERATOR_IMAGE)",
    )
    run.add_argument(
        "--resync-seconds",
        type=float,
        default=float(os.environ.get("LLMOPS_RESYNC_SECONDS", "30")),
        help="how often each Model is reconciled when nothing happens (env LLMOPS_RESYNC_SECONDS)",
    )
    run.add_argument(
        "--eval-endpoint-template",
        default=os.environ.get("LLMOPS_EVAL_ENDPOINT_TEMPLATE", "http://{service}.{namespace}.svc:{port}/v1"),
        help="how eval Jobs reach a revision; placeholders {service} {namespace} {port} {model} {revision} "
        "(env LLMOPS_EVAL_ENDPOINT_TEMPLATE)",
    )
    run.add_argument(
        "--prometheus-timeout-seconds",
        type=float,
        default=float(os.environ.get("LLMOPS_PROMETHEUS_TIMEOUT_SECONDS", "10")),
        help="timeout of one Prometheus query, and the elapsed time after which a round of analysis "
        "measurements that has not answered counts as Error (env LLMOPS_PROMETHEUS_TIMEOUT_SECONDS)",
    )
    run.add_argument(
        "--eval-run-history",
        type=int,
        default=int(os.environ.get("LLMOPS_EVAL_RUN_HISTORY", "5")),
        help="finished EvalRuns kept per Model and gate; older ones are deleted "
        "(env LLMOPS_EVAL_RUN_HISTORY)",
    )
    _add_leader_election(run)
    run.add_argument(
        "--health-port",
        type=int,
        default=int(os.environ.get("LLMOPS_HEALTH_PORT", "8081")),
        help="port of /healthz and /readyz (0 disables; env LLMOPS_HEALTH_PORT)",
    )
    run.add_argument(
        "--health-address",
        default=os.environ.get("LLMOPS_HEALTH_ADDRESS", "0.0.0.0"),
        help="address the health endpoints bind to (env LLMOPS_HEALTH_ADDRESS)",
    )
    run.add_argument(
        "--stall-seconds",
        type=float,
        default=float(os.environ.get("LLMOPS_STALL_SECONDS", "300")),
        help="/healthz fails when the leader has had work this long without finishing a pass "
        "(env LLMOPS_STALL_SECONDS)",
    )
    run.add_argument(
        "--gpu-prices",
        default=os.environ.get("LLMOPS_GPU_PRICES", ""),
        help='price of one GPU-hour per GPU product, JSON or YAML: {"currency": "USD", "gpuHourPrices": '
        '{"NVIDIA-H100-80GB-HBM3": 2.5}} (env LLMOPS_GPU_PRICES; default: no prices)',
    )
    run.add_argument(
        "--cost-window",
        default=os.environ.get("LLMOPS_COST_WINDOW", "2m"),
        help="rate() window of the token rates in status.cost (env LLMOPS_COST_WINDOW)",
    )
    run.add_argument(
        "--cost-refresh-seconds",
        type=float,
        default=float(os.environ.get("LLMOPS_COST_REFRESH_SECONDS", "300")),
        help="how often an unchanged revision's status.cost is rewritten; changes of replicas are "
        "accounted at once (env LLMOPS_COST_REFRESH_SECONDS)",
    )
    run.add_argument("--verbose", "-v", action="store_true", help="debug logging")


def _add_leader_election(run: argparse.ArgumentParser) -> None:
    env = os.environ.get
    run.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=env("LLMOPS_LEADER_ELECT", "true").lower() in ("1", "true", "yes"),
        help="only the holder of a coordination.k8s.io Lease reconciles (env LLMOPS_LEADER_ELECT)",
    )
    run.add_argument(
        "--leader-election-id",
        default=env("LLMOPS_LEADER_ELECTION_ID", "llmops-operator"),
        help="name of the Lease (env LLMOPS_LEADER_ELECTION_ID)",
    )
    run.add_argument(
        "--leader-election-namespace",
        default=env("LLMOPS_LEADER_ELECTION_NAMESPACE", ""),
        help="namespace of the Lease; default: the operator's own (env LLMOPS_LEADER_ELECTION_NAMESPACE)",
    )
    run.add_argument(
        "--leader-election-identity",
        default=env("LLMOPS_LEADER_ELECTION_IDENTITY", env("POD_NAME", "")),
        help="this replica's name in the Lease; default: the pod name or host name "
        "(env LLMOPS_LEADER_ELECTION_IDENTITY)",
    )
    for flag, variable, default, text in (
        (
            "--lease-duration-seconds",
            "LLMOPS_LEASE_DURATION_SECONDS",
            "15",
            "how long a Lease not renewed stays with its holder before another replica takes it",
        ),
        (
            "--renew-deadline-seconds",
            "LLMOPS_RENEW_DEADLINE_SECONDS",
            "10",
            "how long the leader tries to renew before it stops reconciling",
        ),
        (
            "--retry-period-seconds",
            "LLMOPS_RETRY_PERIOD_SECONDS",
            "2",
            "time between two tries to take or renew the Lease",
        ),
    ):
        run.add_argument(
            flag, type=float, default=float(env(variable, default)), help=f"{text} (env {variable})"
        )


def _add_load_weights(subparsers: argparse._SubParsersAction) -> None:
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
        # imported here, not at the top: importing the wiring registers the kopf handlers, a side
        # effect only `run` wants (plan, eval and load-weights run without kopf)
        from llmops_operator.handlers.wiring import run_operator

        return run_operator(args)
    if args.command == "load-weights":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        return load_weights(args.uri, args.revision, args.dest)
    if args.command == "plan":
        return plan_cmd.run(args)
    return eval_cmd.run(args)


if __name__ == "__main__":
    sys.exit(main())
