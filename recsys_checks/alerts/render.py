"""HTML: the executed notebook (nbconvert) and the receiver's two pages, ``/incidents`` and ``/incidents/ID``.

Every value shown is escaped; the notebook is shown in a sandboxed frame (no scripts), and the pages are served with
a Content-Security-Policy that allows nothing from elsewhere, so the pages work offline, as the handbook does.
"""

from __future__ import annotations

import html
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .incident import Incident

MAX_NOTEBOOK = 50 * 1024 * 1024
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-src 'self'; "
       "base-uri 'none'; form-action 'none'")

_lock = threading.Lock()
_exporter: Any = None


def warm() -> None:
    """Load nbconvert's exporter and templates (about a second) before the first render needs them."""
    global _exporter
    with _lock:
        if _exporter is None:
            from nbconvert import HTMLExporter

            _exporter = HTMLExporter()
            _exporter.from_notebook_node(__import__("nbformat").v4.new_notebook())


def notebook_html(path: Path) -> str:
    """The executed notebook at ``path`` as a standalone HTML page (nbconvert's HTML exporter)."""
    global _exporter
    if path.stat().st_size > MAX_NOTEBOOK:
        raise ValueError(f"{path.name} is larger than {MAX_NOTEBOOK} bytes; open the notebook itself")
    import nbformat

    with _lock:  # one exporter, one render at a time: its templates load once (about 1 s), then a render is ~50 ms
        if _exporter is None:
            from nbconvert import HTMLExporter

            _exporter = HTMLExporter()
        with path.open("rb") as fh:
            notebook = nbformat.read(fh, as_version=4)
        body, _ = _exporter.from_notebook_node(notebook)
    return body


