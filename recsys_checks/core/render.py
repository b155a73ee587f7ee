"""Rendering results for a person (tables, colour on a terminal, plain when piped) or a machine (JSON)."""

from __future__ import annotations

import json
import os
import re
from typing import Any, TextIO

from recsys_checks.core import jsonio
from recsys_checks.core.results import ActionResult, CheckResult, Plan
from recsys_checks.core.timefmt import age_text

_COLOURS = {"ok": "32", "warn": "33", "fail": "31", "planned": "36", "applied": "32", "noop": "32"}
_LABELS = {"planned": "DRY-RUN", "applied": "APPLIED", "noop": "NO-OP"}
# How many characters a table cell shows before it is cut with an ellipsis.
MAX_CELL = 72


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return stream.isatty() and "NO_COLOR" not in os.environ


def _paint(text: str, status: str, colour: bool) -> str:
    code = _COLOURS.get(status)
    return f"\033[{code};1m{text}\033[0m" if colour and code else text


def cell_text(value: Any) -> str:
    """A value as one table cell: ``-`` for nothing, yes/no, compact JSON, cut at :data:`MAX_CELL` characters."""
    if value is None or value == [] or value == {}:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        value = jsonio.dumps(value, sort_keys=True, separators=(",", ":"))
    text = str(value)
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def column_label(key: str) -> str:
    """What a person reads for a data key: ages are shown as 26h05m, so ``age_seconds`` reads ``age``."""
    return key.removesuffix("_seconds") if key.endswith("age_seconds") else key


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A plain text table: a header, a rule, one line per row; columns default to the first row's keys."""
    if not rows:
        return "  (none)"
    columns = columns or list(rows[0].keys())
    cells = [[cell_text(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(column_label(c)), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  " + "  ".join(column_label(c).upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  " + "  ".join("-" * w for w in widths))
    lines += ["  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


_HEX64 = re.compile(r"^[0-9a-f]{64}$")

# What a person sees of each check at a glance: a few fields and the columns that matter. ``--json`` has everything.
VIEWS: dict[str, dict[str, Any]] = {
    "manifest.status": {"fields": ["condition", "updated_at", "age_seconds", "problems", "notes"],
                        "tables": {"artifacts": ["kind", "version", "status", "items", "window_start", "window_end",
                                                 "summary"]}},
    "manifest.history": {"fields": ["manifest_state", "record_problems", "warnings"],
                         "tables": {"versions": ["kind", "version", "window_end", "built_at", "current", "valid",
                                                 "rollback_target", "items", "problems"]}},
    "freshness": {"fields": ["registry", "mode", "counts"],
                  "tables": {"rows": ["tenant", "surface", "condition", "updated_at", "age_seconds", "window_end",
                                      "summary"]}},
    "recs.probe": {"fields": ["cause", "runbook", "config_version", "rules_version", "warnings", "problem"],
                   "tables": {"items": ["rank", "item_id", "score"]}},
    "recs.served_vs_published": {"fields": ["verdict", "served_version", "manifest_version", "manifest_age_seconds"],
                                 "tables": {}},
    "config.show": {"fields": ["version", "document"], "tables": {}},
    "rules.show": {"fields": ["version", "document"], "tables": {}},
    "config.history": {"fields": ["version"], "tables": {"changes": ["when", "who", "before", "after"]}},
    "rules.history": {"fields": ["version"], "tables": {"changes": ["when", "who", "before", "after"]}},
    "eval.quality": {"fields": ["suite_decision", "trust_verdict", "difference", "trust_problems",
                                "outcome_join_rate", "assignment_join_rate", "exposure_join_rate", "duplicates",
                                "notes"],
                     "tables": {"lines": ["kind", "file", "lines", "good", "bad"],
                                "bad_lines": ["file", "line", "problem"],
                                "variants": ["variant", "exposures", "clicks", "conversions", "ctr", "conversion_rate"],
                                "guardrails": ["variant", "latency_p95_ms", "error_rate", "empty_rate", "pass_latency",
                                               "pass_error_rate", "pass_empty_rate"],
                                "impossible": ["check", "count", "detail", "examples"]}},
    "eval.report": {"fields": ["mode", "run_id", "suite_decision", "trust_verdict", "difference", "trust_problems",
                               "outcome_join_rate", "assignment_join_rate", "exposure_join_rate", "notes"],
                    "tables": {"variants": ["variant", "exposures", "clicks", "conversions", "ctr", "conversion_rate"],
                               "guardrails": ["variant", "latency_p95_ms", "error_rate", "empty_rate", "pass_latency",
                                              "pass_error_rate", "pass_empty_rate"],
                               "impossible": ["check", "detail"], "gates": ["metric", "max_drop", "delta", "passed"]}},
    "hold.status": {"fields": ["held", "marker_uri", "problem"], "tables": {}},
    "hold.verify": {"fields": ["held", "marker_uri", "problem"], "tables": {}},
    "timeline": {"fields": ["since", "sources", "problems"],
                 "tables": {"events": ["when", "kind", "surface", "who", "what", "before", "after", "why"]}},
}


# Fields that are one sentence each (the evaluation checks' decision, verdict and the difference between them).
_SENTENCES = frozenset({"suite_decision", "trust_verdict", "difference"})


def age_cell(seconds: Any) -> str:
    """An age in seconds as the summaries write it (:func:`recsys_checks.core.timefmt.age_text`); other values as is."""
    try:
        return age_text(float(seconds))
    except (TypeError, ValueError):
        return cell_text(seconds)


def human_value(key: str, value: Any) -> Any:
    """Shorten what a person does not need in full: version hashes to 12 characters, ages to 26h05m, rates to %."""
    if key.endswith("age_seconds"):
        return age_cell(value)
    if (key.endswith("_rate") or key == "ctr") and isinstance(value, float):
        return f"{value:.2%}"
    if isinstance(value, str) and _HEX64.match(value):
        return value[:12]
    return value


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {} or value == ""


def _health_view(data: dict[str, Any]) -> tuple[list[tuple[str, Any]], list[tuple[str, list[dict[str, Any]], list[str]]]]:
    fields = [(name, (data.get(name) or {}).get("status_code")) for name in ("live", "ready")]
    metrics = data.get("metrics") or {}
    fields += [(k, v) for k, v in metrics.items() if v is not None]
    if data.get("error"):
        fields.append(("error", data["error"]))
    checks = (data.get("detail") or {}).get("checks") or []
    return fields, [("dependencies", checks, ["name", "status", "detail"])] if checks else []


def _view(result: CheckResult) -> tuple[list[tuple[str, Any]], list[tuple[str, list[dict[str, Any]], list[str]]]]:
    if result.check == "health":
        return _health_view(result.data)
    spec = VIEWS.get(result.check)
    if spec is None:  # a check without a view: every scalar, every table
        fields, tables = [], []
        for key, value in result.data.items():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                tables.append((key, value, list(value[0].keys())))
            elif not isinstance(value, (dict, list)) or len(json.dumps(value, default=str)) <= MAX_CELL:
                fields.append((key, value))
        return fields, tables
    fields = [(k, result.data.get(k)) for k in spec["fields"]]
    tables = [(k, result.data.get(k) or [], cols) for k, cols in spec["tables"].items() if k in result.data]
    return fields, tables


def render_check(result: CheckResult, colour: bool = False) -> str:
    label = _paint(result.status.upper().ljust(4), result.status, colour)
    where = f" {result.target}" if result.target else ""
    lines = [f"{label} {result.check}{where}: {result.summary}"]
    fields, tables = _view(result)
    for key, value in fields:
        if _empty(value):
            continue
        if key == "document":
            lines.append("  document:")
            lines += ["    " + line for line in jsonio.dumps(value, indent=2, sort_keys=True).splitlines()]
            continue
        if key in _SENTENCES and isinstance(value, str):
            lines.append(f"  {column_label(key)}: {value}")  # a sentence is read whole, never cut at the cell width
            continue
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            lines.append(f"  {column_label(key)}:")  # one line each: problems and notes are read, not scanned
            lines += [f"    - {v}" for v in value]
            continue
        lines.append(f"  {column_label(key)}: {cell_text(human_value(key, value))}")
    for key, rows, cols in tables:
        lines.append(f"  {key}:")
        lines.append(table([{c: human_value(c, r.get(c)) for c in cols} for r in rows], cols))
    return "\n".join(lines)


# The lines of a document change a plan shows (rules added and removed, fields before → after) before "… N more".
SHOWN_CHANGE_LINES = 12


def _change_lines(plan: Plan, full_diff: bool) -> list[str]:
    """What a config or rules plan changes, as a person reads it (``details["change"]``), the first few lines
    unless ``full_diff``; with ``full_diff`` also every field of ``details["diff"]``."""
    details = plan.details if isinstance(plan.details, dict) else {}
    change = details.get("change") if isinstance(details.get("change"), dict) else {}
    readable = [str(line) for line in change.get("lines") or []]
    out: list[str] = []
    if readable:
        shown = readable if full_diff else readable[:SHOWN_CHANGE_LINES]
        out.append("  what changes:")
        out += [f"    {line}" for line in shown]
        if len(shown) < len(readable):
            out.append(f"    … and {len(readable) - len(shown)} more (--full-diff lists every one)")
    if full_diff and details.get("diff"):
        out.append("  every field:")
        out += [f"    {d.get('path')}: {cell_text(d.get('before'))} → {cell_text(d.get('after'))}" for d in details["diff"]]
    return out


def render_plan(plan: Plan, full_diff: bool = False) -> str:
    lines = [f"  {plan.action} {plan.target}" + (f"  (reason: {plan.reason})" if plan.reason else "")]
    rows = [
        {
            "what": c.get("what"),
            "before": human_value("before", c.get("before_version") or c.get("before")),
            "after": human_value("after", c.get("after_version") or c.get("after")),
        }
        for c in plan.changes
    ]
    lines.append(table(rows, ["what", "before", "after"]))
    lines += _change_lines(plan, full_diff)
    for c in plan.changes:  # pointer moves: the exact blobs, old and new, not only their short versions
        if c.get("after_version") and isinstance(c.get("after"), str):
            lines.append(f"  {c.get('what')}: {c.get('before') or '(none)'}")
            lines.append(f"  {' ' * len(str(c.get('what')))}  -> {c['after']}")
    where = f" on deployment {plan.deployment}" if plan.deployment else ""
    lines.append(f"  plan {plan.plan_hash[:12]}, made against state {cell_text(human_value('observed', plan.observed))}{where}")
    return "\n".join(lines)


def render_action(result: ActionResult, colour: bool = False, full_diff: bool = False) -> str:
    label = _paint(_LABELS.get(result.status, result.status.upper()), result.status, colour)
    summary = result.summary
    if result.status == "planned" and summary.lower().startswith("dry-run: "):
        summary = summary[len("dry-run: "):]  # the label already says so
    lines = [f"{label} {summary}", render_plan(result.plan, full_diff)]
    if result.audit:
        lines.append(f"  audit record: {result.audit}")
    if result.verification is not None:
        lines.append(render_check(result.verification, colour))
    if result.service is not None:
        lines.append(render_check(result.service, colour))
    if result.status == "planned" and not result.plan.noop:
        lines.append("  Nothing was changed. Re-run with --execute to apply this plan.")
        lines.append(f"  To apply exactly this plan once reviewed: --execute --plan-id {result.plan.plan_hash[:12]}")
    return "\n".join(lines)




