"""Analysis: pure verdicts on measurements (assess) and taking them (run); queries come from
`metrics_source`."""
