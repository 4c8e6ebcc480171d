"""Where engine metrics come from: PromQL per engine (builtins) and the provider Protocol with its
Prometheus implementation. Shared by canary analysis and autoscaling."""
