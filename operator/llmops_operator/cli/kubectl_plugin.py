"""`kubectl llmops`: see and steer a Model's rollout through its status subresource.

Every command is one status patch, the same one a person could type with
`kubectl patch llm NAME --subresource=status --type=merge -p ...`.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from kubernetes import config

from llmops_operator.kube.client import Kube, KubeError, NotFound, load_api_client

CONTROL_PATCHES: dict[str, dict[str, Any]] = {
    "abort": {"rollout": {"abort": True}},
    "retry": {"rollout": {"abort": False}},
    "promote": {"rollout": {"pauseConditions": []}},
    "promote-full": {"rollout": {"promoteFull": True, "pauseConditions": []}},
}


def control_patch(command: str, full: bool = False) -> dict[str, Any]:
    """The status patch for a control command."""
    return CONTROL_PATCHES["promote-full" if command == "promote" and full else command]


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
    for condition in status.get("conditions") or []:
        lines.append(
            f"  {condition['type']}={condition['status']} {condition.get('reason', '')}:"
            f" {condition.get('message', '')}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubectl llmops", description=__doc__)
    parser.add_argument("-n", "--namespace", default=None, help="namespace (default: kubeconfig's)")
    sub = parser.add_subparsers(dest="command", required=True)
    status_cmd = sub.add_parser("status", help="show the rollout")
    status_cmd.add_argument("model")
    status_cmd.add_argument("--watch", "-w", action="store_true", help="refresh every 2 seconds")
    promote = sub.add_parser("promote", help="promote one step (or --full: to the end)")
    promote.add_argument("model")
    promote.add_argument("--full", action="store_true")
    for name, text in (("abort", "roll back to stable now"), ("retry", "retry an aborted rollout")):
        sub.add_parser(name, help=text).add_argument("model")
    args = parser.parse_args(argv)

    api_client = load_api_client()
    namespace = args.namespace or _current_namespace()
    kube = Kube(api_client)
    try:
        if args.command == "status":
            while True:
                text = render_status(kube.get("Model", namespace, args.model))
                if not args.watch:
                    print(text)
                    return 0
                print("\033[2J\033[H" + text, flush=True)
                time.sleep(2)
        patch = control_patch(args.command, getattr(args, "full", False))
        kube.patch_status("Model", namespace, args.model, patch)
        print(
            f"model.llmops.dev/{args.model} {args.command}{' --full' if getattr(args, 'full', False) else ''}"
        )
        return 0
    except NotFound:
        print(f"error: model {namespace}/{args.model} not found", file=sys.stderr)
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
