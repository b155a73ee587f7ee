"""recsys_checks: read-only checks and safe actions for operating a RecSys suite deployment.

The names in ``__all__`` are the public API that notebooks and other programs may call; everything else is
internal and may change. The package is layered (docs/explanation/architecture.md), each layer importing only the
ones below it:

- :mod:`recsys_checks.core`: errors, results and exit codes, time and JSON formats, the one secret rule;
- :mod:`recsys_checks.reach`: settings, the service's HTTP client, the object stores, deadlines;
- :mod:`recsys_checks.judge`: what is read and judged (registry, serving, evaluation, pipeline logs, invariants);
- :mod:`recsys_checks.levers`: every action, with its plan/apply contract, guard and audit record;
- :mod:`recsys_checks.runbooks`: spec, notebook, run, verdict, run record, runner and the step functions;
- :mod:`recsys_checks.cli`: ``recsys-checks`` and its rendering.

Names are imported on first use, so ``import recsys_checks`` stays cheap for the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    # where the deployment is
    "Target",
    # results and errors
    "ActionResult", "CheckResult", "Plan",
    "BadInput", "ChecksError", "Conflict", "Unreachable",
    # checks (read-only): check_<what>, each returning a CheckResult
    "check_client_answers", "check_document", "check_document_history", "check_eval_quality", "check_eval_report", "check_freshness",
    "check_health", "check_hold", "check_manifest", "check_manifest_history", "check_recommendations",
    "check_served_vs_published", "check_timeline",
    # levers: plan_<lever> changes nothing, apply_<lever> is dry-run unless execute
    "apply_hold", "apply_invalidate", "apply_revert", "apply_rollback",
    "plan_hold", "plan_invalidate", "plan_revert", "plan_rollback",
    # runbooks
    "Remedy", "RunbookRun", "load_spec", "run_runbook",
]

# Where each public name lives (below recsys_checks).
_HOMES: dict[str, str] = {
    "Target": "reach.settings",
    "ActionResult": "core.results", "CheckResult": "core.results", "Plan": "core.results",
    "BadInput": "core.errors", "ChecksError": "core.errors", "Conflict": "core.errors", "Unreachable": "core.errors",
    "check_client_answers": "judge.serving.clients",
    "check_document": "judge.serving.documents", "check_document_history": "judge.serving.documents",
    "check_eval_quality": "judge.evaluation.quality", "check_eval_report": "judge.evaluation.report",
    "check_freshness": "judge.registry.freshness", "check_health": "judge.serving.health",
    "check_hold": "judge.registry.hold", "check_manifest": "judge.registry.manifest",
    "check_manifest_history": "judge.registry.history", "check_recommendations": "judge.serving.probe",
    "check_served_vs_published": "judge.serving.served", "check_timeline": "judge.timeline",
    "apply_hold": "levers.hold", "plan_hold": "levers.hold",
    "apply_invalidate": "levers.cache", "plan_invalidate": "levers.cache",
    "apply_revert": "levers.revert", "plan_revert": "levers.revert",
    "apply_rollback": "levers.rollback", "plan_rollback": "levers.rollback",
    "Remedy": "runbooks.remedy", "RunbookRun": "runbooks.run", "load_spec": "runbooks.spec",
    "run_runbook": "runbooks.runner",
}


def __getattr__(name: str) -> Any:
    try:
        module = _HOMES[name]
    except KeyError:
        raise AttributeError(f"module 'recsys_checks' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"recsys_checks.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
