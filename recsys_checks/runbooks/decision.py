"""A runbook's decision table: one typed row per cause, the one place its causes, levers and commands live.

The spec's ``decision:`` list is parsed into :class:`Cause` rows. The code reads them, and so does everything that
shows them:

- the diagnose step names a cause; :func:`recsys_checks.runbooks.steps.fix.diagnosis` looks its row up and refuses
  a cause no row declares (:class:`~recsys_checks.core.errors.UndeclaredCause`), so a runbook cannot report a cause
  its page does not show;
- the fix step pulls the lever of the row (``apply_fix`` dispatches on :attr:`Lever.kind`, with the row's fixed
  arguments and the ones the run supplies, among those the row says it takes);
- the page, its decision tree, the per-cause dry-run and apply commands, the glossary of causes and the alert
  receiver's commands are drawn from the same rows (:meth:`Lever.commands`).

A row (YAML)::

    - cause: service_cache_stale              # id; a run may report ``id:detail`` (``limit_exceeded:max_events``)
      when: the manifest is fresh but the service serves an older published version
      decided_by: judge.serving.served.check_served_vs_published   # the package function whose result decides it
      lever: {kind: cache-invalidate, args: {targets: [popularity]}}
      hand_off: {runbook: stale-manifest, why: ...}   # optional: the runbook that goes further
      follow_up: ...                                   # what no lever here fixes; required without a lever

The rows are listed in the order the page shows them, the likeliest and the most urgent first.
"""

from __future__ import annotations

import importlib
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from recsys_checks.core.errors import BadInput

# The levers a row may name, with the arguments each takes (fixed in the row, or supplied by the run).
LEVER_ARGS: dict[str, frozenset[str]] = {
    "manifest-rollback": frozenset({"kind", "kinds", "to"}),
    "doc-revert": frozenset({"kind", "to"}),
    "cache-invalidate": frozenset({"targets"}),
    "command": frozenset({"values"}),
    "hold": frozenset({"held", "reason"}),
}
LEVER_KINDS = tuple(LEVER_ARGS)
# What a command lever runs comes from one of these parameters, never from the table (it is the deployment's own).
COMMAND_PARAMETERS = {"rerun_command": "re-run the publish", "recovery_command": "run the recovery command"}
DOCUMENT_KINDS = ("config", "rules")
CACHE_TARGETS = ("popularity", "config", "rules")

# Causes every runbook can end on without its diagnosis naming them: drawn on every page from these rows.
UNEXPLAINED = "unexplained"
STEP_NOT_RUN = "step_not_run"
_BUILTIN_ROWS: tuple[dict[str, Any], ...] = (
    {"cause": UNEXPLAINED,
     "when": "a check found something wrong that no row above explains",
     "decided_by": "runbooks.verdict.decide",
     "follow_up": "the run record lists the evidence of each failing check and the read-only commands to look "
                  "further; nothing is changed"},
    {"cause": STEP_NOT_RUN,
     "when": "a step the diagnosis reads did not run (the notebook's cells were run out of order)",
     "decided_by": "runbooks.steps.fix.diagnosis",
     "follow_up": "run the notebook's cells in order, or `recsys-checks runbook run`"},
)

