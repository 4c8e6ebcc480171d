"""The work queue never runs one key twice at once and keeps requeues; caches ignore stale events."""

from __future__ import annotations

import asyncio

from llmops_operator.runtime.queue import WorkQueue
from llmops_operator.runtime.store import Store, plain


def _obj(name: str, rv: int, model: str = "m", kind_labels: bool = True) -> dict:
    labels = {"llmops.dev/model": model} if kind_labels else {}
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": str(rv), "labels": labels}}


def test_queue_deduplicates_and_serialises_a_key() -> None:
    async def scenario() -> list[str]:
        queue = WorkQueue()
        seen: list[str] = []
        running: set[str] = set()

        async def process(key: str) -> None:
            assert key not in running, "the same key ran twice at once"
            running.add(key)
            seen.append(key)
            if len(seen) == 1:
                queue.add("a")  # arrives while "a" is processing: must run again afterwards
            await asyncio.sleep(0.01)
            running.discard(key)
            return None

        workers = [asyncio.create_task(queue.worker(process)) for _ in range(3)]
        queue.add("a")
        queue.add("a")
        queue.add("b")
        await asyncio.sleep(0.1)
        for worker in workers:
            worker.cancel()
        return seen

    seen = asyncio.run(scenario())
    assert sorted(seen) == ["a", "a", "b"]


def test_queue_requeues_after_delay_and_after_errors() -> None:
    """A key whose reconcile raised is retried after the error delay, and the worker goes on
    with the other keys; a key asks for its own requeue and stops when it returns None."""

    async def scenario() -> list[str]:
        queue = WorkQueue(error_retry_seconds=0.01)
        seen: list[str] = []
        both_twice = asyncio.Event()

        async def process(key: str) -> float | None:
            seen.append(key)
            if seen.count("boom") >= 2 and seen.count("x") >= 2:
                both_twice.set()
            if key == "boom" and seen.count("boom") == 1:
                raise RuntimeError("bug in one Model")
            return 0.01 if seen.count(key) < 2 else None

        worker = asyncio.create_task(queue.worker(process))
        queue.add("boom")
        queue.add("x")
        await asyncio.wait_for(both_twice.wait(), timeout=10)
        worker.cancel()
        return seen

    seen = asyncio.run(scenario())
    assert seen[:2] == ["boom", "x"], "the error stopped the worker"
    assert seen.count("boom") == 2 and seen.count("x") == 2


def test_store_keeps_the_newest_version_and_indexes_by_model() -> None:
    store = Store()
    store.on_event("Deployment", "ADDED", _obj("m-1", 5))
    store.on_event("Deployment", "MODIFIED", _obj("m-1", 3))  # stale event after a write response
    assert store.deployments.get("ns", "m-1")["metadata"]["resourceVersion"] == "5"
    store.on_event("Deployment", "ADDED", _obj("m-2", 6))
    assert [o["metadata"]["name"] for o in store.deployments.owned_by("ns", "m")] == ["m-1", "m-2"]
    store.on_event("Deployment", "DELETED", _obj("m-1", 7))
    assert [o["metadata"]["name"] for o in store.deployments.owned_by("ns", "m")] == ["m-2"]


def test_plain_copies_nested_mappings() -> None:
    source = {"a": {"b": [1, {"c": 2}]}}
    copy = plain(source)
    copy["a"]["b"][1]["c"] = 3
    assert source["a"]["b"][1]["c"] == 2


def test_a_relist_drops_what_was_deleted_during_a_watch_gap_but_keeps_newer_entries() -> None:
    from llmops_operator.runtime.store import KindCache

    cache = KindCache()

    def obj(name: str, rv: int) -> dict:
        return {
            "metadata": {
                "namespace": "ns",
                "name": name,
                "resourceVersion": str(rv),
                "labels": {"llmops.dev/model": "chat"},
            }
        }

    cache.upsert(obj("kept", 5))
    cache.upsert(obj("deleted-in-gap", 6))
    cache.upsert(obj("created-after-list", 12))
    cache.upsert({"metadata": {"namespace": "other", "name": "deleted-in-gap", "resourceVersion": "1"}})
    gone = cache.drop_missing("ns", {"kept"}, list_version=10)
    assert [g["metadata"]["name"] for g in gone] == ["deleted-in-gap"]
    assert cache.get("ns", "deleted-in-gap") is None and cache.get("ns", "created-after-list") is not None
    assert cache.get("other", "deleted-in-gap") is not None, "another namespace's list says nothing here"
    assert [o["metadata"]["name"] for o in cache.owned_by("ns", "chat")] == ["created-after-list", "kept"]
