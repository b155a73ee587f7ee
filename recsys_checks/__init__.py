"""recsys_checks: read-only checks and safe actions for operating a RecSys suite deployment.

The names in ``__all__`` are the public API that notebooks and other programs may call; everything else is
internal and may change. Names are imported on first use, so ``import recsys_checks`` stays cheap for the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> (module, attribute)
_PUBLIC: dict[str, tuple[str, str]] = {
    # where the deployment is
    "Target": ("config", "Target"),
    # results
    "CheckResult": ("results", "CheckResult"),
    "Plan": ("results", "Plan"),
    "ActionResult": ("results", "ActionResult"),
    # errors
    "ChecksError": ("errors", "ChecksError"),
    "BadInput": ("errors", "BadInput"),
    "Unreachable": ("errors", "Unreachable"),
    "Conflict": ("errors", "Conflict"),
    # checks (read-only): check_<what>, each returning a CheckResult
    "check_health": ("health", "check_health"),
    "check_manifest": ("manifest", "check_manifest"),
    "check_manifest_history": ("manifest", "check_manifest_history"),
    "check_freshness": ("freshness", "check_freshness"),
    "check_recommendations": ("probe", "check_recommendations"),
    "check_served_vs_published": ("served_vs_published", "check_served_vs_published"),
    "check_document": ("configrules", "check_document"),
    "check_document_history": ("configrules", "check_document_history"),
    "check_timeline": ("timeline", "check_timeline"),
    # actions: plan (changes nothing), then apply (dry-run unless execute)
    "plan_rollback": ("manifest", "plan_rollback"),
    "apply_rollback": ("manifest", "apply_rollback"),
    "plan_revert": ("configrules", "plan_revert"),
    "apply_revert": ("configrules", "apply_revert"),
    "plan_invalidate": ("cache", "plan_invalidate"),
    "apply_invalidate": ("cache", "apply_invalidate"),
    # runbooks
    "RunbookRun": ("runrecord", "RunbookRun"),
    "Remedy": ("runrecord", "Remedy"),
    "load_spec": ("runbook", "load_spec"),
    "run_runbook": ("execute", "run_runbook"),
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'recsys_checks' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
