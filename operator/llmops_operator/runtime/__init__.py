"""The running operator process: leader election, health endpoints, and the wiring around them."""
