"""Give freed heap memory back to the system now and then.

The operator's memory peaks in bursts (a re-list of every watch after an API server outage, a
fleet-wide rollout) and then falls back, but glibc keeps the freed pages: RSS stays at the peak.
Seen in the 200-Model soak (issue 15): 61 MiB free inside a 106 MiB heap, held for good.
`malloc_trim(0)` hands whole free pages back (madvise); where there is no glibc it is a no-op.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
from collections.abc import Callable

log = logging.getLogger("llmops.memory")
TRIM_SECONDS = float(os.environ.get("LLMOPS_MEMORY_TRIM_SECONDS", "60"))
"""How often freed memory is handed back (0: never)."""
ARENAS = int(os.environ.get("LLMOPS_MALLOC_ARENAS", "2"))
"""glibc heaps (arenas) the process may use (0: glibc's default, 8 per core). Each of the 32
reconcile threads would otherwise get one of up to 16 on two cores, every one holding its own
free pages from JSON bodies: peak RSS at 1000 Models grows by the arenas, not by live data."""
M_ARENA_MAX = -8


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
    return libc


LIBC = _libc()
MALLOC_TRIM: Callable[[int], int] | None = LIBC.malloc_trim if LIBC is not None else None


def cap_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's arenas before the worker threads start; whether it was (False without glibc,
    with `arenas` 0, or when MALLOC_ARENA_MAX is set: the person running it decided)."""
    if LIBC is None or arenas <= 0 or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return LIBC.mallopt(M_ARENA_MAX, arenas) == 1


def trim() -> bool:
    """Return free heap pages to the system; whether any were (False without glibc)."""
    return MALLOC_TRIM is not None and MALLOC_TRIM(0) == 1


async def trim_forever(every: float = TRIM_SECONDS) -> None:
    if every <= 0 or MALLOC_TRIM is None:
        return
    while True:
        await asyncio.sleep(every)
        try:
            await asyncio.to_thread(trim)
        except Exception:  # housekeeping must never stop the operator
            log.exception("malloc_trim failed")
