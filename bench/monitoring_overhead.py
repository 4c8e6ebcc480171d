"""What scheduled evaluations and cost accounting add to a reconcile pass, at 500 Models.

Pure: `plan_model` is timed for N Models (default 500), each serving one revision with two ready
replicas, in two configurations:

- before: the operator without monitoring, from `--before-src` (the `operator/` directory of a
  checkout before issue 13, e.g. `git archive 8c93e16 operator | tar -x -C /tmp/before`); without
  it, this code with no `spec.monitoring`, prices or token rates (GPU-hours are still accrued);
- after: every Model has a scheduled evaluation (interval 10m) with a full history of 10
  scheduled EvalRuns, a price table, and token rates for its revision.

Each configuration runs in its own Python process (`--config before|after`).

Reported per configuration: CPU time of one pass over all N Models (median of `--repeats`), the
mean per Model, the status size, and status writes per Model per hour, i.e. passes whose status
differs from the previous pass's when every Model is reconciled every `--resync` seconds for one
simulated hour (a status write is one API request). The Prometheus side of cost accounting is
two bulk queries per 15 s for all Models together (`monitoring/token_rates.py`), independent of
N, so it is not simulated here.

    python bench/monitoring_overhead.py --models 500 --repeats 5 --before-src /tmp/before/operator

Results: a table on stdout and JSON in bench/results/monitoring_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from llmops_operator.gpu.planner import GpuNodeInfo
from llmops_operator.model_plan import World, plan_model

RESULTS = Path(__file__).resolve().parent / "results"
H100 = "NVIDIA-H100-80GB-HBM3"
T0 = datetime(2026, 12, 1, tzinfo=UTC)
INVENTORY = tuple(GpuNodeInfo(f"h100-{i}", H100, 8, 81559) for i in range(4))
SCHEDULE_LABEL = "llmops.dev/eval-schedule"
GATE = {"metadata": {"name": "quality", "namespace": "ns"}, "spec": {"prompt": {"name": "bot"}}}


def spec(index: int, monitored: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": {"uri": f"hf://org/model-{index}"},
        "engine": {"type": "vllm"},
        "resources": {"gpus": 1, "gpuProducts": [H100]},
        "replicas": 2,
    }
    if monitored:
        body["monitoring"] = {"evaluations": [{"gate": "quality", "schedule": {"interval": "10m"}}]}
    return body


def revision_of(index: int, monitored: bool) -> str:
    model = {"metadata": {"name": f"m{index}", "namespace": "ns", "uid": "u"}, "spec": spec(index, monitored)}
    status = plan_model(World(model=model, now=T0, operator_image="img")).status
    return str(status.get("canaryRevision") or status["stableRevision"])


def history(index: int, revision: str, now: datetime) -> list[dict[str, Any]]:
    """Ten finished scheduled runs, 10 minutes apart, the newest 1 minute old."""
    return [
        {
            "metadata": {
                "name": f"quality-m{index}-{k}",
                "namespace": "ns",
                "labels": {SCHEDULE_LABEL: "quality", "llmops.dev/model": f"m{index}"},
                "creationTimestamp": (now - timedelta(minutes=1 + 10 * k)).isoformat(),
            },
            "spec": {"gate": "quality", "revision": revision},
            "status": {"phase": "Passed", "candidate": {"passRate": 1.0, "score": 0.9}},
        }
        for k in range(10)
    ]


def deployment(index: int, revision: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"m{index}-{revision}",
            "namespace": "ns",
            "labels": {"llmops.dev/revision": revision},
        },
        "spec": {
            "replicas": 2,
            "template": {"spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": "1"}}}]}},
        },
        "status": {"replicas": 2, "readyReplicas": 2},
    }


def worlds(count: int, monitored: bool, now: datetime) -> list[World]:
    out = []
    for index in range(count):
        revision = revision_of(index, monitored)
        model = {
            "metadata": {"name": f"m{index}", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": spec(index, monitored),
            "status": {"stableRevision": revision},
        }
        extra: dict[str, Any] = {}
        if monitored:
            from llmops_operator.monitoring.cost import Rates
            from llmops_operator.monitoring.prices import load_prices

            extra = {
                "eval_runs": history(index, revision, now),
                "eval_gates": [GATE],
                "prices": load_prices(json.dumps({"currency": "USD", "gpuHourPrices": {H100: 2.5}})),
                "token_rates": {revision: Rates(400.0, 1500.0)},
            }
        out.append(
            World(
                model=model, now=now, operator_image="img", deployments=[deployment(index, revision)],
                inventory=INVENTORY, **extra,
            )
        )  # fmt: skip
    return out


def settle(items: list[World]) -> list[World]:
    """Feed each Model's planned status back, twice, so the timed passes see a steady state."""
    for _ in range(2):
        items = [_with_status(w, plan_model(w).status) for w in items]
    return items


