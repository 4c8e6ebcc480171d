"""`kubectl llmops`: see and steer a Model's rollout.

`get MODEL [-w]` shows the tree a person wants during a rollout (Model -> revisions ->
Deployments -> pods per node and GPU product, the current step, the EvalRun, the last analysis
results); `list` shows every Model with its phase, weight and last decision. Control commands are
one status patch each, the same one a person could type with
`kubectl patch llm NAME --subresource=status --type=merge -p ...`. Subcommands are entries of
COMMANDS: a new one is a parser function and a run function.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import config

from llmops_operator.api.common import LABEL_COMPONENT, LABEL_MODEL, LABEL_REVISION
from llmops_operator.cli import kubectl_report
from llmops_operator.kube.client import Kube, KubeError, NotFound, load_api_client
from llmops_operator.resources import GPU_PRODUCT_LABEL

WIDTH = 100
"""Every line of `get` and `list` fits a 100-column terminal."""

CONTROL_PATCHES: dict[str, dict[str, Any]] = {
    "abort": {"rollout": {"abort": True}},
    "retry": {"rollout": {"abort": False}},
    "promote": {"rollout": {"pauseConditions": []}},
    "promote-full": {"rollout": {"promoteFull": True, "pauseConditions": []}},
}


def control_patch(
    command: str, full: bool = False, status: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The status patch for a control command. A retry of a gate that could not be judged
    (paused `EvalGateError`) also clears the gate's run, so that it runs again."""
    if command == "retry" and _gate_errored(status or {}):
        return {"rollout": {"abort": False, "evalRun": None}}
    return CONTROL_PATCHES["promote-full" if command == "promote" and full else command]


def _gate_errored(status: Mapping[str, Any]) -> bool:
    pauses = (status.get("rollout") or {}).get("pauseConditions") or []
    return any(c.get("reason") == "EvalGateError" for c in pauses)


def render_status(model: dict[str, Any]) -> str:
    """A readable view of a Model's rollout: revisions, steps, weight, analysis, conditions."""
    meta, spec, status = model["metadata"], model.get("spec", {}), model.get("status", {})
    rollout = status.get("rollout") or {}
    lines = [
        f"Model {meta['namespace']}/{meta['name']}   phase: {status.get('phase', '-')}",
        f"  stable: {status.get('stableRevision', '-')}   canary: {status.get('canaryRevision') or '-'}"
        f"   weight: {rollout.get('weight', 0)}%   ready: {status.get('readyReplicas', 0)}"
        f"/{status.get('replicas', 0)}",
    ]
    if rollout.get("abort"):
        lines.append("  ABORTED: traffic is on the stable revision; `kubectl llmops retry` starts again")
    steps = ((spec.get("rollout") or {}).get("canary") or {}).get("steps") or []
    current = rollout.get("stepIndex")
    for index, step in enumerate(steps):
        marker = "->" if index == current else ("ok" if current is not None and index < current else "  ")
        kind, value = next(iter(step.items()))
        lines.append(f"  {marker} {index}: {kind} {value if value not in ({}, None) else ''}".rstrip())
    for pause in rollout.get("pauseConditions") or []:
        lines.append(f"  paused: {pause.get('reason')} since {pause.get('startTime')}")
    measurements = (rollout.get("analysis") or {}).get("measurements") or []
    if measurements:
        lines.append("  analysis:")
        for item in measurements[-6:]:
            if item.get("confidence") is not None:  # mode confidence: the message is the compact verdict
                lines.append(f"    {item.get('message', '')}")
                continue
            lines.append(
                f"    {item.get('metric')}: {item.get('phase')} value={item.get('value')}"
                f" stable={item.get('stableValue')} {item.get('message', '')}".rstrip()
            )
    lines += _monitoring_lines(status)
    for condition in status.get("conditions") or []:
        lines.append(
            f"  {condition['type']}={condition['status']} {condition.get('reason', '')}:"
            f" {condition.get('message', '')}"
        )
    return "\n".join(lines)


def _num(value: Any, pattern: str = "{:.3g}") -> str:
    return "-" if value is None else pattern.format(value)