_ROW_KEYS = {"cause", "when", "decided_by", "lever", "hand_off", "follow_up"}
_LEVER_KEYS = {"kind", "args", "takes", "param"}
_HAND_OFF_KEYS = {"runbook", "why"}
_CAUSE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Lever:
    """A row's lever as data: its kind, the arguments fixed in the row, those it takes from the run, and (for a
    ``command`` lever) the parameter that holds the deployment's command."""

    kind: str
    args: Mapping[str, Any] = field(default_factory=dict)
    takes: tuple[str, ...] = ()
    param: str | None = None

    def arguments(self, offered: Mapping[str, Any]) -> dict[str, Any]:
        """The row's fixed arguments with what the run offers for the ones the row takes (the rest is ignored)."""
        out = dict(self.args)
        out.update({k: v for k, v in offered.items() if k in self.takes and v not in (None, "", [])})
        return out

    def commands(self, runbook: str, tenant: str, surface: str, args: Mapping[str, Any] | None = None,
                 command: str | None = None) -> list[dict[str, str]]:
        """``[{"dry_run", "apply"}]``: the commands that do by hand what this lever does, filled with ``args``.

        Without ``args`` (the page), the arguments the run supplies appear as placeholders (``{kind}``, ``{to}``).
        The apply applies only the plan its dry run printed (``--plan-id {plan}``), so what was read is what runs.
        """
        page = args is None
        a = dict(self.args) if page else dict(args or {})
        if page:
            a.update({name: "{" + name + "}" for name in self.takes if name not in a and name not in ("kinds",)})
        where = f"--tenant {_q(tenant)}"
        if self.kind == "command":
            shown = command if command else "{" + str(self.param) + "}"
            base = (f"recsys-checks runbook run {runbook} -p tenant={_q(tenant)} -p surface={_q(surface)} "
                    f"-p {self.param}={_q(shown)}")
            return [{"dry_run": base, "apply": f"{base} --execute"}]
        if self.kind == "manifest-rollback":
            kinds = [a["kind"]] if a.get("kind") else list(a.get("kinds") or []) or [None]
            if page and "kinds" in self.takes and not a.get("kind"):
                kinds = ["{kind}"]
            to = f"--to {_q(a['to'])}" if a.get("to") else "--previous"
            lines = [f"recsys-checks manifest rollback {where} --surface {_q(surface)}"
                     + (f" --kind {_q(k)}" if k else "") + f" {to} --invalidate-cache" for k in kinds]
        elif self.kind == "doc-revert":
            to = f"--to {_q(a['to'])}" if a.get("to") else "--previous"
            lines = [f"recsys-checks {a.get('kind') or '{kind}'} revert {where} {to}"]
        elif self.kind == "cache-invalidate":
            targets = a.get("targets") or ["{targets}"]
            shown = targets if isinstance(targets, str) else ",".join(map(str, targets))
            lines = [f"recsys-checks cache invalidate {where} --surface {_q(surface)} --targets {shown}"]
        else:  # hold
            verb = "set" if a.get("held", True) else "clear"
            reason = a.get("reason") or "{reason}"
            lines = [f"recsys-checks hold {verb} {where} --surface {_q(surface)} --reason {_q(str(reason))}"]
        return [{"dry_run": line, "apply": f"{line} --execute --plan-id {{plan}}"} for line in lines]

    def describe(self) -> str:
        """The lever in a few words, as the decision tree groups the causes by it."""
        if self.kind == "command":
            return f"{COMMAND_PARAMETERS[str(self.param)]} with your `{self.param}`"
        if self.kind == "manifest-rollback":
            return "roll the manifest back" + (" to a named version" if self.args.get("to") else "")
        if self.kind == "doc-revert":
            return f"revert the {self.args.get('kind') or 'config or rules'}"
        if self.kind == "cache-invalidate":
            targets = self.args.get("targets")
            return (f"invalidate the service's {' and '.join(targets)} cache" if targets else
                    "invalidate the service's cache of the stale documents")
        return "set the hold" if self.args.get("held", True) else "clear the hold"


@dataclass(frozen=True)
class HandOff:
    """The runbook that goes further for a cause, and why."""

    runbook: str
    why: str


