"""Structured results of checks and actions, shared by the CLI, the notebooks and the run record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from recsys_checks.core import credentials
from recsys_checks.core.errors import BadInput

Status = Literal["ok", "warn", "fail"]
_ORDER = {"ok": 0, "warn": 1, "fail": 2}


@dataclass
class CheckResult:
    """What a read-only check saw.

    ``state`` is the token of the state observed (a manifest's ETag or hash, a ``config_version``), so that an
    action planned from this result can compare-and-swap against exactly what was seen.

    ``unread`` is set when the check could not read what it checks (no URL or key configured, the peer
    unreachable, access refused, an answer that is not the peer's): one line naming what, why and the variable or
    access that is missing. Such a result is never ``ok``, and it makes a runbook ``inconclusive``, not ``healthy``
    (see :mod:`recsys_checks.runbooks.verdict`).
    """

    check: str
    status: Status
    summary: str
    data: dict[str, Any] = field(default_factory=dict)
    state: str | None = None
    target: str | None = None
    unread: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def worst(statuses: list[str]) -> Status:
    """The most severe of several statuses (``ok`` for none)."""
    return max(statuses, key=lambda s: _ORDER[s], default="ok")  # type: ignore[return-value]


ActionStatus = Literal["planned", "applied", "noop"]  # a conflict raises errors.Conflict instead


@dataclass
class Plan:
    """Exactly what an action would change, computed without changing anything.

    ``observed`` is the state token the plan was made against; ``apply`` refuses to act when the world no longer
    matches it. ``changes`` lists each pointer or document move as ``{"what", "before", "after"}``.
    """

    action: str
    target: str
    observed: str | None
    changes: list[dict[str, Any]]
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    # The deployment the plan was made for (RECSYS_DEPLOYMENT); part of the plan id when set, so that a plan reviewed
    # for one deployment is not the plan of another.
    deployment: str | None = None

    def __post_init__(self) -> None:

        leaked = credentials.find(self.reason or "")
        if leaked:
            raise BadInput(f"the reason contains the value of {leaked[0]}: it is kept in the audit record, so "
                           "credentials never go in it; nothing was planned")

    @property
    def noop(self) -> bool:
        return all(c.get("before") == c.get("after") for c in self.changes)

    @property
    def plan_hash(self) -> str:
        import hashlib
        import json

        fields: dict[str, Any] = {"action": self.action, "target": self.target, "observed": self.observed,
                                  "changes": self.changes}
        if self.deployment is not None:
            fields["deployment"] = self.deployment
        body = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(body.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["noop"] = self.noop
        d["plan_hash"] = self.plan_hash
        return d


@dataclass
class ActionResult:
    """The outcome of an action: only planned (dry-run), applied, a no-op (already in the planned state)."""

    status: ActionStatus
    summary: str
    plan: Plan
    audit: str | None = None
    verification: CheckResult | None = None
    # What the service serves after the change, when a service is configured (a rollback of the manifest: the
    # service may keep serving its cached artifact until a TTL expires or its cache is invalidated).
    service: CheckResult | None = None
    # How many tries the change's write took: more than one when the service answered 502/503/504 or reset the
    # connection and the write (a conditional one) was sent again.
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "summary": self.summary,
            "plan": self.plan.to_dict(),
            "audit": self.audit,
            "verification": self.verification.to_dict() if self.verification else None,
            "service": self.service.to_dict() if self.service else None,
            **({"attempts": self.attempts} if self.attempts > 1 else {}),
        }


# The one rule every command follows, in order of precedence (the highest code that applies wins). The reference
# pages are generated from this table (scripts/gen_cli_reference.py), so the docs say what the code does.
EXIT_CODES: tuple[tuple[int, str, str], ...] = (
    (0, "healthy, or done",
     "every check returned `ok` or `warn`; every action was planned (dry-run), applied with its audit record and a "
     "passing verification, or was already in the planned state (a no-op)"),
    (1, "check failed, or not recovered",
     "a check looked and found the target broken (`fail`); an applied action's verification failed; an action "
     "was applied but its audit record could not be written (its intent stands and the next run completes it); "
     "a runbook run's record could not be written (a full disk): stderr lists every change it applied and where "
     "each audit record is, and no cut record is left; the service kept answering 502, 503 or 504 to every try "
     "until the call's deadline (an action then changed nothing, unless its message says the write may have "
     "landed); an internal error"),
    (2, "bad input, configuration, or could not look",
     "an unsafe name, an unknown version, a malformed setting, a key the service refuses (401/403), an unknown "
     "tenant; or the service or store could not be reached, reset the connection on every try, or answered too "
     "slowly — for every command, checks "
     "included, because nothing was observed"),
    (3, "conflict",
     "an action found that the state it planned against had changed (or another run won the compare-and-swap); "
     "nothing was changed"),
)



def exit_code(results: Sequence[CheckResult | ActionResult]) -> int:
    """The exit code of :data:`EXIT_CODES` for these results: 3 over 2 over 1 over 0."""
    codes = {0}
    for r in results:
        if isinstance(r, ActionResult):  # a conflict is raised (Conflict, exit 3), never returned
            if r.verification is not None and r.verification.status == "fail":
                codes.add(r.verification.data.get("exit_code") if r.verification.data.get("exit_code") == 2 else 1)
            if r.status == "applied" and not r.audit:
                codes.add(1)
            if r.service is not None and r.service.status == "fail":
                codes.add(1)
        elif r.status == "fail":
            codes.add(2 if r.data.get("exit_code") == 2 else 3 if r.data.get("exit_code") == 3 else 1)
    return max(codes)
