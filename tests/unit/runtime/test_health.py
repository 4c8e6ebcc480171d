"""/healthz fails only for a leader whose queue has work and made no progress; /readyz."""

from __future__ import annotations

import json
import urllib.request

from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.runtime.health import HealthSources, serve, stalled

times = st.floats(min_value=0, max_value=10_000)


@given(
    now=times,
    work=st.integers(0, 5),
    busy=st.one_of(st.none(), times),
    last=times,
    leading=st.one_of(st.none(), times),
)
def test_stalled_only_with_work_while_leading_and_no_progress_for_the_limit(
    now: float, work: int, busy: float | None, last: float, leading: float | None
) -> None:
    result = stalled(now, work, busy, last, leading, limit=60)
    if work == 0 or leading is None or busy is None:
        assert not result
    else:
        assert result == (now - max(last, busy, leading) > 60)


def test_endpoints_answer_over_http() -> None:
    state = {"work": 3, "last": 0.0, "now": 100.0, "synced": False}
    sources = HealthSources(
        work=lambda: int(state["work"]),
        busy_since=lambda: 0.0,
        last_progress=lambda: float(state["last"]),
        leading_since=lambda: 0.0,
        cache_synced=lambda: bool(state["synced"]),
        stall_seconds=60,
        clock=lambda: float(state["now"]),
    )
    server = serve("127.0.0.1", 0, sources)
    base = f"http://127.0.0.1:{server.server_address[1]}"

    def get(path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(base + path, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    try:
        code, body = get("/healthz")
        assert code == 503 and "no reconcile finished" in body["reason"] and body["work"] == 3
        state["last"] = 90.0
        assert get("/healthz")[0] == 200
        assert get("/readyz") == (503, {"ok": False, "cacheSynced": False, "leader": True})
        state["synced"] = True
        assert get("/readyz") == (200, {"ok": True, "cacheSynced": True, "leader": True})
    finally:
        server.shutdown()