def _monitoring_lines(status: dict[str, Any]) -> list[str]:
    """Scheduled evaluations (trend) and cost of the serving revisions."""
    lines: list[str] = []
    for trend in status.get("quality") or []:
        failing = ", ".join(trend.get("failingAssertions") or [])
        lines.append(
            f"  quality {trend.get('gate')}: last {trend.get('lastPhase') or '-'}"
            f" score={_num(trend.get('lastScore'))} passRate={_num(trend.get('lastPassRate'))}"
            f" best={_num(trend.get('bestScore'))} atPromotion={_num(trend.get('baselineScore'))}"
            f" next={trend.get('nextRunAt') or '-'}" + (f" failing: {failing}" if failing else "")
        )
    cost = status.get("cost") or {}
    if cost:
        currency = cost.get("currency") or ""
        lines.append(
            f"  cost: {_num(cost.get('costPerMillionOutputTokens'))} {currency}/M output tokens,"
            f" {_num(cost.get('outputTokensPerSecond'), '{:.1f}')} output tokens/s".replace("  ", " ")
        )
        for item in cost.get("revisions") or []:
            lines.append(
                f"    {item.get('revision')}: {item.get('readyReplicas', 0)}x{item.get('gpus', 0)}"
                f" {item.get('gpuProduct') or 'GPU'}, {_num(item.get('gpuHours'), '{:.2f}')} GPU-hours,"
                f" in {_num(item.get('inputTokensPerSecond'), '{:.1f}')}/s"
                f" out {_num(item.get('outputTokensPerSecond'), '{:.1f}')}/s,"
                f" {_num(item.get('costPerMillionOutputTokens'))} {currency}/M".rstrip()
            )
    return lines


# ---------------------------------------------------------------------------------------------
# get: the tree view (pure: a Snapshot in, text out)
# ---------------------------------------------------------------------------------------------

COLORS = {
    "green": ("Ready", "Healthy", "Successful", "Passed", "Stable", "True"),
    "yellow": ("Progressing", "Paused", "Pending", "Running", "Inconclusive", "Unknown", "Superseded"),
    "red": ("Degraded", "Failed", "Error", "RolledBack", "ABORTED", "False"),
}
_ANSI = {"green": "\033[32m", "yellow": "\033[33m", "red": "\033[31m", "bold": "\033[1m", "reset": "\033[0m"}
_WORDS = {word: color for color, words in COLORS.items() for word in words}
_WORD_RE = re.compile(r"\b(" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")\b")


@dataclass
class Snapshot:
    """What `get` shows, read from the API server in one go (or from a recording in tests)."""

    model: dict[str, Any]
    deployments: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    node_products: dict[str, str] = field(default_factory=dict)
    eval_runs: list[dict[str, Any]] = field(default_factory=list)


def fit(line: str, width: int = WIDTH) -> str:
    """Cut a line to `width` characters, marking the cut."""
    return line if len(line) <= width else line[: width - 1] + "…"


def wrap(first: str, words: Iterable[str], indent: str = "  ", width: int = WIDTH) -> list[str]:
    """`first` followed by `words` two spaces apart, continued on `indent`ed lines."""
    lines = [first]
    for word in words:
        candidate = lines[-1] + (" " if lines[-1].endswith(":") else "  ") + word
        if len(candidate) <= width:
            lines[-1] = candidate
        else:
            lines.append(indent + word)
    return lines


def paint(text: str, color: bool) -> str:
    """Colour status words (after fitting, so colour codes never count against the width)."""
    if not color:
        return text
    return _WORD_RE.sub(lambda m: f"{_ANSI[_WORDS[m.group(1)]]}{m.group(1)}{_ANSI['reset']}", text)


def _step_text(step: Mapping[str, Any]) -> str:
    kind, value = next(iter(step.items()))
    if kind == "setWeight":
        return f"setWeight {value}"
    if kind == "pause":
        return (
            f"pause {value.get('duration')}" if value and value.get("duration") else "pause (until promoted)"
        )
    if kind == "evalGate":
        return f"evalGate {value.get('name')}"
    names = (value or {}).get("metrics")
    return f"analysis {','.join(names)}" if names else "analysis"


def _ready_replicas(deployment: Mapping[str, Any]) -> str:
    status = deployment.get("status") or {}
    return f"{status.get('readyReplicas', 0)}/{(deployment.get('spec') or {}).get('replicas', 0)} ready"