@dataclass(frozen=True)
class Cause:
    """One row of a decision table."""

    cause: str
    when: str
    decided_by: str
    order: int
    lever: Lever | None = None
    hand_off: HandOff | None = None
    follow_up: str | None = None
    builtin: bool = False

    def follow_up_text(self, values: Mapping[str, Any]) -> str | None:
        """The follow-up with ``{tenant}``, ``{surface}`` and the run's values filled (unknown ones left as named)."""
        if not self.follow_up:
            return None
        return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), self.follow_up)

    def to_dict(self) -> dict[str, Any]:
        """The row as ``runbook show --json`` prints it."""
        lever = None
        if self.lever is not None:
            lever = {"kind": self.lever.kind, "args": dict(self.lever.args), "takes": list(self.lever.takes),
                     "param": self.lever.param}
        return {"cause": self.cause, "when": self.when, "decided_by": self.decided_by, "order": self.order,
                "lever": lever, "hand_off": ({"runbook": self.hand_off.runbook, "why": self.hand_off.why}
                                             if self.hand_off else None),
                "follow_up": self.follow_up, "builtin": self.builtin}

    @property
    def what_to_do(self) -> str:
        """The row's remedy in words, for a table: the lever, the hand-off, the follow-up."""
        parts = []
        if self.lever is not None:
            parts.append(self.lever.describe())
        if self.follow_up:
            parts.append(("without it: " if self.lever is not None and self.lever.kind == "command" else
                          "then: " if self.lever is not None else "") + self.follow_up)
        if self.hand_off is not None:
            parts.append(f"follow [{self.hand_off.runbook}]({self.hand_off.runbook}.md): {self.hand_off.why}")
        return "; ".join(parts)


@dataclass(frozen=True)
class DecisionTable:
    """A runbook's causes in order, its built-in rows last."""

    rows: tuple[Cause, ...]

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.cause for r in self.rows)

    def find(self, cause: str) -> Cause | None:
        """The row of ``cause``; ``family:detail`` is the row ``family``."""
        family = cause.split(":", 1)[0]
        return next((r for r in self.rows if r.cause == family), None)

    def declared(self) -> tuple[Cause, ...]:
        return tuple(r for r in self.rows if not r.builtin)


def _q(value: str) -> str:
    """Shell-quote ``value`` unless it is a placeholder of the page (``{tenant}``)."""
    return value if _PLACEHOLDER.fullmatch(value) else shlex.quote(value)


