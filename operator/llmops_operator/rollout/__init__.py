"""Canary rollouts: the pure state machine, traffic splitting and analysis."""
