"""Rendering results for a person (tables, colour on a terminal, plain when piped) or a machine (JSON)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from .results import ActionResult, CheckResult, Plan

_COLOURS = {"ok": "32", "warn": "33", "fail": "31", "planned": "36", "applied": "32", "noop": "32", "conflict": "31"}
_LABELS = {"planned": "DRY-RUN", "applied": "APPLIED", "noop": "NO-OP", "conflict": "CONFLICT"}
_MAX_CELL = 72


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return stream.isatty() and "NO_COLOR" not in os.environ


def _paint(text: str, status: str, colour: bool) -> str:
    code = _COLOURS.get(status)
    return f"\033[{code};1m{text}\033[0m" if colour and code else text


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"))
    text = str(value)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A plain text table: a header, a rule, one line per row; columns default to the first row's keys."""
    if not rows:
        return "  (none)"
    columns = columns or list(rows[0].keys())
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  " + "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  " + "  ".join("-" * w for w in widths))
    lines += ["  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def _split_data(data: dict[str, Any]) -> tuple[list[tuple[str, Any]], list[tuple[str, list[dict[str, Any]]]]]:
    scalars, tables = [], []
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.append((key, value))
        elif isinstance(value, (dict, list)) and len(json.dumps(value, default=str)) > _MAX_CELL:
            continue  # large nested data is for --json readers
        else:
            scalars.append((key, value))
    return scalars, tables


def render_check(result: CheckResult, colour: bool = False) -> str:
    label = _paint(result.status.upper().ljust(4), result.status, colour)
    where = f" {result.target}" if result.target else ""
    lines = [f"{label} {result.check}{where}: {result.summary}"]
    scalars, tables = _split_data(result.data)
    for key, value in scalars:
        lines.append(f"  {key}: {_cell(value)}")
    for key, rows in tables:
        lines.append(f"  {key}:")
        lines.append(table(rows))
    return "\n".join(lines)


def render_plan(plan: Plan) -> str:
    lines = [f"  {plan.action} {plan.target}" + (f"  (reason: {plan.reason})" if plan.reason else "")]
    rows = [{"what": c.get("what"), "before": c.get("before"), "after": c.get("after")} for c in plan.changes]
    lines.append(table(rows, ["what", "before", "after"]))
    lines.append(f"  plan {plan.plan_hash[:12]}, made against state {_cell(plan.observed)}")
    return "\n".join(lines)


def render_action(result: ActionResult, colour: bool = False) -> str:
    label = _paint(_LABELS.get(result.status, result.status.upper()), result.status, colour)
    lines = [f"{label} {result.summary}", render_plan(result.plan)]
    if result.audit:
        lines.append(f"  audit record: {result.audit}")
    if result.verification is not None:
        lines.append(render_check(result.verification, colour))
    if result.status == "planned" and not result.plan.noop:
        lines.append("  Nothing was changed. Re-run with --execute to apply this plan.")
    return "\n".join(lines)


def emit(results: list[CheckResult | ActionResult], as_json: bool, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    if as_json:
        payload: Any = [r.to_dict() for r in results]
        json.dump(payload[0] if len(payload) == 1 else payload, stream, indent=2, default=str)
        stream.write("\n")
        return
    colour = use_colour(stream)
    blocks = [render_action(r, colour) if isinstance(r, ActionResult) else render_check(r, colour) for r in results]
    stream.write("\n\n".join(blocks) + "\n")
