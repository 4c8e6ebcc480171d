"""`runtime/memory.trim` hands freed heap pages back: RSS falls after a burst is freed."""

from __future__ import annotations

from pathlib import Path

from llmops_operator.runtime import memory

PAGE = 4096


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE


def test_trim_returns_the_pages_of_a_freed_burst() -> None:
    assert memory.MALLOC_TRIM is not None, "glibc's malloc_trim is missing: run the tests on glibc Linux"
    burst = [bytes(2048) for _ in range(60_000)]  # above pymalloc's 512 B: glibc's heap
    kept = burst[9::10]  # every tenth stays, so the heap's top cannot shrink by itself
    del burst
    before = rss_bytes()
    assert memory.trim()
    after = rss_bytes()
    assert before - after > 40 * 2**20, f"RSS {before / 2**20:.0f} -> {after / 2**20:.0f} MiB"
    assert len(kept) == 6000
