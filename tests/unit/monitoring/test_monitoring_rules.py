"""Alert rules and dashboard (manifests/monitoring/): promtool accepts the rules, every alert has a
`promtool test rules` case that fires it and one that does not, and every metric the rules and
the dashboard read is one the operator or an engine really exposes.

Needs promtool (Debian's prometheus package: `bash hack/cluster/deps.sh`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from llmops_operator.runtime.metrics import OperatorMetrics
from llmops_sim.emitter import Emitter

ROOT = Path(__file__).resolve().parents[3]
MONITORING = ROOT / "manifests" / "monitoring"
RULES = MONITORING / "llmops-alerts.rules.yaml"
DASHBOARD = MONITORING / "llmops-dashboard.json"
CHART_FILES = ROOT / "charts" / "llmops-operator" / "files" / "monitoring"
OP = {"job": "llmops-operator"}
MODEL = {**OP, "namespace": "shop", "model": "chat"}
GATE = {**MODEL, "gate": "quality"}


def series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    body = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{body}}}", "values": values}


# alert -> [(fires?, input series, eval time, labels of the expected alert)]
CASES: dict[str, list[tuple[bool, list[dict[str, str]], str, dict[str, str]]]] = {
    "LlmopsRolloutRolledBack": [
        (True, [series("llmops_rollbacks_total", MODEL, "0 0 1 1")], "3m", MODEL),
        (False, [series("llmops_rollbacks_total", MODEL, "0 0 0 0")], "3m", {}),
        (False, [series("llmops_rollbacks_total", MODEL, "0 1 1x20")], "20m", {}),  # long ago
    ],
    "LlmopsRolloutWaitingForDecision": [
        (
            True,
            [series("llmops_rollout_paused", {**MODEL, "reason": "Inconclusive"}, "1x20")],
            "16m",
            {"namespace": "shop", "model": "chat", "reason": "Inconclusive"},
        ),
        (False, [series("llmops_rollout_paused", {**MODEL, "reason": "PausedStep"}, "1x20")], "16m", {}),
        (
            False,
            [series("llmops_rollout_paused", {**MODEL, "reason": "EvalGateError"}, "1x10 0x10")],
            "16m",
            {},
        ),
    ],
    "LlmopsModelNotReady": [
        (True, [series("llmops_model_ready", MODEL, "0x20")], "16m", {"namespace": "shop", "model": "chat"}),
        (False, [series("llmops_model_ready", MODEL, "0x10 1x10")], "16m", {}),
    ],
    "LlmopsEvalGateFailed": [
        (
            True,
            [series("llmops_eval_run_phase", {**GATE, "phase": "Failed"}, "1x3")],
            "2m",
            {"namespace": "shop", "model": "chat", "gate": "quality"},
        ),
        (
            False,
            [
                series("llmops_eval_run_phase", {**GATE, "phase": "Failed"}, "0x3"),
                series("llmops_eval_run_phase", {**GATE, "phase": "Passed"}, "1x3"),
            ],
            "2m",
            {},
        ),
    ],
    "LlmopsEvalGateError": [
        (
            True,
            [series("llmops_eval_run_phase", {**GATE, "phase": "Error"}, "1x3")],
            "2m",
            {"namespace": "shop", "model": "chat", "gate": "quality"},
        ),
        (False, [series("llmops_eval_run_phase", {**GATE, "phase": "Error"}, "0x3")], "2m", {}),
    ],
    "LlmopsQualityDegraded": [
        (
            True,
            [
                series("llmops_eval_pass_rate", {**GATE, "side": "candidate"}, "0.5x3"),
                series("llmops_eval_pass_rate", {**GATE, "side": "baseline"}, "0.9x3"),
            ],
            "2m",
            {"namespace": "shop", "model": "chat", "gate": "quality"},
        ),
        (
            False,
            [
                series("llmops_eval_pass_rate", {**GATE, "side": "candidate"}, "0.88x3"),
                series("llmops_eval_pass_rate", {**GATE, "side": "baseline"}, "0.9x3"),
            ],
            "2m",
            {},
        ),
    ],
    "LlmopsPrometheusUnreachable": [
        (True, [series("llmops_prometheus_up", OP, "0x10")], "6m", OP),
        (False, [series("llmops_prometheus_up", OP, "0x2 1x8")], "6m", {}),
    ],
    "LlmopsReconcileErrors": [
        (
            True,
            [
                series("llmops_reconciles_total", {**OP, "result": "error"}, "0+5x20"),
                series("llmops_reconciles_total", {**OP, "result": "ok"}, "0+10x20"),
            ],
            "16m",
            OP,
        ),
        (
            False,
            [
                series("llmops_reconciles_total", {**OP, "result": "error"}, "0x20"),
                series("llmops_reconciles_total", {**OP, "result": "ok"}, "0+10x20"),
            ],
            "16m",
            {},
        ),
    ],
    "LlmopsWorkQueueBacklog": [
        (True, [series("llmops_work_queue_depth", OP, "30x15")], "11m", OP),
        (False, [series("llmops_work_queue_depth", OP, "30x5 0x10")], "11m", {}),
    ],
    "LlmopsGpuCostUp": [
        (
            True,
            [series("llmops_model_gpus", MODEL, "2x60 4x30")],
            "85m",
            {"namespace": "shop", "model": "chat"},
        ),
        (False, [series("llmops_model_gpus", MODEL, "2x90")], "85m", {}),
        (False, [series("llmops_model_gpus", MODEL, "0x60 4x30")], "85m", {}),  # a new Model
    ],
}


def _rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def _render(template: str, labels: dict[str, str]) -> str:
    """Prometheus' rendering of `{{ $labels.x }}`, the only template construct the rules use."""
    rendered = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], template)
    assert "{{" not in rendered, f"unexpected template construct in {template!r}"
    return rendered


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool not found; run `bash hack/cluster/deps.sh` (Debian's prometheus)", pytrace=False
        )
    return path