def resolve_decider(dotted: str) -> Any:
    """``judge.serving.served.check_served_vs_published`` → that function of the package; else BadInput."""
    module_name, _, name = dotted.rpartition(".")
    if not module_name or not name or name.startswith("_"):
        raise BadInput(f"{dotted!r} must name a public function of recsys_checks as module.function, e.g. "
                       "judge.serving.probe.check_recommendations")
    try:
        module = importlib.import_module(f"recsys_checks.{module_name}")
    except ModuleNotFoundError:
        raise BadInput(f"{dotted!r}: there is no module recsys_checks.{module_name}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise BadInput(f"{dotted!r}: recsys_checks.{module_name} has no function {name!r}")
    return fn


def parse_table(value: Any, where: str, parameters: Mapping[str, Any]) -> DecisionTable:
    """The ``decision:`` list of a spec, validated row by row; every problem names the file, the row and the field."""
    if not isinstance(value, list) or not value:
        raise BadInput(f"{where}: decision must be a non-empty list of rows (cause, when, decided_by, lever, "
                       "hand_off, follow_up)")
    rows: list[Cause] = []
    for n, body in enumerate(value):
        row = _row(body, f"{where}: decision[{n}]", n, parameters)
        if row.cause in (UNEXPLAINED, STEP_NOT_RUN):
            raise BadInput(f"{where}: decision[{n}].cause {row.cause!r} is built in: every runbook has it")
        if any(r.cause == row.cause for r in rows):
            raise BadInput(f"{where}: decision[{n}].cause {row.cause!r} is declared twice")
        rows.append(row)
    for extra in _BUILTIN_ROWS:
        rows.append(_row(extra, "built-in", len(rows), parameters, builtin=True))
    return DecisionTable(tuple(rows))


def _row(body: Any, at: str, order: int, parameters: Mapping[str, Any], *, builtin: bool = False) -> Cause:
    check_keys(body, at, _ROW_KEYS, {"cause", "when", "decided_by"})
    cause = _text(body["cause"], f"{at}.cause")
    if not _CAUSE_ID.match(cause):
        raise BadInput(f"{at}.cause {cause!r} must be lowercase words joined by '_' (a run may add ':detail')")
    decided_by = _text(body["decided_by"], f"{at}.decided_by")
    try:
        resolve_decider(decided_by)
    except BadInput as exc:
        raise BadInput(f"{at}.decided_by: {exc}") from None
    lever = _lever(body["lever"], f"{at}.lever", parameters) if body.get("lever") is not None else None
    hand_off = None
    if body.get("hand_off") is not None:
        check_keys(body["hand_off"], f"{at}.hand_off", _HAND_OFF_KEYS, _HAND_OFF_KEYS)
        hand_off = HandOff(_text(body["hand_off"]["runbook"], f"{at}.hand_off.runbook"),
                           _text(body["hand_off"]["why"], f"{at}.hand_off.why"))
    follow_up = _text(body["follow_up"], f"{at}.follow_up") if body.get("follow_up") is not None else None
    if lever is None and hand_off is None and follow_up is None:
        raise BadInput(f"{at}: a row needs a lever, a hand_off or a follow_up: what does on-call do for {cause}?")
    if lever is not None and lever.kind == "command" and follow_up is None:
        raise BadInput(f"{at}.follow_up: a command lever runs only when {lever.param} is given; say what to do "
                       "without it")
    return Cause(cause, _text(body["when"], f"{at}.when"), decided_by, order, lever, hand_off, follow_up, builtin)


def _lever(body: Any, at: str, parameters: Mapping[str, Any]) -> Lever:
    check_keys(body, at, _LEVER_KEYS, {"kind"})
    kind = body["kind"]
    if kind not in LEVER_ARGS:
        raise BadInput(f"{at}.kind {kind!r} must be one of {', '.join(LEVER_KINDS)}")
    args = body.get("args") or {}
    if not isinstance(args, dict):
        raise BadInput(f"{at}.args: expected a mapping of argument to value")
    takes = body.get("takes") or []
    if not isinstance(takes, list) or not all(isinstance(t, str) for t in takes):
        raise BadInput(f"{at}.takes: expected a list of argument names")
    for name in [*args, *takes]:
        if name not in LEVER_ARGS[kind]:
            raise BadInput(f"{at}: a {kind} lever takes no argument {name!r} (it takes "
                           f"{', '.join(sorted(LEVER_ARGS[kind]))})")
    _check_values(kind, args, takes, at)
    param = body.get("param")
    _check_param(kind, param, parameters, at)
    return Lever(kind, dict(args), tuple(takes), param)


def _check_values(kind: str, args: dict[str, Any], takes: list[str], at: str) -> None:
    """The values a lever's fixed arguments may have: a document kind, cache targets the service knows."""
    if kind == "doc-revert" and args.get("kind") not in (None, *DOCUMENT_KINDS):
        raise BadInput(f"{at}.args.kind must be config or rules")
    if kind == "cache-invalidate":
        targets = args.get("targets")
        if targets is not None and (not isinstance(targets, list) or not targets
                                    or any(t not in CACHE_TARGETS for t in targets)):
            raise BadInput(f"{at}.args.targets must list some of {', '.join(CACHE_TARGETS)}")
        if targets is None and "targets" not in takes:
            raise BadInput(f"{at}: a cache-invalidate lever needs args.targets or takes: [targets]")


def _check_param(kind: str, param: Any, parameters: Mapping[str, Any], at: str) -> None:
    """A command lever names the runbook parameter that holds the deployment's command; no other lever has one."""
    if kind != "command":
        if param is not None:
            raise BadInput(f"{at}.param: only a command lever has one")
        return
    if param not in COMMAND_PARAMETERS:
        raise BadInput(f"{at}.param: a command lever runs the command of one of the parameters "
                       f"{', '.join(COMMAND_PARAMETERS)}")
    if param not in parameters:
        raise BadInput(f"{at}.param: {param!r} is not a parameter of this runbook")


def check_keys(value: Any, at: str, allowed: set[str], required: set[str]) -> None:
    """``value`` is a mapping with only ``allowed`` keys and every ``required`` one; else BadInput naming ``at``."""
    if not isinstance(value, dict):
        raise BadInput(f"{at}: expected a mapping, got {type(value).__name__}")
    unknown = sorted(set(map(str, value)) - allowed)
    if unknown:
        raise BadInput(f"{at}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(value))
    if missing:
        raise BadInput(f"{at}: missing key {missing[0]!r}")


def _text(value: Any, at: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{at}: expected non-empty text")
    return " ".join(value.split())
