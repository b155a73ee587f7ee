"""What a runbook's act step did: the lever pulled (or why none) and every action and command it involved."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from recsys_checks.core.results import ActionResult, CheckResult

# ``moved``: the state the diagnosis saw changed before this run could act (another responder, a publish); this
# run changed nothing, and its verify steps tell whether the surface is fine now.
# How long the verify steps of a run whose state moved (another responder) wait for that fix to land.
MOVED_SETTLE_SECONDS = 10.0



RemedyStatus = Literal["not-needed", "no-lever", "planned", "applied", "failed", "moved"]



@dataclass
class CommandRun:
    """A command a runbook ran for its fix (a scheduler's re-run of a publish, a restart), as given to it."""

    argv: list[str]
    exit_code: int | None
    seconds: float
    output: str  # the last lines of stdout and stderr, secrets redacted



@dataclass
class Remedy:
    """What the act step did: the lever pulled (or why none), and every action and command it involved."""

    status: RemedyStatus
    lever: str | None
    summary: str
    actions: list[ActionResult] = field(default_factory=list)
    commands: list[CommandRun] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status, "lever": self.lever, "summary": self.summary,
            "actions": [a.to_dict() for a in self.actions], "commands": [asdict(c) for c in self.commands],
        }



StepResult = CheckResult | ActionResult | Remedy