def test_promtool_accepts_the_rules(promtool: str) -> None:
    out = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    alerts = {rule["alert"] for rule in _rules()}
    assert alerts == set(CASES)
    for name, cases in CASES.items():
        assert {fires for fires, *_ in cases} == {True, False}, name


def test_promtool_unit_tests_fire_each_alert_only_when_it_should(promtool: str, tmp_path: Path) -> None:
    rules = {rule["alert"]: rule for rule in _rules()}
    tests = []
    for name, cases in CASES.items():
        for fires, inputs, at, labels in cases:
            expected = []
            if fires:
                alert_labels = {**labels, **rules[name].get("labels", {})}
                expected.append(
                    {
                        "exp_labels": alert_labels,
                        "exp_annotations": {
                            k: _render(v, alert_labels) for k, v in rules[name]["annotations"].items()
                        },
                    }
                )
            tests.append(
                {
                    "interval": "1m",
                    "input_series": inputs,
                    "alert_rule_test": [{"eval_time": at, "alertname": name, "exp_alerts": expected}],
                }
            )
    test_file = tmp_path / "alerts_test.yaml"
    test_file.write_text(
        yaml.safe_dump({"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests})
    )
    out = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "SUCCESS" in out.stdout + out.stderr


def _dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def _exposed_names() -> set[str]:
    """Metric names (with _total/_bucket/... suffixes) of the operator and every engine."""
    metrics = OperatorMetrics()
    metrics.record_model("ns", "m", {"phase": "Ready"}, [])
    metrics.count_rollback("ns", "m")
    metrics.analysis_measurements.labels("ns", "m", "ttft", "Successful").inc()
    metrics.reconciles.labels("ok").inc()
    metrics.eval_pass_rate.labels("ns", "m", "g", "candidate").set(1)
    metrics.eval_run_phase.labels("ns", "m", "g", "Passed").set(1)
    metrics.prometheus_reachable(True)
    text = generate_latest(metrics.registry).decode()
    with Emitter() as emitter:
        pods = [
            {"namespace": "ns", "pod": f"p-{engine}", "model": "m", "revision": "r", "engine": engine}
            for engine in ("vllm", "tensorrt-llm", "onnxruntime")
        ]
        emitter.set_pods(pods)
        text += emitter.render()
    return {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")
    }


def _names_in(expr: str) -> set[str]:
    names = set(re.findall(r'__name__=~"([^"]+)"', expr))
    found = {n for group in names for n in group.split("|")}
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    without_strings = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", without_strings)
    without_strings = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", without_strings)
    keywords = {"sum", "by", "rate", "increase", "histogram_quantile", "count", "max", "and", "offset", "le"}
    for token in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_strings):
        if token not in keywords and ("llmops_" in token or ":" in token or token.endswith("_total")):
            found.add(token)
    return found


def test_rules_and_dashboard_read_only_metrics_that_exist() -> None:
    exposed = _exposed_names()
    used = {n for rule in _rules() for n in _names_in(rule["expr"])}
    used |= {n for expr in _dashboard_exprs() for n in _names_in(expr)}
    assert used, "no metric names found"
    assert used - exposed == set(), f"not exposed by the operator or an engine: {sorted(used - exposed)}"


def test_chart_copies_are_in_sync() -> None:
    for name in ("llmops-alerts.rules.yaml", "llmops-dashboard.json"):
        assert (CHART_FILES / name).read_text() == (MONITORING / name).read_text(), (
            f"charts/llmops-operator/files/monitoring/{name} is stale; run hack/sync-chart-crds.sh"
        )
