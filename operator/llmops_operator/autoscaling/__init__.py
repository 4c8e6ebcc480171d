"""Autoscaling: the pure replica decision and the LLM load signals it reads."""
