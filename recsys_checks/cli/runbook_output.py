"""What `recsys-checks runbook list|show|run` print: tables for a person, JSON with ``--json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from recsys_checks.core.render import table
from recsys_checks.runbooks.spec import RunbookSpec

_VERDICT_LINE = {"healthy": "nothing wrong found", "mitigated": "found, fixed and verified",
                 "action-required": "found, not fixed", "inconclusive": "could not see everything it checks",
                 "failed": "the runbook could not run"}


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")


def print_list(specs: list[RunbookSpec], as_json: bool) -> int:
    rows = [{"id": s.id, "layer": s.layer, "title": s.title,
             "drills": ", ".join(dict.fromkeys(d.fault for d in s.drills))} for s in specs]
    if as_json:
        _write(json.dumps({"runbooks": rows}, indent=2))
    else:
        _write(table(rows, ["id", "layer", "title", "drills"]))
    return 0


def spec_dict(spec: RunbookSpec) -> dict[str, Any]:
    return {
        "id": spec.id, "title": spec.title, "layer": spec.layer, "summary": spec.summary,
        "symptoms": list(spec.symptoms), "alerts": list(spec.alerts),
        "parameters": [{"name": p.name, "type": p.type, "default": p.default, "help": p.help,
                        **({"min": p.minimum} if p.minimum is not None else {}),
                        **({"max": p.maximum} if p.maximum is not None else {})}
                       for p in spec.parameters.values()],
        "steps": [{"id": s.id, "title": s.title, "role": s.role, "mutates": s.mutates, "function": s.function,
                   "command": s.command} for s in spec.steps],
        "decision": [row.to_dict() | {"commands": row.lever.commands(spec.id, "{tenant}", "{surface}")
                                      if row.lever else []} for row in spec.decision],
        "verification": spec.verification,
        "drills": [{"fault": d.fault, "stores": list(d.stores), "dry_run": d.dry_run.verdict,
                    "execute": d.execute.verdict} for d in spec.drills],
    }


def print_spec(spec: RunbookSpec, as_json: bool) -> int:
    if as_json:
        _write(json.dumps(spec_dict(spec), indent=2, default=str))
        return 0
    lines = [f"{spec.id}: {spec.title} ({spec.layer})", "", spec.summary, "", "symptoms:"]
    lines += [f"  - {s}" for s in spec.symptoms]
    lines += ["", "parameters (-p NAME=VALUE):"]
    lines.append(table([{"name": p.name, "type": p.described_type, "default": repr(p.default), "help": p.help}
                        for p in spec.parameters.values()], ["name", "type", "default", "help"]))
    lines += ["", "steps:"]
    for n, s in enumerate(spec.steps, 1):
        mark = "  (mutates: dry run unless --execute)" if s.mutates else ""
        lines.append(f"  {n}. {s.title} [{s.role}]{mark}")
        if s.command:
            lines.append(f"     $ {s.command}")
    lines += ["", "causes (the diagnosis names one; the fix pulls its lever):"]
    for row in spec.decision:
        lines.append(f"  - {row.cause}: {row.when}")
        lines.append(f"      {row.what_to_do}")
        for command in row.lever.commands(spec.id, "{tenant}", "{surface}") if row.lever else []:
            lines.append(f"      $ {command['dry_run']}")
    lines += ["", f"run it: recsys-checks runbook run {spec.id} -p tenant=demo -p surface=home  [--execute]"]
    _write("\n".join(lines))
    return 0


def _fix_lines(fix: dict[str, Any], *, open_: bool) -> list[str]:
    """The decision table's row for the cause, as the run filled it: the lever's commands by hand and where to go
    further while the problem stands (once fixed they are noise), and what remains to do."""
    lines = []
    for command in fix.get("commands") or [] if open_ else []:
        lines.append(f"  by hand, dry run: {command['dry_run']}")
        lines.append(f"  by hand, apply:   {command['apply']}")
    if fix.get("hand_off") and open_:
        lines.append(f"  go further: the {fix['hand_off']['runbook']} runbook ({fix['hand_off']['why']})")
    if fix.get("follow_up"):
        lines.append(f"  follow-up: {fix['follow_up']}")
    return lines


def _more_found(detected: list[dict[str, Any]], *, open_: bool) -> list[str]:
    """Every cause found beyond the first (whose lines ``_fix_lines`` gave), each with what its row says to do."""
    if len(detected) < 2:
        return []
    lines = [f"  also found ({len(detected) - 1} more, in the order to fix them):"]
    for entry in detected[1:]:
        lines.append(f"  - {entry.get('cause')}: {entry.get('summary')}")
        for command in entry.get("commands") or [] if open_ else []:
            lines.append(f"      by hand, dry run: {command['dry_run']}")
            lines.append(f"      by hand, apply:   {command['apply']}")
        if not entry.get("lever") and entry.get("no_lever"):
            lines.append(f"      to do: {entry['no_lever']}")
    return lines


def print_run_record(run_record: dict[str, Any], out: Path, as_json: bool) -> None:
    if as_json:
        _write(json.dumps(run_record, indent=2, default=str))
        return
    verdict = str(run_record.get("verdict"))
    head = f"{run_record.get('runbook')}: {verdict.upper()} ({_VERDICT_LINE.get(verdict, '')})"
    if run_record.get("cause"):
        head += f", cause {run_record['cause']}"
    asked = run_record.get("requested") or {}
    if asked.get("to_version"):
        way = {"forward": "repoint forward", "back": "roll back", "mixed": "repoint forward and back"}.get(
            str(asked.get("direction")), "repoint")
        head += f"; requested: {way} to {asked['to_version']}"
    lines = [head]
    if run_record.get("next_action"):
        lines.append(f"  next: {run_record['next_action']}")
    lines += _fix_lines(run_record.get("fix") or {}, open_=verdict not in ("healthy", "mitigated"))
    lines += _more_found(run_record.get("detected") or [], open_=verdict not in ("healthy", "mitigated"))
    for unread in run_record.get("unread") or []:
        lines.append(f"  could not read: {unread.get('step')}: {unread.get('what')}")
    rows = [{"step": s.get("step"), "role": s.get("role"), "status": s.get("status"), "seconds": s.get("seconds"),
             "summary": s.get("summary")} for s in run_record.get("steps") or []]
    if rows:
        lines.append(table(rows, ["step", "role", "status", "seconds", "summary"]))
    for change in run_record.get("changed") or []:
        what = change.get("what")
        if change.get("action") == "command":
            lines.append(f"  ran: {what} (exit {change.get('exit_code')})")
        else:
            lines.append(f"  changed: {change.get('action')} {what}: {change.get('before')} -> {change.get('after')}"
                         + (" (forward)" if change.get("direction") == "forward" else "")
                         + (f" (audit record {change['audit']})" if change.get("audit") else ""))
    if run_record.get("failure"):
        lines.append(f"  failed at: {run_record['failure'].get('cell')}: {run_record['failure'].get('error')}")
    lines.append(f"  notebook:   {out / (str(run_record.get('runbook')) + '.ipynb')}")
    lines.append(f"  run record: {out / (str(run_record.get('runbook')) + '.result.json')}")
    _write("\n".join(lines))
