"""`kube/watch.py`: watch lines decoded, resumed from the last resourceVersion, listed again on
410 Gone or after a failure, with what vanished meanwhile reported as DELETED."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.kube.client import KubeError
from llmops_operator.kube.watch import Gone, KindWatch, covered, parse_line, scopes, vanished


def obj(name: str, version: int, namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": str(version)}}


def line(type_: str, body: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": type_, "object": body})


def test_lines_decode_to_events_and_errors_raise() -> None:
    event = parse_line(line("MODIFIED", obj("a", 7)) + b"\r\n")
    assert event is not None and (event.type, event.version) == ("MODIFIED", "7")
    assert parse_line(b"  \n") is None
    bookmark = parse_line(line("BOOKMARK", {"metadata": {"resourceVersion": "9"}}))
    assert bookmark is not None and (bookmark.type, bookmark.version) == ("BOOKMARK", "9")
    with pytest.raises(Gone):
        parse_line(line("ERROR", {"code": 410, "message": "too old resource version"}))
    with pytest.raises(KubeError):
        parse_line(line("ERROR", {"code": 500, "message": "boom"}))


def test_vanished_keeps_what_is_newer_than_the_list() -> None:
    cached = {"ns/a": obj("a", 5), "ns/b": obj("b", 5), "ns/c": obj("c", 50)}
    assert vanished(cached, {"ns/a"}, 10) == [obj("b", 5)]  # c was written after the list


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.integers(0, 100), max_size=8), st.integers(0, 100))
def test_vanished_is_exactly_the_unlisted_not_newer(versions: dict[str, int], list_version: int) -> None:
    cached = {f"ns/{n}": obj(n, v) for n, v in versions.items()}
    listed = {f"ns/{n}" for n in list(versions)[::2]}
    gone = vanished(cached, listed, list_version)
    assert {f"ns/{o['metadata']['name']}" for o in gone} == {
        k
        for k, o in cached.items()
        if k not in listed and int(o["metadata"]["resourceVersion"]) <= list_version
    }


class FakeKube:
    """Answers lists and watch streams from scripts; the last call stops the watch."""

    def __init__(self, lists: list[tuple[list[dict[str, Any]], str]], streams: list[Any]) -> None:
        self.lists, self.streams = lists, streams
        self.watched_from: list[str] = []
        self.stop: threading.Event | None = None

    def list_pages(self, path: str, selector: str | None) -> Iterator[tuple[Any, str]]:
        items, version = self.lists.pop(0)
        yield items[:1], version  # two pages of one snapshot
        yield items[1:], version

    def stream(self, path: str, query: dict[str, str]) -> Iterator[bytes]:
        self.watched_from.append(query["resourceVersion"])
        script = self.streams.pop(0)
        if isinstance(script, Exception):
            raise script
        yield from script
        if not self.streams:
            assert self.stop is not None
            self.stop.set()


def run_watch(kube: FakeKube, cache: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []

    def deliver(type_: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        seen.append((type_, meta["name"]))
        key = f"{meta['namespace']}/{meta['name']}"
        if type_ == "DELETED":
            cache.pop(key, None)
        else:
            cache[key] = body

    watch = KindWatch(kube, "Pod", "v1", "app", None, deliver, lambda: dict(cache))  # type: ignore[arg-type]
    kube.stop = watch.stop
    watch.run()
    assert watch.listed.is_set()
    return seen


def test_a_watch_resumes_from_its_last_version_and_lists_again_when_gone() -> None:
    cache: dict[str, dict[str, Any]] = {}
    kube = FakeKube(
        lists=[([obj("a", 1), obj("b", 2)], "2"), ([obj("a", 8)], "8")],
        streams=[
            [line("MODIFIED", obj("a", 3)), line("BOOKMARK", {"metadata": {"resourceVersion": "5"}})],
            [line("ERROR", {"code": 410, "message": "gone"})],
            [line("ADDED", obj("c", 9))],
        ],
    )
    seen = run_watch(kube, cache)
    # the first list, the events, then a fresh list after 410 that reports b as deleted
    assert seen == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("MODIFIED", "a"),
        ("ADDED", "a"),
        ("DELETED", "b"),
        ("ADDED", "c"),
    ]
    assert kube.watched_from == ["2", "5", "8"]  # resumed after the bookmark; from the new list
    assert set(cache) == {"ns/a", "ns/c"}


def test_a_failed_watch_backs_off_and_lists_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("llmops_operator.kube.watch.BACKOFF_SECONDS", (0.0,))
    cache: dict[str, dict[str, Any]] = {}
    kube = FakeKube(
        lists=[([obj("a", 1)], "1"), ([], "4")],
        streams=[KubeError(0, "API server unreachable"), [line("ADDED", obj("d", 5))]],
    )
    seen = run_watch(kube, cache)
    assert seen == [("ADDED", "a"), ("DELETED", "a"), ("ADDED", "d")]
    assert kube.watched_from == ["1", "4"]


def test_namespace_names_get_a_watch_each_and_patterns_one_across_all() -> None:
    assert scopes([])[0] == [None] and scopes([])[1]("any")
    watched, counts = scopes(["team-a", "team-b"])
    assert watched == ["team-a", "team-b"] and counts("team-a") and not counts("team-c")
    watched, counts = scopes(["t123-*", "!t123-private"])
    assert watched == [None]
    assert counts("t123-x") and not counts("t123-private") and not counts("other")
    assert scopes(["!kube-*"])[1]("default") and not scopes(["!kube-*"])[1]("kube-system")


NAMESPACES = st.sampled_from(["team-a", "team-b", "t123-x", "t123-private", "kube-system", "default"])


@given(
    options=st.lists(
        st.sampled_from(["team-a", "team-b", "t123-*", "!t123-private", "!kube-*", "default"]), max_size=4
    ),
    keys=st.sets(st.tuples(NAMESPACES, st.sampled_from(["m1", "m2"])), max_size=8),
)
def test_the_watches_cover_every_object_of_a_namespace_that_counts_and_none_other(
    options: list[str], keys: set[tuple[str, str]]
) -> None:
    objects = {key: {"metadata": {"namespace": key[0], "name": key[1]}} for key in keys}
    watched, counts = scopes(options)
    per_watch = [covered(objects, namespace, counts) for namespace in watched]
    union = {key for cover in per_watch for key in cover}
    assert union == {f"{ns}/{n}" for ns, n in keys if counts(ns)}
    assert sum(len(cover) for cover in per_watch) == len(union), "two watches compare the same object"
