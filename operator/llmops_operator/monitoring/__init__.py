"""Watching what serves: scheduled evaluations (schedule, quality) and cost (cost, prices)."""
