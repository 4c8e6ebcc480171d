"""List and watch Models and the owned kinds that change most (Deployments, Pods, Services)
without kopf.

kopf runs every watch event through its handler machinery (causes, body views, loggers,
progress records): about 2 ms of CPU per event on the bench machine, a quarter of the
operator's CPU from create to Ready, and a Model's Deployment, Pod and Services give about 11
events on the way there (the controller-manager alone writes a Deployment's status ~8 times).
These events only update a cache and wake the owning Model, so here one thread per kind (and
namespace, when the operator watches a few) reads the stream, decodes each line with orjson and
hands the event to the event loop. A watch that ends is resumed from its last resourceVersion;
410 Gone, or a gap after an error, lists again and reports what vanished as DELETED.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from llmops_operator.kube.client import Kube, KubeError, collection_path

log = logging.getLogger("llmops.watch")
SERVER_TIMEOUT_SECONDS = 300
"""How long the API server keeps one watch open (then it is resumed from where it ended)."""
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 10.0)
"""Waits between failed attempts (the last repeats): an outage of any length is ridden out."""

Deliver = Callable[[str, dict[str, Any]], None]
"""(event type, object) -> None; called from the watch thread."""


def scopes(namespaces: list[str]) -> tuple[list[str | None], Callable[[str], bool]]:
    """What to watch for the operator's `--namespace` list (kopf's syntax: names, globs such as
    `team-*`, `!name` to leave one out): a watch per plain name, or one across all namespaces
    when any is a pattern; and which namespaces count."""
    if not namespaces:
        return [None], lambda _ns: True
    if not any(set(n) & set("*?[!") for n in namespaces):
        return list(dict.fromkeys(namespaces)), lambda ns: ns in namespaces  # a name given twice: one watch
    included = [n for n in namespaces if not n.startswith("!")]
    excluded = [n[1:] for n in namespaces if n.startswith("!")]

    def counts(ns: str) -> bool:
        return any(fnmatch.fnmatchcase(ns, p) for p in included or ["*"]) and not any(
            fnmatch.fnmatchcase(ns, p) for p in excluded
        )

    return [None], counts


def covered(
    objects: Mapping[tuple[str, str], dict[str, Any]], namespace: str | None, counts: Callable[[str], bool]
) -> dict[str, dict[str, Any]]:
    """The cached objects one watch covers (its namespace, or every namespace that counts), by
    `namespace/name`: what a re-list of that watch is compared with."""
    return {f"{ns}/{n}": o for (ns, n), o in objects.items() if namespace in (None, ns) and counts(ns)}


class Gone(Exception):
    """The resourceVersion is too old (410): list again."""


@dataclass(frozen=True)
class WatchEvent:
    type: str
    obj: dict[str, Any]
    version: str


def parse_line(line: bytes) -> WatchEvent | None:
    """One line of a watch stream; None for a blank line. Raises Gone for 410, KubeError for
    any other ERROR event."""
    line = line.strip()
    if not line:
        return None
    event = orjson.loads(line)
    type_, obj = event.get("type"), event.get("object") or {}
    if type_ == "ERROR":
        code = int(obj.get("code") or 0)
        if code == 410:
            raise Gone(obj.get("message", "gone"))
        raise KubeError(code, str(obj.get("message", "watch error")))
    version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return WatchEvent(str(type_), obj, version)


def resource_version(obj: Mapping[str, Any]) -> int:
    """An object's resourceVersion as a number, to tell the newer of two versions (0: none)."""
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def vanished(
    cached: Mapping[str, dict[str, Any]], listed: set[str], list_version: int
) -> list[dict[str, Any]]:
    """Cached objects (by key) a fresh list no longer has, unless newer than it."""
    return [obj for key, obj in cached.items() if key not in listed and resource_version(obj) <= list_version]


@dataclass
class KindWatch:
    """List-then-watch of one kind in one namespace (None: every namespace), forever."""

    kube: Kube
    kind: str
    api_version: str
    selector: str
    namespace: str | None
    deliver: Deliver
    cached: Callable[[], dict[str, dict[str, Any]]]
    """The cache's objects of this scope, by `namespace/name` (to tell what a re-list lacks)."""
    stop: threading.Event = field(default_factory=threading.Event)
    listed: threading.Event = field(default_factory=threading.Event)
    """Set once the first list has been delivered (reconciles wait for it)."""

    def start(self) -> threading.Thread:
        scope = self.namespace or "all"
        thread = threading.Thread(target=self.run, name=f"watch-{self.kind.lower()}-{scope}", daemon=True)
        thread.start()
        return thread

    def run(self) -> None:
        version: str | None = None
        failures = 0
        while not self.stop.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
                failures = 0
            except Gone:
                version = None  # too old to resume: list again
            except Exception as exc:  # outage, TLS, a bad line: back off, list again
                wait = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)]
                failures += 1
                log.warning(
                    "watch of %s in %s failed (%s); again in %.0fs", self.kind, self._scope(), exc, wait
                )
                version = None
                self.stop.wait(wait)

    def _scope(self) -> str:
        return self.namespace or "all namespaces"

    def _list(self) -> str:
        listed: set[str] = set()
        version = "0"
        for items, listed_at in self.kube.list_pages(
            collection_path(self.kind, self.namespace), self.selector
        ):
            version = listed_at
            for item in items:
                item.setdefault("kind", self.kind)
                item.setdefault("apiVersion", self.api_version)
                meta = item.get("metadata") or {}
                listed.add(f"{meta.get('namespace')}/{meta.get('name')}")
                self.deliver("ADDED", item)
        for obj in vanished(self.cached(), listed, int(version or 0)):
            self.deliver("DELETED", obj)
        self.listed.set()
        return version

    def _watch(self, version: str) -> str:
        query = {
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(SERVER_TIMEOUT_SECONDS),
            **({"labelSelector": self.selector} if self.selector else {}),
        }
        for line in self.kube.stream(collection_path(self.kind, self.namespace), query):
            if self.stop.is_set():
                break
            event = parse_line(line)
            if event is None:
                continue
            if event.version:
                version = event.version
            if event.type in ("ADDED", "MODIFIED", "DELETED"):
                self.deliver(event.type, event.obj)
        return version
