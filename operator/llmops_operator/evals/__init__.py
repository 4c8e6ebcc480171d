"""Evaluation: datasets, assertions, scoring, and the runner the Job and the CLI share."""
