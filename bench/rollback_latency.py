"""Rollback latency: time from a time-to-first-token regression to all traffic back on stable.

On the dev cluster (`bash hack/cluster/up.sh`, with its Prometheus scraping every second), in a
fresh namespace watched by an operator of its own (`llmops-operator run --namespace <ns>`):

1. A metrics emitter (hack/sim) registered as a Prometheus target, kept equal to the Running
   engine pods of the namespace (every pod "serves" steady vLLM traffic, 50 requests/s).
2. `--runs` canary Models (vLLM, `--replicas` replicas of one GPU each) are applied and become
   stable. Their analysis: `timeToFirstTokenP95` with `maxRatioToStable: 1.2` over `--window`,
   every `--interval`, `failureLimit: 0`; steps: setWeight 25, pause P, setWeight 50, pause P.
3. One run per Model, one after the other: change `engine.args` (a canary starts), wait for a
   pause step chosen at random, wait a random moment within it, then make the canary's TTFT
   1.5x slower (`latency_regression`). Latency = from that moment until the canary Deployment
   has `spec.replicas: 0` and `status.rollout.abort` is true (polled every 0.1 s). The operator's
   own decision time (`status.rollout.abortedAt` minus the start) is recorded too.

Goal (issue 4): p95 under two analysis intervals. Prints p50/p95/max next to the interval and
writes bench/results/rollback_latency_<mode>.json. `--mode threshold` judges point estimates
(the behaviour before issue 16); the default `confidence` rolls back on evidence only. The
namespace and the operator are removed at the end.

    KUBECONFIG=.cluster/kubeconfig ~/.cache/llmops-operator/venv/bin/python \
        bench/rollback_latency.py --runs 10 --interval 5
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import UTC, datetime
from typing import Any

from harness import GPUS, GROUP, PLURAL, REPO, VERSION, ClusterBench, percentile, wait
from llmops_sim.emitter import Emitter

RESULTS = REPO / "bench" / "results" / "rollback_latency.json"
BUSY_RPS = 50.0
"""Requests per second per pod: enough that a fresh canary pod's p95 is not coarse (at 5 rps a
healthy canary a few seconds old can read 1.2x stable)."""


def model_body(name: str, args: argparse.Namespace) -> dict[str, Any]:
    pause = {"pause": {"duration": f"{args.pause:.0f}s"}}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Model",
        "metadata": {"name": name},
        "spec": {
            "source": {"uri": "hf://org/tiny-llm"},
            "engine": {"type": "vllm", "args": ["--max-num-seqs=8", f"--served-model-name={name}"]},
            "resources": {"gpus": 1, "gpuProducts": GPUS},
            "replicas": args.replicas,
            "rollout": {
                "strategy": "Canary",
                "canary": {
                    "steps": [{"setWeight": 25}, pause, {"setWeight": 50}, pause],
                    "analysis": {
                        "interval": f"{args.interval:.0f}s",
                        "mode": args.mode,
                        "failureLimit": 0,
                        "metrics": [
                            {
                                "name": "ttft",
                                "builtin": "timeToFirstTokenP95",
                                "maxRatioToStable": 1.2,
                                "window": args.window,
                            }
                        ],
                    },
                },
            },
        },
    }


class Bench(ClusterBench):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__("rollback")
        self.args = args
        self.rng = random.Random(args.seed)
        self.emitter = Emitter()

    def canary_replicas(self, name: str, revision: str) -> int | None:
        items = self.apps.list_namespaced_deployment(
            self.namespace, label_selector=f"llmops.dev/model={name},llmops.dev/revision={revision}"
        ).items
        return int(items[0].spec.replicas or 0) if items else None

    def one_run(self, name: str) -> dict[str, Any]:
        model = self.model(name)
        stable = model["status"]["stableRevision"]
        self.emitter.set_shape("steady", revision=stable, namespace=self.namespace, rps=BUSY_RPS)
        args = list(model["spec"]["engine"]["args"])
        args[0] = "--max-num-seqs=16"
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, {"spec": {"engine": {"args": args}}}
        )
        canary = wait(lambda: self.model(name).get("status", {}).get("canaryRevision"), 30, "canary")
        self.emitter.set_shape("steady", revision=canary, namespace=self.namespace, rps=BUSY_RPS)
        pause_step = self.rng.choice([1, 3])
        delay = self.rng.uniform(0.0, self.args.pause - 2 * self.args.interval - 4)

        def at_step() -> bool:
            return int(self.model(name)["status"].get("rollout", {}).get("stepIndex", 0)) >= pause_step

        wait(at_step, 120, f"{name} at step {pause_step}")
        time.sleep(delay)
        step_now = int(self.model(name)["status"].get("rollout", {}).get("stepIndex", 0))
        started_wall, started = datetime.now(UTC), time.monotonic()
        self.emitter.set_shape(
            "latency_regression", revision=canary, namespace=self.namespace, factor=1.5, rps=BUSY_RPS
        )

        def rolled_back() -> bool:
            rollout = self.model(name)["status"].get("rollout") or {}
            return bool(rollout.get("abort")) and self.canary_replicas(name, canary) == 0

        wait(rolled_back, 120, f"{name} rolled back")
        latency = time.monotonic() - started
        rollout = self.model(name)["status"]["rollout"]
        aborted_at = datetime.fromisoformat(rollout["abortedAt"].replace("Z", "+00:00"))
        run = {
            "model": name,
            "stable": stable,
            "canary": canary,
            "pause_step": pause_step,
            "step_at_regression": step_now,
            "delay_into_step_s": round(delay, 2),
            "latency_s": round(latency, 2),
            "decided_after_s": round((aborted_at - started_wall).total_seconds(), 2),
            "message": rollout.get("message", ""),
        }
        print(
            f"  {name}: regression at step {step_now} (+{delay:.1f}s) -> rolled back after "
            f"{latency:.1f}s (operator decided after {run['decided_after_s']:.1f}s)",
            flush=True,
        )
        return run

    def run(self) -> dict[str, Any]:
        args = self.args
        with self.operator_in_namespace(), self.scraped(self.emitter):
            names = [f"m{i}" for i in range(args.runs)]
            for name in names:
                self.custom.create_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, model_body(name, args)
                )
            for name in names:
                wait(
                    lambda n=name: self.model(n).get("status", {}).get("phase") == "Ready",
                    180,
                    f"{name} Ready",
                )
            print(
                f"rollback latency: {args.runs} runs, interval {args.interval:.0f}s, window {args.window}, "
                f"pause {args.pause:.0f}s, replicas {args.replicas}, seed {args.seed}",
                flush=True,
            )
            runs = [self.one_run(name) for name in names]
        latencies = [r["latency_s"] for r in runs]
        decided = [r["decided_after_s"] for r in runs]
        summary = {
            "mode": args.mode,
            "interval_s": args.interval,
            "goal_s": 2 * args.interval,
            "window": args.window,
            "runs": len(runs),
            "latency_p50_s": percentile(latencies, 50),
            "latency_p95_s": percentile(latencies, 95),
            "latency_max_s": max(latencies),
            "decided_p50_s": percentile(decided, 50),
            "decided_p95_s": percentile(decided, 95),
            "goal_met": percentile(latencies, 95) < 2 * args.interval,
            "seed": args.seed,
            "details": runs,
        }
        return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--interval", type=float, default=5.0, help="analysis interval, seconds")
    parser.add_argument("--window", default="10s", help="TTFT p95 rate window")
    parser.add_argument("--pause", type=float, default=25.0, help="pause step duration, seconds")
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument(
        "--mode", default="confidence", choices=["confidence", "threshold"], help="analysis mode (issue 16)"
    )
    args = parser.parse_args()
    if args.pause < 2 * args.interval + 5:
        parser.error("--pause must exceed two intervals plus 5s, or a late regression is promoted")
    summary = Bench(args).run()
    print(
        f"\nmode {args.mode}, interval {summary['interval_s']:.0f}s "
        f"(goal: p95 < {summary['goal_s']:.0f}s): "
        f"latency p50 {summary['latency_p50_s']:.1f}s, p95 {summary['latency_p95_s']:.1f}s, "
        f"max {summary['latency_max_s']:.1f}s; operator decision p50 {summary['decided_p50_s']:.1f}s, "
        f"p95 {summary['decided_p95_s']:.1f}s -> goal {'met' if summary['goal_met'] else 'MISSED'}"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    out = RESULTS.with_name(f"rollback_latency_{args.mode}.json")
    out.write_text(json.dumps(summary, indent=2))
    print(f"written to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
