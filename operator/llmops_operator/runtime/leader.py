"""Leader election on a coordination.k8s.io Lease, with client-go's semantics.

Two replicas run so a node drain does not stop rollouts, but only one may decide: two writers
each create their own EvalRun, post every Event twice and, with a stale cache, delete what the
other just created. Every replica watches (its caches stay warm); only the holder of the Lease
reconciles and writes.

- A holder renews every `retry_period`; when it could not renew for `renew_deadline` it stops
  reconciling at once (before anyone else may take the Lease: `renew_deadline < lease_duration`).
- Others take the Lease once they saw its record unchanged for `lease_duration` (measured on
  their own clock, never compared with the holder's, so clock skew does not matter).
- On a graceful stop the holder releases the Lease (empty holder), so a rolling update hands
  over within one `retry_period` instead of a whole lease duration.

`decide` is the pure rule; `LeaderElector` is the thread that applies it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from llmops_operator.kube.client import Kube, KubeError, NotFound

log = logging.getLogger("llmops.leader")
Decision = Literal["acquire", "renew", "wait"]


@dataclass(frozen=True)
class LeaseConfig:
    """Where the Lease is, who we are, and the timings (seconds)."""

    name: str
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < retry period < renew deadline < lease duration, got "
                f"{self.retry_period} / {self.renew_deadline} / {self.lease_duration}"
            )


def decide(holder: str | None, identity: str, unchanged_for: float, lease_duration: float) -> Decision:
    """What to do with a Lease whose record we have seen unchanged for `unchanged_for` seconds:
    renew our own, take a free or expired one, otherwise wait."""
    if holder == identity:
        return "renew"
    if not holder or unchanged_for >= lease_duration:
        return "acquire"
    return "wait"


def micro_time(now: datetime) -> str:
    """A Lease MicroTime."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_spec(
    current: Mapping[str, Any] | None, identity: str, duration: float, now: datetime
) -> dict[str, Any]:
    """The spec we write to hold (or start holding) the Lease."""
    spec = dict(current or {})
    taking = spec.get("holderIdentity") != identity
    spec["holderIdentity"] = identity
    spec["leaseDurationSeconds"] = max(1, round(duration))
    spec["renewTime"] = micro_time(now)
    if taking:
        spec["acquireTime"] = micro_time(now)
        spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if current else 0)
    return spec


class LeaderElector:
    """Holds or waits for the Lease in a thread of its own; `leading` says whether we may write.

    `on_started` runs (in this thread) each time we become the leader, `on_stopped` each time we
    stop being it; both must be quick.
    """

    def __init__(
        self,
        kube: Kube,
        config: LeaseConfig,
        on_started: Callable[[], None] = lambda: None,
        on_stopped: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.config = config
        self.on_started = on_started
        self.on_stopped = on_stopped
        self.clock = clock
        self.leading = threading.Event()
        self.leading_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._renewed_at = 0.0

    def start(self) -> LeaderElector:
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()
        return self

    def stop(self, release: bool = True) -> None:
        """Stop electing; with `release`, hand the Lease over at once if we hold it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.retry_period + 10)
        was_leading = self.leading.is_set()
        self._set_leading(False)
        if release and was_leading:
            self._release()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.round()
            self._stop.wait(self.config.retry_period)

    def round(self) -> None:
        """Try once, then stop leading if the last renewal is older than the renew deadline."""
        try:
            self.try_once()
        except Exception:  # never let the elector die: a dead elector keeps a stale flag
            log.exception("leader election pass failed")
        if self.leading.is_set() and self.clock() - self._renewed_at > self.config.renew_deadline:
            log.warning(
                "could not renew Lease %s/%s for %.0fs: no longer the leader, reconciling stops",
                self.config.namespace,
                self.config.name,
                self.config.renew_deadline,
            )
            self._set_leading(False)

    def try_once(self) -> None:
        """One round: read the Lease, then renew, take or leave it."""
        cfg = self.config
        try:
            lease = self.kube.get("Lease", cfg.namespace, cfg.name)
        except NotFound:
            lease = None
        except KubeError as exc:
            log.debug("reading Lease %s/%s failed: %s", cfg.namespace, cfg.name, exc)
            return
        now = self.clock()
        spec = (lease or {}).get("spec") or {}
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed, self._observed_at = record, now
        duration = float(spec.get("leaseDurationSeconds") or cfg.lease_duration)
        decision = decide(spec.get("holderIdentity"), cfg.identity, now - self._observed_at, duration)
        if decision == "wait":
            self._set_leading(False)
            return
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": cfg.name, "namespace": cfg.namespace},
            "spec": lease_spec(spec if lease else None, cfg.identity, cfg.lease_duration, datetime.now(UTC)),
        }
        try:
            if lease is None:
                written = self.kube.create(body)
            else:
                body["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
                written = self.kube.replace(body)
        except KubeError as exc:
            # 409: someone else wrote first (took it, or renewed just now); try again later
            log.debug("writing Lease %s/%s failed: %s", cfg.namespace, cfg.name, exc)
            return
        written_spec = written.get("spec") or {}
        self._observed = (
            written_spec.get("holderIdentity"),
            written_spec.get("renewTime"),
            written_spec.get("leaseTransitions"),
        )
        self._observed_at = self._renewed_at = self.clock()
        if decision == "acquire":
            log.info("acquired Lease %s/%s as %s", cfg.namespace, cfg.name, cfg.identity)
        self._set_leading(True)

    def _set_leading(self, leading: bool) -> None:
        if leading == self.leading.is_set():
            return
        if leading:
            self.leading.set()
            self.leading_since = self.clock()
            self.on_started()
        else:
            self.leading.clear()
            self.leading_since = None
            log.info("not the leader any more (Lease %s/%s)", self.config.namespace, self.config.name)
            self.on_stopped()

    def _release(self) -> None:
        """Empty holder and a 1 s duration: the next replica takes over on its next round."""
        cfg = self.config
        try:
            lease = self.kube.get("Lease", cfg.namespace, cfg.name)
            spec = dict(lease.get("spec") or {})
            if spec.get("holderIdentity") != cfg.identity:
                return
            spec.pop("holderIdentity", None)
            spec["leaseDurationSeconds"] = 1
            spec["renewTime"] = micro_time(datetime.now(UTC))
            lease["spec"] = spec
            self.kube.replace(lease)
            log.info("released Lease %s/%s", cfg.namespace, cfg.name)
        except KubeError as exc:
            log.warning("could not release Lease %s/%s: %s", cfg.namespace, cfg.name, exc)
