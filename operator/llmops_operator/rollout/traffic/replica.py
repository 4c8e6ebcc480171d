"""Replica-ratio traffic split: the share of ready pods is the share of traffic.

With the default, the stable revision keeps its full size through the whole canary: GPUs are
expensive either way, and full stable capacity makes a rollback instant (traffic moves back to
pods that are already up, with the model loaded). `dynamicStableScale` scales the stable
revision down as the canary grows, which saves GPUs during the rollout but makes a rollback wait
for stable pods to be scheduled and load the model again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReplicaSplit:
    """Desired replicas of each revision for one weight."""

    canary: int
    stable: int


def _ceil_percent(weight: int, total: int) -> int:
    return (weight * total + 99) // 100


def split(weight: int, total: int, dynamic_stable_scale: bool = False) -> ReplicaSplit:
    """Canary gets ceil(weight% x total). Stable keeps `total`, or with dynamicStableScale
    ceil((100 - weight)% x total): never less than its share of traffic needs, so the two may
    add up to total + 1 while both are partly loaded."""
    if not 0 <= weight <= 100:
        raise ValueError(f"weight must be within 0..100, got {weight}")
    if total < 0:
        raise ValueError(f"total replicas must not be negative, got {total}")
    canary = _ceil_percent(weight, total)
    stable = _ceil_percent(100 - weight, total) if dynamic_stable_scale else total
    return ReplicaSplit(canary=canary, stable=stable)
