"""Process plumbing of a running operator that is not a handler: context, work queue, watch
caches, the operator's own metrics, leader election and health endpoints."""
