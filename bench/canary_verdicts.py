"""Canary verdicts at any traffic level: false rollbacks of healthy canaries, detection of real
regressions, and time to abort, with the real Prometheus (issue 16).

On the dev cluster (`bash hack/cluster/up.sh`, Prometheus scraping every second), in a fresh
namespace watched by an operator of its own:

1. A seeded metrics emitter (hack/sim: Poisson arrivals, log-normal per-request latencies,
   Bernoulli errors) registered as a Prometheus target and kept equal to the Running engine
   pods. Every pod, stable or canary, serves `rps` requests per second with a shared
   background error rate (`--background-errors`, default 0.2%).
2. Cases, each a Model (vLLM, 1 replica: at setWeight 50 one canary pod next to one stable
   pod): healthy canaries at every rate (`--healthy` each) and regressed ones (TTFT 1.2x,
   1.5x, 2x and a 5% error rate; `--regressed` each, `--regressed-12` for TTFT 1.2x at the
   highest rate). Run `--batch` Models at a time, each batch with the next seed of `--seeds`.
3. Analysis in the default mode (confidence 0.95, failureLimit default) with two metrics:
   `timeToFirstTokenP95` `maxRatioToStable: 1.1` (so that 1.2x is a violation at all: a 1.2x
   canary against a 1.2 threshold sits exactly on it) and `errorRate` `max: 0.01`; interval
   `--interval`; steps setWeight 50, pause `--pause`. A Model is done when promoted or rolled
   back, or at the deadline (pause + 90 s: then it is counted as neither). `--kinds` reruns
   some regressed kinds only.

Reported per case: rolled back / promoted / undecided, and for rollbacks the looks (analysis
intervals) from the weight change to the abort (`status.rollout.analysis.counts[*].looks`).
Goals (issue 16): 0 false rollbacks in every healthy set; 1.5x TTFT and 5% errors detected in
every run within two intervals at 30 rps and within the rollout at 3 rps; 1.2x at 30 rps
detected in at least 9 of 10. Writes bench/results/canary_verdicts.json.

    KUBECONFIG=$LLMOPS_CLUSTER_DIR/kubeconfig python bench/canary_verdicts.py
    (--healthy 20 --regressed 5 --regressed-12 10 --rates 3,30 --seeds 1,2,3,4 --batch 24 --pause 240)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s

from harness import GPUS, GROUP, PLURAL, REPO, VERSION, ClusterBench, percentile, wait
from llmops_sim.emitter import Emitter

RESULTS = REPO / "bench" / "results" / "canary_verdicts.json"


REGRESSIONS = ("ttft-1.2x", "ttft-1.5x", "ttft-2x", "errors-5%")
FAST_RPS = 30.0
"""From this rate up the goal is detection within two intervals; below it, within the rollout."""


@dataclass(frozen=True)
class Case:
    """One kind of canary at one request rate."""

    kind: str  # healthy, ttft-1.2x, ttft-1.5x, ttft-2x, errors-5%
    rps: float

    @property
    def regressed(self) -> bool:
        return self.kind != "healthy"

    def shape(self, background: float) -> tuple[str, dict[str, float]]:
        if self.kind.startswith("ttft-"):
            factor = float(self.kind.removeprefix("ttft-").removesuffix("x"))
            return "latency_regression", {"factor": factor, "rps": self.rps, "error_rate": background}
        if self.kind == "errors-5%":
            return "error_spike", {"rate": 0.05, "rps": self.rps}
        return "steady", {"rps": self.rps, "error_rate": background}

    @property
    def label(self) -> str:
        return f"{self.kind} @ {self.rps:g} rps"


def model_body(name: str, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Model",
        "metadata": {"name": name},
        "spec": {
            "source": {"uri": "hf://org/tiny-llm"},
            "engine": {"type": "vllm", "args": ["--max-num-seqs=8", f"--served-model-name={name}"]},
            "resources": {"gpus": 1, "gpuProducts": GPUS},
            "replicas": 1,
            "rollout": {
                "strategy": "Canary",
                "canary": {
                    "steps": [{"setWeight": 50}, {"pause": {"duration": f"{args.pause:.0f}s"}}],
                    "analysis": {
                        "interval": f"{args.interval:.0f}s",
                        "metrics": [
                            {"name": "ttft", "builtin": "timeToFirstTokenP95", "maxRatioToStable": 1.1},
                            {"name": "errors", "builtin": "errorRate", "max": 0.01},
                        ],
                    },
                },
            },
        },
    }


class Bench(ClusterBench):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__("verdicts")
        self.args = args

    def batch(self, cases: list[tuple[str, Case]], seed: int) -> list[dict[str, Any]]:
        """Run these Models' canaries at once with an emitter seeded `seed`."""
        with self.scraped(Emitter(seed=seed)) as emitter:
            try:
                return self.judge(cases, emitter, seed)
            finally:
                for name, _ in cases:
                    with contextlib.suppress(k8s.ApiException):
                        self.custom.delete_namespaced_custom_object(
                            GROUP, VERSION, self.namespace, PLURAL, name
                        )

    def judge(self, cases: list[tuple[str, Case]], emitter: Emitter, seed: int) -> list[dict[str, Any]]:
        """Start the canaries of `cases` (shaped in `emitter`) and wait for each verdict."""
        args = self.args
        for name, _ in cases:
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, model_body(name, args)
            )
        stable: dict[str, str] = {}
        for name, case in cases:
            m = wait(
                lambda n=name: self.model(n).get("status", {}).get("phase") == "Ready" and self.model(n),
                240,
                f"{name} Ready",
            )
            stable[name] = m["status"]["stableRevision"]
            emitter.set_shape(
                "steady",
                revision=stable[name],
                namespace=self.namespace,
                rps=case.rps,
                error_rate=args.background_errors,
            )
        time.sleep(3)  # the stable pods serve at their rate before canaries start
        # The canary's shape must be in place before its pod serves a request (a regressed
        # revision is regressed from the start): a thread LISTs the Models while the canaries
        # are started and sets each shape as soon as the canary revision is named, before
        # its pod is Running.
        canary: dict[str, str] = {}
        by_name = dict(cases)

        def shape_canaries() -> None:
            give_up = time.monotonic() + 120
            while len(canary) < len(cases) and time.monotonic() < give_up:
                items = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
                for item in items["items"]:
                    name = item["metadata"]["name"]
                    revision = (item.get("status") or {}).get("canaryRevision")
                    if name in by_name and revision and name not in canary:
                        shape, params = by_name[name].shape(args.background_errors)
                        emitter.set_shape(shape, revision=revision, namespace=self.namespace, **params)
                        canary[name] = revision
                time.sleep(0.2)

        shaper = threading.Thread(target=shape_canaries, daemon=True)
        shaper.start()
        for name, _ in cases:
            body = self.model(name)
            engine_args = list(body["spec"]["engine"]["args"])
            engine_args[0] = "--max-num-seqs=16"
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name, {"spec": {"engine": {"args": engine_args}}}
            )
        shaper.join()
        if len(canary) < len(cases):
            raise TimeoutError(f"no canary revision for {sorted(set(by_name) - set(canary))}")
        started = time.monotonic()
        deadline = started + args.pause + 90
        outcome: dict[str, dict[str, Any]] = {}
        while len(outcome) < len(cases) and time.monotonic() < deadline:
            for name, _ in cases:
                if name in outcome:
                    continue
                status = self.model(name).get("status", {})
                rollout = status.get("rollout") or {}
                looks = max(
                    (c.get("looks", 0) for c in (rollout.get("analysis") or {}).get("counts", {}).values()),
                    default=0,
                )
                if rollout.get("abort"):
                    outcome[name] = {
                        "outcome": "rolled back",
                        "looks": looks,
                        "message": rollout.get("message", ""),
                    }
                elif status.get("stableRevision") == canary[name]:
                    outcome[name] = {
                        "outcome": "promoted",
                        "looks": looks,
                        "after_s": round(time.monotonic() - started, 1),
                    }
            time.sleep(1.0)
        results = []
        for name, case in cases:
            got = outcome.get(
                name,
                {
                    "outcome": "undecided",
                    "message": self.model(name).get("status", {}).get("rollout", {}).get("message", ""),
                },
            )
            results.append(
                {
                    "model": name,
                    "case": case.label,
                    "kind": case.kind,
                    "rps": case.rps,
                    "seed": seed,
                    **got,
                }
            )
            mark = got["outcome"]
            print(
                f"  {name} {case.label:>22}: {mark}"
                + (f" after {got.get('looks')} looks" if mark == "rolled back" else ""),
                flush=True,
            )
        return results

    def run(self) -> list[dict[str, Any]]:
        args = self.args
        rates = [float(r) for r in args.rates.split(",")]
        seeds = [int(s) for s in args.seeds.split(",")]
        cases: list[Case] = []
        for rps in rates:
            cases += [Case("healthy", rps)] * args.healthy
            for kind in args.kinds.split(","):
                n = args.regressed_12 if kind == "ttft-1.2x" and rps == max(rates) else args.regressed
                cases += [Case(kind, rps)] * n
        # shuffled (fixed order) so every batch mixes rates, healthy and regressed canaries
        random.Random(0).shuffle(cases)
        named = [(f"m{i}", c) for i, c in enumerate(cases)]
        results: list[dict[str, Any]] = []
        with self.operator_in_namespace():
            print(
                f"canary verdicts: {len(named)} canaries, rates {args.rates} rps/pod, "
                f"interval {args.interval:.0f}s, "
                f"pause {args.pause:.0f}s, batches of {args.batch}, seeds {args.seeds}",
                flush=True,
            )
            for index in range(0, len(named), args.batch):
                seed = seeds[(index // args.batch) % len(seeds)]
                print(f"batch {index // args.batch + 1} (seed {seed})", flush=True)
                results += self.batch(named[index : index + args.batch], seed)
        return results


def summarize(results: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        groups[r["case"]].append(r)
    rows = {}
    for label, runs in sorted(groups.items(), key=lambda kv: (kv[1][0]["rps"], kv[1][0]["kind"])):
        back = [r for r in runs if r["outcome"] == "rolled back"]
        looks = [r["looks"] for r in back]
        rows[label] = {
            "runs": len(runs),
            "rolled_back": len(back),
            "promoted": sum(r["outcome"] == "promoted" for r in runs),
            "undecided": sum(r["outcome"] == "undecided" for r in runs),
            "abort_looks_p50": percentile(looks, 50) if looks else None,
            "abort_looks_max": max(looks) if looks else None,
            "seeds": sorted({r["seed"] for r in runs}),
        }
    top = max(r["rps"] for r in results)
    healthy_ok = all(v["rolled_back"] == 0 for k, v in rows.items() if k.startswith("healthy"))

    def detected(label: str, within: int | None) -> tuple[int, int]:
        row = [r for r in results if r["case"] == label]
        hits = [r for r in row if r["outcome"] == "rolled back" and (within is None or r["looks"] <= within)]
        return len(hits), len(row)

    goals = {"no false rollbacks": healthy_ok}
    for rps in sorted({r["rps"] for r in results}):
        within = 2 if rps >= FAST_RPS else None
        for kind in ("ttft-1.5x", "errors-5%"):
            hit, n = detected(f"{kind} @ {rps:g} rps", within)
            if not n:
                continue  # not run (--kinds)
            goals[
                f"{kind} @ {rps:g} rps detected {'within 2 intervals' if within else 'within the rollout'}"
            ] = n > 0 and hit == n
    hit, n = detected(f"ttft-1.2x @ {top:g} rps", None)
    if n:
        goals[f"ttft-1.2x @ {top:g} rps detected in >= 9 of 10"] = hit * 10 >= 9 * n
    return {
        "interval_s": args.interval,
        "pause_s": args.pause,
        "rows": rows,
        "goals": goals,
        "details": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--healthy", type=int, default=20, help="healthy canaries per rate")
    parser.add_argument("--regressed", type=int, default=5, help="regressed canaries per kind and rate")
    parser.add_argument("--regressed-12", type=int, default=10, help="TTFT 1.2x canaries at the top rate")
    parser.add_argument("--rates", default="3,30", help="requests per second per pod")
    parser.add_argument("--interval", type=float, default=10.0, help="analysis interval, seconds")
    parser.add_argument("--pause", type=float, default=240.0, help="pause after setWeight 50, seconds")
    parser.add_argument("--batch", type=int, default=24, help="Models at once (2 GPUs each)")
    parser.add_argument("--seeds", default="1,2,3,4", help="emitter seeds, one per batch in turn")
    parser.add_argument("--background-errors", type=float, default=0.002)
    parser.add_argument(
        "--kinds", default=",".join(REGRESSIONS), help="regressed kinds, comma-separated (to rerun one)"
    )
    args = parser.parse_args()
    results = Bench(args).run()
    summary = summarize(results, args)
    print(f"\ninterval {args.interval:.0f}s, pause {args.pause:.0f}s")
    for label, row in summary["rows"].items():
        looks = (
            f", abort after {row['abort_looks_p50']} looks (max {row['abort_looks_max']})"
            if row["rolled_back"]
            else ""
        )
        print(
            f"  {label:>22}: {row['rolled_back']}/{row['runs']} rolled back, {row['promoted']} promoted, "
            f"{row['undecided']} undecided{looks}"
        )
    for goal, ok in summary["goals"].items():
        print(f"  goal {goal}: {'met' if ok else 'MISSED'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2))
    print(f"written to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
