"""Runbooks: spec, generated notebook, the run inside it, the verdict rule, the run record, and the runner."""
