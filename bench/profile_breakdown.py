"""Where the operator's CPU goes, from a `reconcile_scale.py --cprofile` profile.

    python bench/profile_breakdown.py bench/results/prof/operator-500.prof

Prints the profiled CPU (thread time; blocking waits left out) and the cumulative share of
each part of the work: kopf's per-event machinery, our watch-event handlers, the reconcile pass
(gather, plan with validation and rendering, execute with hashing and the API client and its
JSON), the pass fingerprint, metrics and logging. Parts nest (an indented row is inside the one
above; each row counts the CPU of the thread it runs in), so the shares do not add up to 100%.
cProfile's own overhead weighs on functions with many small calls (deep copies), so read the
shares as an order, not as exact figures.
"""

from __future__ import annotations

import argparse
import pstats
from collections.abc import Callable

Key = tuple[str, int, str]
BLOCKING = {
    "<method 'get' of '_queue.SimpleQueue' objects>",
    "<method 'poll' of 'select.poll' objects>",
    "<method 'poll' of 'select.epoll' objects>",
    "<method 'acquire' of '_thread.lock' objects>",
}


def function(path: str, name: str) -> Callable[[Key], bool]:
    return lambda key: key[0].endswith(path) and key[2] == name


ROWS: list[tuple[str, Callable[[Key], bool]]] = [
    ("kopf: per-event processing", function("kopf/_core/reactor/processing.py", "process_resource_event")),
    (
        "  kopf: diff-base essence (deep copy of every body)",
        function("kopf/_cogs/configs/diffbase.py", "build"),
    ),
    (
        "our watch-event handlers (store.on_event, in kopf's threads)",
        function("runtime/store.py", "on_event"),
    ),
    ("    copy of event bodies (store.plain)", function("runtime/store.py", "plain")),
    ("kopf: watch streams", function("kopf/_cogs/clients/api.py", "stream")),
    ("reconcile pass (reconcile_model)", function("handlers/model.py", "reconcile_model")),
    ("  gather", function("handlers/model.py", "gather")),
    ("  fingerprint of the World (pass_cache)", function("runtime/pass_cache.py", "fingerprint")),
    ("  plan_model", function("model_plan/__init__.py", "plan_model")),
    ("    pydantic validation (all callers)", lambda k: k[2].startswith("<method 'validate_python'")),
    ("    rendering (render_revision)", function("llmops_operator/resources.py", "render_revision")),
    ("  execute", function("kube/apply.py", "execute")),
    ("    hashing (digest)", function("llmops_operator/hashing.py", "digest")),
    ("    API client (Kube._call)", function("kube/client.py", "_call")),
    ("      JSON encode of bodies", function("json/__init__.py", "dumps")),
    ("      JSON decode of answers", function("json/__init__.py", "loads")),
    ("      urllib3 / http.client / TLS", function("urllib3/connectionpool.py", "urlopen")),
    ("prometheus_client (labels)", function("prometheus_client/metrics.py", "labels")),
    ("logging (Logger.handle)", function("logging/__init__.py", "handle")),
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profile", help="a .prof file written by reconcile_scale.py --cprofile")
    args = parser.parse_args()
    stats = pstats.Stats(args.profile).stats  # type: ignore[attr-defined]
    total = sum(v[2] for k, v in stats.items() if k[2] not in BLOCKING)
    print(f"profiled CPU (thread time, blocking waits left out): {total:.1f} s")
    for label, match in ROWS:
        seconds = sum(v[3] for k, v in stats.items() if match(k))
        print(f"{label:58s} {seconds:7.1f} s {100 * seconds / total:6.1f}%")


if __name__ == "__main__":
    main()
