"""Analysis: builtin queries per engine, metric providers and pure verdicts."""
