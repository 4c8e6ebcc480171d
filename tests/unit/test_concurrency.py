"""The work queue and the watch caches under kopf's executor threads (issue 9 item 8).

Many threads write while others read; the GIL switch interval is shortened so that threads
interleave inside loops, where unguarded dicts raise "dictionary changed size during iteration"
and an asyncio queue fed from a foreign thread leaves workers asleep."""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from llmops_operator.gpu.inventory import ParsedNode
from llmops_operator.runtime.queue import WorkQueue
from llmops_operator.runtime.store import Store

THREADS = 8
ROUNDS = 3000


@pytest.fixture(autouse=True)
def fast_switching() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _hammer(*workers: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []

    def run(worker: Callable[[int], None], seed: int) -> None:
        try:
            worker(seed)
        except BaseException as exc:  # collected and reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w, i)) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def obj(namespace: str, name: str, rv: int, model: str) -> dict:
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "resourceVersion": str(rv),
            "labels": {"llmops.dev/model": model},
        }
    }


def test_caches_survive_concurrent_writers_and_readers() -> None:
    store = Store()

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        for rv in range(ROUNDS):
            name = f"d{rng.randrange(200)}"
            if rng.random() < 0.3:
                store.on_event("Deployment", "DELETED", obj("ns", name, rv, "m"))
            else:
                store.on_event("Deployment", "ADDED", obj("ns", name, rv, f"m{rng.randrange(3)}"))
            store.nodes[f"n{rng.randrange(50)}"] = ParsedNode(str(rv), None, None)
            if rng.random() < 0.3:
                store.nodes.pop(f"n{rng.randrange(50)}", None)

    def reader(_: int) -> None:
        for _round in range(ROUNDS):
            for (namespace, _name), deployment in store.deployments.objects.items():
                assert deployment["metadata"]["namespace"] == namespace
            for deployment in store.deployments.owned_by("ns", "m1"):
                assert deployment["metadata"]["labels"]["llmops.dev/model"] in ("m0", "m1", "m2")
            store.deployments.in_namespace("ns")
            for _name, node in store.nodes.items():
                assert node.info is None
            assert store.nodes.inventory() in (None, ())

    errors = _hammer(*([writer] * (THREADS // 2)), *([reader] * (THREADS // 2)))
    assert errors == []
    for (namespace, name), deployment in store.deployments.objects.items():
        assert store.deployments.get(namespace, name) is deployment


def test_queue_fed_from_many_threads_runs_every_key_never_twice_at_once() -> None:
    queue = WorkQueue()
    processed: dict[str, int] = {}
    running: set[str] = set()
    overlaps: list[str] = []
    done = threading.Event()
    keys = [f"k{i}" for i in range(400)]
    last_added: dict[str, float] = {}
    last_started: dict[str, float] = {}
    lock = threading.Lock()

    async def process(key: str) -> float | None:
        with lock:
            if key in running:
                overlaps.append(key)
            running.add(key)
            last_started[key] = time.monotonic()
        await asyncio.sleep(0)
        with lock:
            running.discard(key)
            processed[key] = processed.get(key, 0) + 1
        return None

    def run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        queue.bind(loop)
        workers = [loop.create_task(queue.worker(process)) for _ in range(8)]
        loop.run_until_complete(asyncio.to_thread(done.wait))
        for worker in workers:
            worker.cancel()
        loop.run_until_complete(asyncio.gather(*workers, return_exceptions=True))
        loop.close()

    loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=run_loop, args=(loop,))
    loop_thread.start()

    def feeder(seed: int) -> None:
        rng = random.Random(seed)
        for _round in range(ROUNDS // 3):
            key = rng.choice(keys)
            with lock:
                last_added[key] = time.monotonic()
            queue.add(key)
            if rng.random() < 0.05:
                queue.add_after(key, 0.001)
            if rng.random() < 0.01:
                queue.forget(key)

    try:
        errors = _hammer(*([feeder] * THREADS))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for the condition, not for a fixed time
            with lock:
                caught_up = all(last_started.get(k, -1.0) >= t for k, t in last_added.items())
            if caught_up and len(queue) == 0:
                break
            time.sleep(0.01)
    finally:
        done.set()
        loop_thread.join()
    assert errors == []
    assert overlaps == [], "a key ran on two workers at once"
    missing = [k for k, t in last_added.items() if last_started.get(k, -1.0) < t]
    assert missing == [], f"keys added but never reconciled afterwards: {missing[:5]}"