def _with_status(world: World, status: dict[str, Any]) -> World:
    return replace(world, model={**world.model, "status": status})


def time_pass(items: list[World], repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        start = time.process_time()
        for world in items:
            plan_model(world)
        seconds.append(time.process_time() - start)
    return seconds


def writes_per_hour(items: list[World], resync: float, sample: int) -> float:
    """Status writes per Model per hour when each of `sample` Models is reconciled every
    `resync` seconds for one simulated hour."""
    writes = 0
    for world in items[:sample]:
        current = world
        previous = plan_model(current).status
        current = _with_status(current, previous)
        passes = int(3600 / resync)
        for step in range(1, passes + 1):
            now = world.now + timedelta(seconds=step * resync)
            runs = list(current.eval_runs)
            plan = plan_model(replace(current, now=now, eval_runs=runs))
            if plan.status != previous:
                writes += 1
            for obj in plan.apply:  # a started scheduled run appears, finished, on the next pass
                if obj["kind"] == "EvalRun":
                    obj = json.loads(json.dumps(obj))
                    obj["metadata"]["creationTimestamp"] = now.isoformat()
                    obj["status"] = {"phase": "Passed", "candidate": {"passRate": 1.0, "score": 0.9}}
                    runs.append(obj)
            deleted = {name for kind, name in plan.delete if kind == "EvalRun"}
            runs = [r for r in runs if r["metadata"]["name"] not in deleted]
            previous = plan.status
            current = replace(_with_status(current, previous), now=now, eval_runs=runs)
    return writes / max(1, min(sample, len(items)))


def measure(label: str, args: argparse.Namespace) -> dict[str, Any]:
    items = settle(worlds(args.models, label == "after", T0))
    seconds = time_pass(items, args.repeats)
    return {
        "config": label,
        "models": args.models,
        "pass_cpu_seconds_median": round(statistics.median(seconds), 4),
        "per_model_ms": round(statistics.median(seconds) / args.models * 1000, 3),
        "status_bytes": round(statistics.mean(len(json.dumps(plan_model(w).status)) for w in items[:50])),
        "status_writes_per_model_hour": round(writes_per_hour(items, args.resync, args.write_sample), 2),
    }


def run_config(label: str, args: argparse.Namespace, src: str | None) -> dict[str, Any]:
    """One configuration in a fresh process (with `src` first on the path when given)."""
    env = {**os.environ, **({"PYTHONPATH": src} if src else {})}
    command = [sys.executable, __file__, "--config", label, "--models", str(args.models)]
    command += ["--repeats", str(args.repeats), "--resync", str(args.resync)]
    command += ["--write-sample", str(args.write_sample)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--resync", type=float, default=30.0, help="seconds between passes of one Model")
    parser.add_argument("--write-sample", type=int, default=20, help="Models simulated for one hour")
    parser.add_argument("--before-src", help="operator/ source root of the code before monitoring")
    parser.add_argument("--config", choices=["before", "after"], help=argparse.SUPPRESS)
    parser.add_argument("--output", default=str(RESULTS / "monitoring_overhead.json"))
    args = parser.parse_args(argv)
    if args.config:
        print(json.dumps(measure(args.config, args)))
        return 0
    before = run_config("before", args, args.before_src)
    after = run_config("after", args, None)
    header = ("config", "models", "pass CPU s", "ms/Model", "status B", "writes/Model/h")
    print("{:8} {:>6} {:>11} {:>9} {:>9} {:>15}".format(*header))
    for r in (before, after):
        keys = ("config", "models", "pass_cpu_seconds_median", "per_model_ms", "status_bytes")
        print(
            "{:8} {:>6} {:>11} {:>9} {:>9} {:>15}".format(
                *(r[k] for k in keys), r["status_writes_per_model_hour"]
            )
        )
    ratio = after["per_model_ms"] / before["per_model_ms"]
    extra = after["per_model_ms"] - before["per_model_ms"]
    print(f"overhead: +{extra:.3f} ms CPU per Model pass ({ratio:.2f}x)")
    print(f"before from {args.before_src or 'this code, monitoring off'}")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    results = {"args": vars(args), "results": [before, after]}
    Path(args.output).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