def _pods_by_node(pods: Iterable[Mapping[str, Any]], products: Mapping[str, str]) -> list[str]:
    groups: dict[tuple[str, str], list[bool]] = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName") or "(unscheduled)"
        conditions = (pod.get("status") or {}).get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        groups.setdefault((node, products.get(node, "-")), []).append(ready)
    return [
        f"{node}  {product}  {len(ready)} pod{'s' if len(ready) != 1 else ''}, {sum(ready)} ready"
        for (node, product), ready in sorted(groups.items())
    ]


def _eval_run_text(run: Mapping[str, Any]) -> str:
    status = run.get("status") or {}
    text = f"EvalRun {run['metadata']['name']}  {status.get('phase', 'Pending')}"
    candidate, baseline = status.get("candidate") or {}, status.get("baseline") or {}
    if "passRate" in candidate:
        text += f"  pass rate {candidate['passRate']:.2f}"
        if "passRate" in baseline:
            text += f" (stable {baseline['passRate']:.2f})"
    if status.get("failingAssertions"):
        text += f"  failing: {', '.join(status['failingAssertions'])}"
    elif status.get("phase") == "Error" and status.get("message"):
        text += f"  {status['message']}"
    return text


def _tree(lines: list[str], prefix: str, items: list[tuple[str, list[Any]]]) -> None:
    """Append `items` (text, children) under `prefix` with box-drawing branches."""
    for index, (text, children) in enumerate(items):
        last = index == len(items) - 1
        lines.append(f"{prefix}{'└─ ' if last else '├─ '}{text}")
        _tree(lines, prefix + ("   " if last else "│  "), children)


def render_tree(snap: Snapshot, color: bool = False, width: int = WIDTH) -> str:
    """The `kubectl llmops get` view of one Model."""
    status = snap.model.get("status") or {}
    rollout = status.get("rollout") or {}
    lines = _header(snap.model, width)
    _tree(lines, "", _revision_items(snap))
    lines += _analysis(rollout)
    conditions = [
        f"{c['type']}={c['status']}"
        + (f"({c['reason']})" if c.get("status") != "True" and c.get("reason") else "")
        for c in status.get("conditions") or []
    ]
    if conditions:
        lines += wrap("Conditions:", conditions, indent="  ", width=width)
    return "\n".join(paint(fit(line, width), color) for line in lines)


def _header(model: Mapping[str, Any], width: int) -> list[str]:
    """The Model's phase, endpoint, rollout message, canary steps and pauses."""
    meta, spec, status = model["metadata"], model.get("spec") or {}, model.get("status") or {}
    rollout = status.get("rollout") or {}
    canary = status.get("canaryRevision")
    ready = f"{status.get('readyReplicas', 0)}/{status.get('replicas', 0)}"
    strategy = (spec.get("rollout") or {}).get("strategy", "RollingUpdate")
    lines = [
        f"Model {meta['name']}  namespace {meta['namespace']}",
        f"  {status.get('phase', 'Pending')}  ready {ready}  strategy {strategy}",
    ]
    if status.get("endpoint"):
        lines.append(f"  endpoint {status['endpoint']}")
    if rollout.get("abort"):
        lines.append("  ABORTED: traffic is on the stable revision; `kubectl llmops retry` starts again")
    if canary and rollout.get("message") and not rollout.get("pauseConditions"):
        lines += textwrap.wrap(rollout["message"], width, initial_indent="  ", subsequent_indent="    ")
    steps = ((spec.get("rollout") or {}).get("canary") or {}).get("steps") or []
    if canary and steps:
        current = int(rollout.get("stepIndex", 0))
        marks = [
            f"{'✔' if i < current else ('▶' if i == current else '·')} {i}:{_step_text(step)}"
            for i, step in enumerate(steps)
        ]
        lines.append(f"  step {min(current, len(steps))}/{len(steps)}: " + "  ".join(marks))
    for pause in rollout.get("pauseConditions") or []:
        text = f"Paused ({pause.get('reason')}) since {pause.get('startTime')}: {pause.get('message', '')}"
        lines += textwrap.wrap(text, width, initial_indent="  ", subsequent_indent="    ")
    return lines


