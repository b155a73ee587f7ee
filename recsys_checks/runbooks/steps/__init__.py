"""The functions runbook steps call, one per notebook cell: ``fn(run) -> result``.

Each takes the :class:`~recsys_checks.runbooks.run.RunbookRun` (its parameters, its target, the results of earlier
steps) and returns a :class:`~recsys_checks.core.results.CheckResult`, an
:class:`~recsys_checks.core.results.ActionResult` or a :class:`~recsys_checks.runbooks.remedy.Remedy`. Every decision a
runbook makes lives here, where it is unit-tested, never in a notebook cell. A spec names a step's function as
``module.function`` under this package (``serving.probe_recommendations``).
"""
