"""Evaluation data and reports: the logs' contracts, join rates, SRM and the decision, and triage of recsys-eval reports."""