def _revision_items(snap: Snapshot) -> list[tuple[str, list[Any]]]:
    """One tree item per revision (canary, stable, then old ones) with its Deployments, their
    pods by node, and its EvalRuns."""
    status = snap.model.get("status") or {}
    rollout = status.get("rollout") or {}
    stable, canary = status.get("stableRevision"), status.get("canaryRevision")
    weight = int(rollout.get("weight", 0)) if canary else 0
    records = {r["revision"]: r for r in status.get("revisions") or []}
    by_revision: dict[str, list[dict[str, Any]]] = {}
    for deployment in snap.deployments:
        revision = (deployment["metadata"].get("labels") or {}).get(LABEL_REVISION, "")
        by_revision.setdefault(revision, []).append(deployment)
    shown = [r for r in (canary, stable) if r] + [r for r in by_revision if r not in (canary, stable)]
    items: list[tuple[str, list[Any]]] = []
    for revision in dict.fromkeys(shown):
        role = "canary" if revision == canary else ("stable" if revision == stable else "old")
        share = weight if revision == canary else (100 - weight if revision == stable else 0)
        outcome = (records.get(revision) or {}).get("outcome", "-")
        children: list[tuple[str, list[Any]]] = []
        for deployment in sorted(by_revision.get(revision, []), key=lambda d: d["metadata"]["name"]):
            pods = [
                p
                for p in snap.pods
                if (p["metadata"].get("labels") or {}).get(LABEL_REVISION) == revision
                and (p["metadata"].get("labels") or {}).get(LABEL_COMPONENT) == "engine"
                and not p["metadata"].get("deletionTimestamp")
            ]
            nodes = [(text, []) for text in _pods_by_node(pods, snap.node_products)]
            children.append(
                (f"Deployment {deployment['metadata']['name']}  {_ready_replicas(deployment)}", nodes)
            )
        for run in sorted(snap.eval_runs, key=lambda r: r["metadata"].get("creationTimestamp") or ""):
            if (run.get("spec") or {}).get("revision") == revision:
                children.append((_eval_run_text(run), []))
        items.append((f"revision {revision}  {role}  weight {share}%  {outcome}", children))
    return items


def _analysis(rollout: Mapping[str, Any]) -> list[str]:
    """The latest measurement of each analysed metric."""
    latest: dict[str, Mapping[str, Any]] = {}
    for measurement in (rollout.get("analysis") or {}).get("measurements") or []:
        latest[measurement["metric"]] = measurement
    if not latest:
        return []
    lines = ["Analysis (latest per metric):"]
    for name, m in latest.items():
        value = "-" if m.get("value") is None else f"{m['value']:.4g}"
        stable_value = "" if m.get("stableValue") is None else f" (stable {m['stableValue']:.4g})"
        lines.append(f"  {name:<16} {m.get('phase', ''):<12} {value}{stable_value}  {m.get('threshold', '')}")
    return lines


def last_decision(model: Mapping[str, Any]) -> str:
    """What the rollout last decided or waits for, in a few words."""
    status = model.get("status") or {}
    rollout = status.get("rollout") or {}
    if status.get("canaryRevision") and rollout.get("message"):
        return str(rollout["message"])
    records = status.get("revisions") or []
    if records:
        record = records[0]
        return f"{record['revision']} {record.get('outcome', '')}: {record.get('reason', '')}".rstrip(": ")
    return "-"


def render_list(models: Iterable[Mapping[str, Any]], color: bool = False, width: int = WIDTH) -> str:
    """The `kubectl llmops list` table."""
    rows = [("NAME", "PHASE", "STABLE", "CANARY", "WEIGHT", "READY", "LAST DECISION")]
    for model in sorted(models, key=lambda m: m["metadata"]["name"]):
        status = model.get("status") or {}
        canary = status.get("canaryRevision")
        rows.append(
            (
                model["metadata"]["name"],
                status.get("phase", "Pending"),
                status.get("stableRevision") or "-",
                canary or "-",
                f"{(status.get('rollout') or {}).get('weight', 0) if canary else 0}%",
                f"{status.get('readyReplicas', 0)}/{status.get('replicas', 0)}",
                last_decision(model),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=False)) + "  " + row[-1]
        for row in rows
    ]
    return "\n".join(paint(fit(line.rstrip(), width), color and i > 0) for i, line in enumerate(lines))


