"""How soon can any verdict "bound past the threshold" catch a regression that starts mid-step?

No cluster: the counts Prometheus would hold are drawn here, second by second, as the emitter
draws them (log-normal TTFT, median 80 ms, sigma 0.5, the emitter's buckets, `--rps` requests
per second per revision), and judged by the operator's own code (`confidence.judge` with the
`look_plan` budget, `mode: threshold`'s point estimate via `binned_quantile`) at every
`--interval` look, with the data `--lag` seconds old. The scenario is `bench/rollback_latency.py`'s:
`maxRatioToStable: 1.2` on the p95 over a 10 s window, steps setWeight 25, pause 25 s,
setWeight 50, pause 25 s, a 1.5x regression starting 5-16 s into a pause.

A third verdict, the 95% bound of the recent window alone at every look (no budget for
repeated looks), shows that the wait is the bound's, not the budget's. Reported per verdict:
the decision time after the onset (p50, p95, max over `--runs`), and how often a canary that
is *not* a violation (healthy, or 1.1x against the 1.2 threshold) is rolled back within one
pause step. It shows the trade mode confidence makes: a bound past
1.2 at a small alpha needs the window mostly regressed, a point estimate only a third of it,
and the point estimate rolls back canaries inside the threshold for the same reason.

    python bench/onset_latency_model.py [--runs 200]
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np

from harness import REPO, percentile
from llmops_operator.api.analysis import AnalysisSpec
from llmops_operator.api.rollout import CanaryStep
from llmops_operator.rollout.analysis.confidence import Data, Window, judge, quantile_checks
from llmops_operator.rollout.analysis.run import look_plan
from llmops_operator.rollout.analysis.stats import Buckets, binned_quantile, quantile_ratio
from llmops_sim.emitter import TTFT_BUCKETS

RESULTS = REPO / "bench" / "results" / "onset_latency_model.json"
THRESHOLD = 1.2
WINDOW_S = 10
PAUSE_S = 25
STEPS = [
    {"setWeight": 25},
    {"pause": {"duration": f"{PAUSE_S}s"}},
    {"setWeight": 50},
    {"pause": {"duration": f"{PAUSE_S}s"}},
]
Verdict = Callable[[np.ndarray, np.ndarray, int, int], bool]
"""(stable per-second counts, canary per-second counts, seconds of data, look number) -> Failed."""


def spec(interval: float) -> AnalysisSpec:
    return AnalysisSpec.model_validate(
        {
            "interval": f"{interval:g}s",
            "failureLimit": 0,
            "metrics": [
                {
                    "name": "ttft",
                    "builtin": "timeToFirstTokenP95",
                    "maxRatioToStable": THRESHOLD,
                    "window": f"{WINDOW_S}s",
                }
            ],
        }
    )


def draws(rng: np.random.Generator, seconds: int, rps: float, factor: Callable[[int], float]) -> np.ndarray:
    """Per-second bucket counts (the last column is +Inf) of Poisson traffic."""
    edges = np.asarray(TTFT_BUCKETS)
    rows = []
    for t in range(seconds):
        ttft = rng.lognormal(math.log(0.08 * factor(t)), 0.5, rng.poisson(rps))
        rows.append(np.bincount(np.searchsorted(edges, ttft, side="left"), minlength=len(edges) + 1))
    return np.asarray(rows, float)


def buckets(rows: np.ndarray) -> Buckets:
    return Buckets(TTFT_BUCKETS, tuple(rows.sum(axis=0).tolist()))


def confidence_verdict(interval: float, weight: int) -> Verdict:
    """Mode confidence as the operator runs it: since the weight change and the recent window."""
    analysis = spec(interval)
    metric = analysis.metrics[0]
    plan = look_plan([CanaryStep.model_validate(s) for s in STEPS], timedelta(seconds=interval))
    checker = quantile_checks(metric, 0.95)
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def verdict(stable: np.ndarray, canary: np.ndarray, seconds: int, look: int) -> bool:
        now = start + timedelta(seconds=seconds)
        recent = max(0, seconds - WINDOW_S)
        window = Window(
            since=start,
            now=now,
            recent=now - timedelta(seconds=WINDOW_S),
            look=look,
            weight=weight,
            plan=plan,
        )
        measured = judge(
            metric,
            analysis,
            checker,
            Data(buckets(canary[:seconds]), buckets(canary[recent:seconds])),
            Data(buckets(stable[:seconds]), buckets(stable[recent:seconds])),
            window,
            "p95",
        )
        return measured.phase == "Failed"

    return verdict


def loose_bound_verdict(stable: np.ndarray, canary: np.ndarray, seconds: int, look: int) -> bool:
    """The loosest bound at all: the recent window's lower bound at 95% at every look, with no
    budget for repeated looks (it would roll back a canary exactly at 1.2x about once a step)."""
    recent = max(0, seconds - WINDOW_S)
    ratio = quantile_ratio(buckets(canary[recent:seconds]), buckets(stable[recent:seconds]), 0.95, [0.05])[0]
    return ratio.lower > THRESHOLD


def threshold_verdict(stable: np.ndarray, canary: np.ndarray, seconds: int, look: int) -> bool:
    """Mode threshold: the p95 point estimates over the window."""
    recent = max(0, seconds - WINDOW_S)
    s = binned_quantile(buckets(stable[recent:seconds]), 0.95)
    c = binned_quantile(buckets(canary[recent:seconds]), 0.95)
    return s > 0 and c / s > THRESHOLD


def first_failed(
    verdict: Verdict, stable: np.ndarray, canary: np.ndarray, phase: float, args: argparse.Namespace
) -> float | None:
    """Seconds after the weight change of the first Failed look, None when none within the step."""
    look, at = 1, phase
    while at <= PAUSE_S + args.interval:
        seconds = int(at - args.lag)
        if seconds >= 1 and verdict(stable, canary, seconds, look):
            return at
        look, at = look + 1, at + args.interval
    return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rps", type=float, default=50.0, help="requests per second per revision")
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument(
        "--lag", type=float, default=1.0, help="age of the newest data at a look (scrape interval)"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    seconds = PAUSE_S + int(args.interval) + 2
    report: dict[str, dict[str, object]] = {}
    for weight in (1, 2):
        verdicts = {
            "confidence": confidence_verdict(args.interval, weight),
            "loose bound": loose_bound_verdict,
            "threshold": threshold_verdict,
        }
        delays: dict[str, list[float]] = {name: [] for name in verdicts}
        missed = dict.fromkeys(verdicts, 0)
        inside = {name: {"healthy": 0, "1.1x": 0} for name in verdicts}
        for _ in range(args.runs):
            phase = float(rng.uniform(0.0, args.interval))
            onset = int(rng.integers(5, 17))
            stable = draws(rng, seconds, args.rps, lambda t: 1.0)
            regressed = draws(rng, seconds, args.rps, lambda t, onset=onset: 1.5 if t >= onset else 1.0)
            healthy = draws(rng, seconds, args.rps, lambda t: 1.0)
            slower = draws(rng, seconds, args.rps, lambda t: 1.1)
            for name, verdict in verdicts.items():
                at = first_failed(verdict, stable, regressed, phase, args)
                if at is None:
                    missed[name] += 1
                else:
                    delays[name].append(at - onset)
                inside[name]["healthy"] += first_failed(verdict, stable, healthy, phase, args) is not None
                inside[name]["1.1x"] += first_failed(verdict, stable, slower, phase, args) is not None
        for name in verdicts:
            d = delays[name]
            row = {
                "p50_s": round(percentile(d, 50), 1) if d else None,
                "p95_s": round(percentile(d, 95), 1) if d else None,
                "max_s": round(max(d), 1) if d else None,
                "missed_in_step": missed[name],
                "healthy_rolled_back": inside[name]["healthy"],
                "1.1x_rolled_back": inside[name]["1.1x"],
                "runs": args.runs,
            }
            report[f"{name}, weight {weight}"] = row
            print(f"{name:>10} at weight {weight}: {row}", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"args": vars(args), "verdicts": report}, indent=2) + "\n")


if __name__ == "__main__":
    main()
