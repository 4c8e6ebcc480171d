"""Traffic splitting: replica ratio (default) and Gateway API HTTPRoute weights."""