def read_snapshot(kube: Kube, namespace: str, name: str) -> Snapshot:
    """Everything `render_tree` shows, from the API server."""
    model = kube.get("Model", namespace, name)
    selector = f"{LABEL_MODEL}={name}"
    deployments = [
        d
        for d in kube.list("Deployment", namespace, selector)
        if (d["metadata"].get("labels") or {}).get(LABEL_REVISION)
    ]
    pods = [
        p
        for p in kube.list("Pod", namespace, selector)
        if (p["metadata"].get("labels") or {}).get(LABEL_REVISION)
    ]
    products: dict[str, str] = {}
    for node in {(p.get("spec") or {}).get("nodeName") for p in pods} - {None}:
        try:
            products[node] = (kube.get_node(node)["metadata"].get("labels") or {}).get(GPU_PRODUCT_LABEL, "-")
        except KubeError:  # no right to read nodes: the tree still shows the node's name
            products[node] = "?"
    eval_runs = kube.list("EvalRun", namespace, selector)
    return Snapshot(model, deployments, pods, products, eval_runs)


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """A subcommand: its help, its arguments, and what it does (returns the exit code)."""

    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Kube, str], int]
    target: str = "model"
    """The kind (lower case) the command reads, which is also the name of its argument."""


def _watch(args: argparse.Namespace, render: Callable[[], str]) -> int:
    """Print once, or with -w refresh every 2 seconds (clearing the screen on a terminal)."""
    while True:
        text = render()
        if not getattr(args, "watch", False):
            print(text)
            return 0
        print(("\033[2J\033[H" if sys.stdout.isatty() else "") + text, flush=True)
        time.sleep(2)


def _run_get(args: argparse.Namespace, kube: Kube, namespace: str) -> int:
    color = sys.stdout.isatty()
    return _watch(args, lambda: render_tree(read_snapshot(kube, namespace, args.model), color))


def _run_list(args: argparse.Namespace, kube: Kube, namespace: str) -> int:
    color = sys.stdout.isatty()
    return _watch(args, lambda: render_list(kube.list("Model", namespace), color))


def _run_status(args: argparse.Namespace, kube: Kube, namespace: str) -> int:
    return _watch(args, lambda: render_status(kube.get("Model", namespace, args.model)))


def _run_control(args: argparse.Namespace, kube: Kube, namespace: str) -> int:
    full = getattr(args, "full", False)
    status = (kube.get("Model", namespace, args.model).get("status") or {}) if args.command == "retry" else {}
    kube.patch_status("Model", namespace, args.model, control_patch(args.command, full, status))
    print(f"model.llmops.dev/{args.model} {args.command}{' --full' if full else ''}")
    return 0


def _model_arg(watch: bool = False, full: bool = False) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("model")
        if watch:
            parser.add_argument("--watch", "-w", action="store_true", help="refresh every 2 seconds")
        if full:
            parser.add_argument("--full", action="store_true", help="skip the remaining steps")

    return add


def _list_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--watch", "-w", action="store_true", help="refresh every 2 seconds")


COMMANDS: dict[str, Command] = {
    "get": Command(
        "show the Model's tree: revisions, Deployments, pods, step, EvalRun", _model_arg(watch=True), _run_get
    ),
    "list": Command("list Models with phase, weight and last decision", _list_args, _run_list),
    "status": Command(
        "show the rollout's steps, analysis and conditions", _model_arg(watch=True), _run_status
    ),
    "promote": Command("promote one step (or --full: to the end)", _model_arg(full=True), _run_control),
    "abort": Command("roll back to stable now", _model_arg(), _run_control),
    "retry": Command("retry an aborted rollout, or an eval gate that errored", _model_arg(), _run_control),
    "report": Command(
        "write an EvalRun's HTML report", kubectl_report.arguments, kubectl_report.run, target="evalrun"
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubectl llmops", description=__doc__)
    parser.add_argument("-n", "--namespace", default=None, help="namespace (default: kubeconfig's)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        command.arguments(sub.add_parser(name, help=command.help))
    args = parser.parse_args(argv)

    namespace = args.namespace or _current_namespace()
    kube = Kube(load_api_client())
    command = COMMANDS[args.command]
    try:
        return command.run(args, kube, namespace)
    except NotFound:
        name = getattr(args, command.target, "")
        print(f"error: {command.target} {namespace}/{name} not found", file=sys.stderr)
        return 1
    except KubeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


def _current_namespace() -> str:
    try:
        _, context = config.list_kube_config_contexts()
        return context.get("context", {}).get("namespace") or "default"
    except (config.ConfigException, FileNotFoundError):
        return "default"


if __name__ == "__main__":
    sys.exit(main())
