"""What must hold before an action changes anything, beyond compare-and-swap: the reviewed plan and the deployment.

- ``plan_id``: the id a reviewer approved (the plan hash, or a prefix of at least 12 hex digits as printed). The
  apply runs only if the freshly computed plan has that id; otherwise the world or the request moved since the
  review, and nothing is changed (:class:`~recsys_checks.core.errors.Conflict`, exit 3).
- ``confirm``: on a deployment marked protected (``RECSYS_DEPLOYMENT_PROTECTED``), an execute must name the
  deployment (``RECSYS_DEPLOYMENT``) back, the guard against acting on the wrong one (bad input, exit 2, otherwise).
"""

from __future__ import annotations

import re

from recsys_checks.core.errors import BadInput, Conflict
from recsys_checks.core.results import ActionResult, Plan
from recsys_checks.reach.settings import Target

MIN_PLAN_ID = 12
_HEX = re.compile(r"^[0-9a-f]+$")


def dry_run(plan: Plan, *, already: str, would: str) -> ActionResult:
    """What an apply without execute answers: ``noop`` (``already``) when the plan changes nothing, else
    ``planned`` (``would``); no guard applies to it, since nothing is changed."""
    if plan.noop:
        return ActionResult("noop", f"{already}; nothing to do", plan)
    return ActionResult("planned", f"dry-run: would {would}; nothing changed (run with execute to apply)", plan)


def require_confirmed(target: Target, confirm: str | None, *, nothing: str = "nothing was changed") -> None:
    """On a deployment marked protected, ``confirm`` must name it back (see the module docstring): BadInput (exit 2)
    otherwise, ``nothing`` saying what did not happen. The one check for an action's apply and a runbook's execute."""
    if not target.protected or confirm == target.deployment:
        return
    name = target.deployment
    if confirm is None:
        raise BadInput(f"deployment {name!r} is protected: add --confirm {name} (confirm={name} in a notebook) to let "
                       f"execute change it; {nothing}")
    raise BadInput(f"deployment {name!r} is protected and --confirm {confirm!r} does not name it; {nothing} — check "
                   "RECSYS_DEPLOYMENT and where your shell points")


def check(target: Target, plan: Plan, *, plan_id: str | None, confirm: str | None) -> None:
    """Raise unless ``plan`` may be applied to ``target`` (see the module docstring); changes nothing."""
    require_confirmed(target, confirm)
    if plan_id is not None:
        wanted = plan_id.strip().lower()
        if len(wanted) < MIN_PLAN_ID or not _HEX.match(wanted):
            raise BadInput(f"plan id {plan_id!r} is not a plan id: give the {MIN_PLAN_ID} hex digits (or more) that "
                           "the dry run printed after 'plan'")
        if not plan.plan_hash.startswith(wanted):
            raise Conflict(f"the plan now is {plan.plan_hash[:MIN_PLAN_ID]}, not the reviewed {wanted[:MIN_PLAN_ID]}: "
                           "the world or the request changed since the review; nothing was changed — review the "
                           "new dry run")