def age(when: str | None, now: datetime | None = None) -> str:
    if not when:
        return ""
    try:
        then = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return ""
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}
pre{background:#f6f6f6;padding:.6rem;overflow-x:auto;white-space:pre-wrap}
.v-healthy,.v-mitigated{color:#17602a}.v-action-required,.v-failed{color:#a4161a}.v-inconclusive{color:#8a5a00}
.s{font-size:.8rem;color:#555}
iframe{width:100%;height:80vh;border:1px solid #ccc}
"""


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>")


def incidents_page(rows: list[dict[str, Any]], *, total: int, queue: str) -> str:
    now = datetime.now(UTC)
    lines = []
    for r in rows:
        surface = f"{r['tenant']}/{r['surface']}" if r.get("tenant") else ""
        verdict = r.get("verdict") or ""
        lines.append(
            f"<tr><td>{_e(age(r.get('received_at'), now))}</td>"
            f"<td><a href=\"/incidents/{_e(r['id'])}\">{_e(r['alert'])}</a></td>"
            f"<td>{_e(r.get('runbook'))}</td><td>{_e(surface)}</td><td>{_e(r['status'])}</td>"
            f"<td class=\"v-{_e(verdict)}\">{_e(verdict)}</td><td>{_e(r.get('cause'))}</td>"
            f"<td class=s>{_e(r.get('reason') or r.get('next_action') or '')[:200]}</td></tr>")
    body = (f"<h1>Incidents</h1><p class=s>{total} incident(s); {queue}. "
            "Every run is a dry run: nothing was changed. JSON: send <code>Accept: application/json</code>.</p>"
            "<table><tr><th>age</th><th>alert</th><th>runbook</th><th>surface</th><th>status</th><th>verdict</th>"
            "<th>cause</th><th>note</th></tr>" + "".join(lines) + "</table>")
    return _page("Incidents", body)


def _fix_parts(fix: dict, *, done: bool) -> list[str]:
    """The runbook's decision-table row for the cause, as the run record filled it: the lever's commands by hand
    (while the problem stands), where to go further, and what remains to do."""
    parts = []
    commands = [c for c in fix.get("commands") or [] if isinstance(c, dict)] if not done else []
    if commands:
        lines = "\n".join(f"{c.get('dry_run')}\n{c.get('apply')}" for c in commands)
        parts.append("<p class=s>The lever by hand, from the runbook's decision table (the dry run, then the apply "
                     f"of the plan it prints):</p><pre>{_e(lines)}</pre>")
    hand_off = fix.get("hand_off") if isinstance(fix.get("hand_off"), dict) else None
    if hand_off and not done:
        parts.append(f"<p>Go further: the <code>{_e(hand_off.get('runbook'))}</code> runbook "
                     f"({_e(hand_off.get('why'))}).</p>")
    if fix.get("follow_up"):
        parts.append(f"<p>Follow-up: {_e(fix['follow_up'])}</p>")
    return parts


# ------------------------------------------------------------------------------------------------------ pictures
# The triage's picture (the fleet's ages for a staleness alert), drawn by the runbooks' own drawing code. It is an
# <img> of a data: URI (the CSP allows images from data: only, and an image runs nothing); drawn once per figure.

_drawn: dict[str, str] = {}


def picture_parts(triage: dict[str, Any]) -> list[str]:
    """The triage's picture as HTML, or nothing when it has none or it cannot be drawn."""
    figure = triage.get("figure")
    if not isinstance(figure, dict):
        return []
    import base64
    import json

    from .checks import draw_svg

    key = json.dumps(figure, sort_keys=True, default=str)
    with _lock:
        if key not in _drawn:
            if len(_drawn) > 64:
                _drawn.clear()
            try:
                _drawn[key] = base64.b64encode(draw_svg(figure).encode("utf-8")).decode("ascii")
            except (KeyError, TypeError, ValueError):
                return []
    return [f"<h2>Fleet freshness</h2><img alt=\"{_e(_alt(figure))}\" style=\"max-width:100%\" "
            f"src=\"data:image/svg+xml;base64,{_drawn[key]}\">"]


def _alt(figure: dict[str, Any]) -> str:
    return (f"histogram of manifest ages in hours, limit {figure.get('limit_hours')} h; "
            f"{figure.get('stale_count')} stale: {', '.join(figure.get('stale') or [])}")


def incident_page(incident: Incident) -> str:
    rows = incident.rows
    parts = ["<p><a href=\"/incidents\">all incidents</a></p>",
             f"<h1>{_e(incident.alert)} <span class=s>{_e(incident.id)}</span></h1>"]
    for row in rows:
        verdict = row.verdict
        where = f" for {_e(row.tenant)}/{_e(row.surface)}" if row.tenant else ""
        head = f"<h2>{_e(row.runbook or 'no runbook')}{where}: "
        if verdict:
            head += f"<span class=\"v-{_e(verdict)}\">{_e(verdict)}</span>"
            head += f", cause <code>{_e(row.cause)}</code>" if row.cause else ""
        else:
            head += _e(row.status)
        parts.append(head + "</h2>")
        if row.next_action:
            parts.append(f"<p>{_e(row.next_action)}</p>")
        if row.reason:
            parts.append(f"<p class=s>{_e(row.reason)}</p>")
        if row.plan_id:
            parts.append(f"<p>Plan <code>{_e(row.plan_id)}</code>. Review it in the notebook below; to apply "
                         "exactly this plan (it applies only if the plan is still the same):</p>"
                         f"<pre>{_e(row.apply_command)}</pre>")
        elif row.dry_run_command:
            parts.append(f"<p class=s>The dry run, by hand:</p><pre>{_e(row.dry_run_command)}</pre>")
        parts += _fix_parts(row.fix or {}, done=row.verdict in ("healthy", "mitigated"))
        links = []
        if row.record:
            links.append(f"<a href=\"/incidents/{_e(incident.id)}/runs/{row.run}/record\">run record</a>")
        if row.notebook_html:
            links.append(f"<a href=\"/incidents/{_e(incident.id)}/runs/{row.run}/notebook\">notebook</a>")
        if links:
            parts.append("<p class=s>" + " · ".join(links) + "</p>")
    triage = incident.triage or {}
    parts.append("<h2>Alert</h2><table>"
                 f"<tr><th>status</th><td>{_e(incident.status)} ({_e(incident.phase)})</td></tr>"
                 f"<tr><th>started</th><td>{_e(incident.starts_at)}</td></tr>"
                 f"<tr><th>received</th><td>{_e(incident.received_at)} ({_e(age(incident.received_at))})"
                 f"</td></tr><tr><th>resolved</th><td>{_e(incident.resolved_at or 'no')}</td></tr>"
                 f"<tr><th>fingerprint</th><td>{_e(incident.fingerprint)}</td></tr>"
                 f"<tr><th>labels</th><td>{_e(', '.join(f'{k}={v}' for k, v in incident.labels.items()))}"
                 f"</td></tr><tr><th>triage</th><td>{_e(triage.get('summary') or 'none (the labels name the surface)')}"
                 "</td></tr></table>")
    if triage.get("suspects"):
        parts.append("<table><tr><th>surface</th><th>state</th><th>signals</th></tr>" + "".join(
            f"<tr><td>{_e(s['tenant'])}/{_e(s['surface'])}</td><td>{_e(s['state'])}</td>"
            f"<td class=s>{_e('; '.join(s['signals']))[:600]}</td></tr>" for s in triage["suspects"]) + "</table>")
    parts += picture_parts(triage)
    for row in rows:
        if row.notebook_html:
            parts.append(f"<h2>Notebook: {_e(row.runbook)} {_e(row.tenant)}/{_e(row.surface)}</h2>"
                         f"<iframe sandbox title=\"executed notebook\" "
                         f"src=\"/incidents/{_e(incident.id)}/runs/{row.run}/notebook\"></iframe>")
    return _page(f"{incident.alert} {incident.id}", "".join(parts))
