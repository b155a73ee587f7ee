"""What the tools read and judge, read-only: the registry, the serving path, the evaluation data, pipeline logs, and the invariants of health."""
