"""`runtime/memory`: `trim` hands freed heap pages back (RSS falls after a burst is freed) and
`cap_arenas` keeps threads to a few glibc heaps; the operator loads no answer-scoring library."""

from __future__ import annotations

import os
import subprocess
import sys
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


ARENA_PROBE = """
import sys, threading
from llmops_operator.runtime import memory
print(memory.cap_arenas(int(sys.argv[1])), file=sys.stderr)
held, start = [], threading.Barrier(8)
def work():
    start.wait()
    for _ in range(2000):
        held.append(bytearray(4096))  # above pymalloc's 512 B: glibc's heap, from this thread
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
memory.LIBC.malloc_stats()
"""


def arenas_used(cap: int, env: dict[str, str] | None = None) -> tuple[str, int]:
    """(what cap_arenas returned, the arenas glibc's malloc_stats lists) after 8 threads allocated."""
    done = subprocess.run(
        [sys.executable, "-c", ARENA_PROBE, str(cap)],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | (env or {}),
    )
    lines = done.stderr.splitlines()
    return lines[0], sum(1 for line in lines if line.startswith("Arena "))


def test_capped_arenas_hold_every_thread_to_the_cap() -> None:
    assert arenas_used(1) == ("True", 1)
    returned, uncapped = arenas_used(0)
    assert returned == "False" and uncapped > 1  # glibc's default gives threads arenas of their own


def test_malloc_arena_max_set_by_the_person_running_it_wins() -> None:
    returned, arenas = arenas_used(1, {"MALLOC_ARENA_MAX": "4"})
    assert returned == "False" and arenas > 1


SCORING_LIBRARIES = ("nltk", "rouge_score", "sacrebleu", "rapidfuzz")


def test_the_operator_loads_no_answer_scoring_library_until_an_answer_is_scored() -> None:
    """The operator only validates assertions; the libraries that score answers (about 26 MiB
    of RSS) load in the eval runner, at the first score."""
    probe = (
        "import sys\n"
        "import llmops_operator.handlers.wiring\n"
        f"libs = {SCORING_LIBRARIES!r}\n"
        "print(sorted(m for m in libs if m in sys.modules))\n"
        "from llmops_operator.evals import assertions\n"
        "assert assertions.rouge_l_score('a b c', 'a b c') == 1.0\n"
        "assert assertions.bleu_score('the cat sat', ['the cat sat']) > 0.99\n"
        "assert assertions.similarity_score('abc', 'abc') == 1.0\n"
        "print(sorted(m for m in libs if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    before, after = out.splitlines()
    assert before == "[]", f"loaded at operator start: {before}"
    assert after == repr(sorted(SCORING_LIBRARIES))
