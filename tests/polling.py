"""The one polling helper every test uses: wait until something is true, fail saying what."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 60.0,
    interval: float = 0.5,
    message: str = "",
    *,
    tolerate_errors: bool = False,
    describe: Callable[[], str] | None = None,
) -> Any:
    """Poll until `predicate` returns something truthy and return it.

    On timeout fail with the last value seen (or the last error, when `tolerate_errors` lets
    polling go on through errors such as an API server restarting) and `describe()`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as err:
            if not tolerate_errors:
                raise
            last_error = err
        else:
            if last:
                return last
        time.sleep(interval)
    detail = f"; last error: {last_error}" if last_error is not None else ""
    extra = f"\n{describe()}" if describe is not None else ""
    raise AssertionError(
        f"timed out after {timeout}s waiting for {message or predicate}; last value: {last!r}{detail}{extra}"
    )
