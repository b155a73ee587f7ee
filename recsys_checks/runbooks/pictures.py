"""The runbooks' pictures: figure data (:mod:`recsys_checks.judge.figures`) drawn as SVG.

A step hands its picture to the run with :func:`attach`; the run shows it under the step's table in the notebook
(:func:`show`), where nbconvert keeps it in the receiver's HTML. :func:`svg` draws one figure as SVG text with the
package's own writer (:mod:`recsys_checks.runbooks.svgchart`, standard library only: a picture costs milliseconds
and no plotting library is loaded in a runbook's kernel): text kept as text (so the runner's secret scan reads it,
and every label goes through the secret mask first), no date or random id in the file (the same data draws the same
bytes).

Every axis says its unit, every time is UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from recsys_checks.core import credentials
from recsys_checks.core.errors import ChecksError
from recsys_checks.core.timefmt import parse_time
from recsys_checks.judge import figures
from recsys_checks.judge.registry.manifest import DEFAULT_MAX_AGE
from recsys_checks.judge.registry.version_records import load_version_records
from recsys_checks.reach.settings import parse_duration
from recsys_checks.reach.store.router import stores_for
from recsys_checks.runbooks.svgchart import Canvas, Panel, fit, nice_ticks, text_width, time_ticks

__all__ = ["DRAWN_BY", "ID_PREFIX", "KINDS", "SHOWS", "attach", "evaluation", "freshness", "pending", "rules", "show",
           "svg", "title", "versions"]

KINDS = ("versions", "freshness", "evaluation", "rules")
# The step functions that draw, and what (one declaration: the runbook pages and the reference read it).
DRAWN_BY = {
    "serving.manifest_status": "versions", "serving.manifest_history": "versions", "serving.verify_manifest": "versions",
    "serving.verify_artifacts": "versions", "pipelines.serving_state": "versions",
    "pipelines.verify_published": "versions", "readiness.publishing_freshness": "freshness",
    "evaluation.data_quality": "evaluation", "serving.config_and_rules": "rules",
}
# What each picture shows, in a sentence (the pages' captions).
SHOWS = {
    "versions": "the surface's versions on a UTC time axis: each version's data window as a bar (the ones the "
                "manifest names filled), each publish as a green dotted line, a manifest write that is no publish "
                "(a rollback, a re-run of an older day) as a red dashed line, the freshness limit (now minus "
                "max_age) and now; after a rollback, the picture before it beside the one after",
    "freshness": "the fleet's manifest ages in hours as a histogram, the bins past the limit in red, the limit "
                 "marked and the stale surfaces named, oldest first",
    "evaluation": "each variant's primary metric per exposure with its 95 % (Wilson) interval, the line the "
                  "candidate must stay above (control plus the threshold), and the SRM split: assignments observed "
                  "against expected, with the test's p-value",
    "rules": "the share of the catalog each active block rule hides (rules on tags, brands or categories in grey: "
             "the artifact has no tags to count them with), and the catalog, what the rules leave servable, what "
             "the probe was served and how much of it is from the catalog",
}
# Every picture says what it is, wherever it lands (a notebook's output, the receiver's HTML, an <img> of a data: URI):
# its SVG has a <title> (what a screen reader and a browser's tooltip give) and its drawing is one group whose id is
# this prefix and the kind (``recsys-picture-versions``).
ID_PREFIX = "recsys-picture-"
_PENDING = "pictures"  # run.memo key: figures attached by the current step, shown after its table
_WIDTH, _HEIGHT = 860, 300  # pixels (a versions picture with its before beside it is wider)


def attach(run: Any, figure: dict[str, Any] | None) -> None:
    """Keep ``figure`` to be shown after the current step's table (nothing when None)."""
    if figure is not None:
        run.memo.setdefault(_PENDING, []).append(figure)


def pending(run: Any) -> list[dict[str, Any]]:
    """The figures attached since the last call, removed from the run."""
    return run.memo.pop(_PENDING, [])


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipykernel is a dependency
        return False
    return get_ipython() is not None


def show(figure: dict[str, Any]) -> None:
    """Display ``figure`` as an SVG image in the notebook; outside a kernel (a script, a test) nothing."""
    if not _in_kernel():
        return
    from IPython.display import SVG, display

    display(SVG(svg(figure)))


# ------------------------------------------------------------------------------------------------------ from a run
# What a step passes in is its own result; what a picture needs beyond it is read here. A picture that cannot be made
# (a store that does not answer, a result without the data) is left out: it never changes a step or a verdict.

_BEFORE = "versions_before"  # run.memo key: the first versions picture of the run, the "before" of a rollback


def versions(run: Any, result: Any) -> None:
    """The versions timeline of the run's surface, from a ``manifest.status`` or ``manifest.history`` result; once
    the run has applied a fix, drawn beside the first one of the run (before and after)."""
    data = getattr(result, "data", None) or {}
    try:
        if "versions" in data:
            records, current, updated = data["versions"], data.get("current") or {}, data.get("updated_at")
        elif data.get("manifest"):
            records, current, updated = _records(run), data["manifest"].get("current") or {}, data.get("updated_at")
        else:
            return
        figure = figures.versions_figure(records, tenant=run.tenant, surface=run.surface, current=current,
                                         updated_at=updated, max_age=_max_age(run, data),
                                         now=datetime.now(UTC))
    except (ChecksError, KeyError, TypeError, ValueError):
        return
    before = run.memo.setdefault(_BEFORE, figure)
    attach(run, figures.with_before(figure, before) if before is not figure and _fixed(run) else figure)


def freshness(run: Any, result: Any) -> None:
    """The histogram of manifest ages, from a ``freshness`` result's rows."""
    data = getattr(result, "data", None) or {}
    if isinstance(data.get("rows"), list) and isinstance(data.get("max_age_seconds"), int):
        attach(run, figures.freshness_figure(data["rows"], max_age_seconds=data["max_age_seconds"]))


def evaluation(run: Any, result: Any) -> None:
    """Each variant's primary metric and the SRM split, from an ``eval.quality`` result of an experiment."""
    data = getattr(result, "data", None) or {}
    if not data.get("variants"):
        return
    settings = data.get("settings") or {}
    metric = (list(settings.get("primary_metrics") or []) or ["ctr"])[0]
    threshold = float((settings.get("primary_thresholds") or {}).get(metric, 0.0))
    attach(run, figures.evaluation_figure(data["variants"], data.get("srm"), metric=metric,
                                          control=settings.get("control_variant"), threshold=threshold))


def rules(run: Any, rules_document: Any, catalog: list[dict[str, Any]] | None) -> None:
    """What the active rules hide of the catalog, and what the probe of the run was served."""
    if catalog is None:
        return
    probe = run.result("probe")
    served = (getattr(probe, "data", None) or {}).get("items") or []
    attach(run, figures.rules_figure(rules_document, catalog, served, surface=run.surface, now=datetime.now(UTC)))


def _records(run: Any) -> list[dict[str, Any]]:
    st, own = stores_for(run.target, None)
    try:
        found, _ = load_version_records(run.target, run.tenant, run.surface, stores=st)
    finally:
        if own:
            st.close()
    return [r.to_dict() for r in found]


def _max_age(run: Any, data: dict[str, Any]) -> timedelta:
    if isinstance(data.get("max_age_seconds"), int):
        return timedelta(seconds=data["max_age_seconds"])
    return parse_duration(str(run.params.get("max_age") or DEFAULT_MAX_AGE))


def _fixed(run: Any) -> bool:
    return any(o.role == "act" and o.status in ("applied", "moved") for o in run.outcomes)


def _mask(text: Any) -> str:
    return credentials.mask("" if text is None else str(text))


def svg(figure: dict[str, Any]) -> str:
    """``figure`` drawn as SVG text."""
    draw = {"versions": _versions, "freshness": _freshness, "evaluation": _evaluation, "rules": _rules}
    kind = figure.get("figure")
    if kind not in draw:
        raise ValueError(f"no picture of kind {kind!r}: use one of {', '.join(KINDS)}")
    return draw[kind](figure).render(ID_PREFIX + kind, title(figure))


def title(figure: dict[str, Any]) -> str:
    """The picture's title in a line (its SVG ``<title>``): what it is and whose, masked like every label."""
    kind = figure.get("figure")
    whose = {"versions": f"{figure.get('tenant')}/{figure.get('surface')}", "rules": f"surface {figure.get('surface')}",
             "freshness": f"{figure.get('surfaces')} surface(s), {figure.get('stale_count')} stale",
             "evaluation": f"{figure.get('metric')} per variant and the SRM split"}.get(kind, "")
    return _mask(f"{_TITLES.get(kind, kind)}: {whose}")


_TITLES = {"versions": "Versions timeline", "freshness": "Fleet freshness histogram",
           "evaluation": "Evaluation against the threshold", "rules": "Catalog hidden by the rules"}
_BLUE, _PALE, _EDGE, _RED, _GREEN, _BROWN, _GREY = ("#1f77b4", "#c7d4e2", "#8fa5bd", "#d62728", "#2a9d3c",
                                                     "#8a5a00", "#444444")
_TOP, _BOTTOM = 52, 48  # room above the panels (the picture's title and each panel's) and below (ticks, axis title)
_LABELS = 150  # room left of a panel for its row labels


def _suptitle(canvas: Canvas, text: str) -> None:
    canvas.text(canvas.width / 2, 18, fit(text, canvas.width - 20, 11), size=11, anchor="middle")


def _wrap(text: str, width: float, size: float, lines: int) -> list[str]:
    """``text`` in at most ``lines`` lines of about ``width`` pixels, the last one cut with "…"."""
    words, out, line = text.split(" "), [], ""
    for word in words:
        candidate = f"{line} {word}".strip()
        if line and text_width(candidate, size) > width:
            out.append(line)
            line = word
        else:
            line = candidate
    out.append(line)
    if len(out) > lines:
        out = out[: lines - 1] + [fit(" ".join(out[lines - 1:]), width, size)]
    return [fit(x, width, size) for x in out]


# ------------------------------------------------------------------------------------------------------ versions


_MARK_STYLE = {"publish": {"stroke": _GREEN, "dash": "2,2"}, "repoint": {"stroke": _RED, "dash": "6,3"}}


def _versions(f: dict[str, Any]) -> Canvas:
    panels = [("before", f["before"]), ("after", f)] if f.get("before") else [("", f)]
    width = round(_WIDTH * (1.35 if len(panels) > 1 else 1))
    canvas = Canvas(width, _HEIGHT)
    legend_room = 140
    slot = (width - legend_room) / len(panels)
    for n, (label, data) in enumerate(panels):
        panel = Panel(canvas, n * slot + _LABELS + 10, _TOP, slot - _LABELS - 30, _HEIGHT - _TOP - _BOTTOM)
        _versions_panel(panel, data, label)
    hours = f["max_age_seconds"] / 3600
    panel.legend([("publish", _MARK_STYLE["publish"]), ("repoint", _MARK_STYLE["repoint"]),
                  (f"limit: now - {hours:g} h", {"stroke": _BROWN, "width": 1.5}), ("now", {"stroke": _GREY})],
                 width - legend_room + 10, _TOP + 8)
    _suptitle(canvas, _mask(f"Versions of {f['tenant']}/{f['surface']}: data windows, publishes and the pointer "
                            "(UTC)"))
    return canvas


def _seconds(value: Any) -> float:
    return parse_time(value).timestamp()


def _versions_panel(panel: Panel, f: dict[str, Any], label: str) -> None:
    bars = list(reversed(f["bars"]))  # oldest at the bottom
    times = [_seconds(b[k]) for b in bars for k in ("start", "end")]
    times += [_seconds(m["at"]) for m in f["marks"]] + [_seconds(f["limit"]), _seconds(f["now"])]
    low, high = min(times), max(times)
    pad = (high - low) * 0.03 or 3600.0
    panel.x_range, panel.y_range = (low - pad, high + pad), (-0.5, max(len(bars), 1) - 0.5)
    canvas = panel.canvas
    for y, b in enumerate(bars):
        left, right = panel.px(_seconds(b["start"])), panel.px(_seconds(b["end"]))
        top, bottom = panel.py(y + 0.3), panel.py(y - 0.3)
        canvas.rect(left, top, right - left, bottom - top, _BLUE if b["current"] else _PALE,
                    stroke=_BLUE if b["current"] else _EDGE)
    panel.categories_y([_mask(f"{b['kind']} {b['version'][:8]}" + (" (current)" if b["current"] else ""))
                        for b in bars], _LABELS - 8)
    if not bars:
        canvas.text(panel.x + panel.w / 2, panel.y + panel.h / 2, "no version records", size=9, anchor="middle")
    for m in f["marks"]:
        at = panel.px(_seconds(m["at"]))
        canvas.line(at, panel.y, at, panel.y + panel.h, width=1, **_MARK_STYLE[m["what"]])
    for at, style in ((f["limit"], {"stroke": _BROWN, "width": 1.5}), (f["now"], {"stroke": _GREY})):
        x = panel.px(_seconds(at))
        canvas.line(x, panel.y, x, panel.y + panel.h, **style)
    panel.frame()
    low_dt, high_dt = (datetime.fromtimestamp(t, UTC) for t in panel.x_range)
    ticks = time_ticks(low_dt, high_dt, most=max(2, min(6, int(panel.w // 75))))
    panel.x_ticks([t.timestamp() for t in ticks],
                  label=lambda t: datetime.fromtimestamp(t, UTC).strftime("%m-%d %H:%M"))
    panel.x_label("time (UTC)")
    panel.title(_mask(f"{label + ': ' if label else ''}pointer written {f['updated_at'] or 'never'}"))


# ------------------------------------------------------------------------------------------------------ freshness


def _freshness(f: dict[str, Any]) -> Canvas:
    canvas = Canvas(_WIDTH, _HEIGHT)
    panel = Panel(canvas, 70, _TOP, _WIDTH - 70 - 30, _HEIGHT - _TOP - _BOTTOM)
    edges, counts = f["edges"], f["counts"]
    top = max(counts + [1]) * 1.6  # room above the bars for the legend and the stale names
    panel.x_range, panel.y_range = (0.0, edges[-1] or 1.0), (0.0, top)
    panel.y_ticks([t for t in nice_ticks(0, top, 5) if t == int(t)])
    for left, right, count in zip(edges, edges[1:], counts, strict=False):
        colour = _RED if left >= f["limit_hours"] else _BLUE
        canvas.rect(panel.px(left), panel.py(count), panel.px(right) - panel.px(left), panel.py(0) - panel.py(count),
                    colour, stroke="#ffffff")
    limit = panel.px(f["limit_hours"])
    canvas.line(limit, panel.y, limit, panel.y + panel.h, stroke=_BROWN, width=1.5)
    panel.frame()
    panel.x_ticks(nice_ticks(0, edges[-1] or 1.0, 8))
    panel.x_label("manifest age (hours)")
    panel.y_label("surfaces")
    panel.legend([(f"limit {f['limit_hours']:g} h", {"stroke": _BROWN, "width": 1.5})], panel.x + panel.w - 90,
                  panel.y + 10)
    stale = f["stale"]
    named = ", ".join(stale[:8]) + (f" and {f['stale_count'] - 8} more" if f["stale_count"] > 8 else "")
    heading = (f"Fleet freshness: {f['surfaces']} surface(s) with an age, {f['stale_count']} stale"
               + (f", {f['unaged']} without an age" if f["unaged"] else ""))
    panel.title(_mask(heading), size=10)
    if stale:
        for n, line in enumerate(_wrap(_mask(f"stale: {named}"), panel.w * 0.45, 8, 3)):
            canvas.text(panel.x + panel.w - 4, panel.y + 28 + 11 * n, line, size=8, anchor="end", colour="#a4161a")
    return canvas


# ------------------------------------------------------------------------------------------------------ evaluation


def _evaluation(f: dict[str, Any]) -> Canvas:
    canvas = Canvas(_WIDTH, _HEIGHT)
    height = _HEIGHT - _TOP - _BOTTOM
    left = Panel(canvas, 80, _TOP, _WIDTH / 2 - 110, height)
    right = Panel(canvas, _WIDTH / 2 + 80, _TOP, _WIDTH / 2 - 110, height)
    _metric_panel(left, f)
    _split_panel(right, f)
    _suptitle(canvas, "Evaluation: each variant against the threshold, and the split it was assigned")
    return canvas


def _metric_panel(panel: Panel, f: dict[str, Any]) -> None:
    rows, canvas = f["variants"], panel.canvas
    values = [v for r in rows for v in (r["low"], r["high"], r["value"]) if isinstance(v, (int, float))]
    if f["must_stay_above"] is not None:
        values.append(f["must_stay_above"])
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (high - low) * 0.1 or max(abs(high) * 0.1, 0.01)
    panel.x_range, panel.y_range = (-0.6, len(rows) - 0.4), (low - pad, high + pad)
    panel.y_ticks(nice_ticks(low - pad, high + pad, 5))
    for x, r in enumerate(rows):
        value = r["value"] or 0.0
        colour = _BLUE if r["variant"] != f["control"] else _GREY
        at = panel.px(x)
        lo, hi = (r["low"] if r["low"] is not None else value), (r["high"] if r["high"] is not None else value)
        canvas.line(at, panel.py(lo), at, panel.py(hi), stroke=colour, width=1.5)
        for end in (lo, hi):
            canvas.line(at - 5, panel.py(end), at + 5, panel.py(end), stroke=colour, width=1.5)
        canvas.circle(at, panel.py(value), 3.5, colour)
    panel.categories_x([_mask(r["variant"]) for r in rows])
    if f["must_stay_above"] is not None:
        line = panel.py(f["must_stay_above"])
        canvas.line(panel.x, line, panel.x + panel.w, line, stroke=_RED, dash="6,3")
        panel.legend([(f"control {f['threshold']:+g} (threshold)", {"stroke": _RED, "dash": "6,3"})],
                     panel.x + panel.w - 150, panel.y + panel.h - 8, size=7)
    panel.frame()
    panel.y_label(f"{f['metric']} (per exposure)")
    panel.title("primary metric, 95 % interval")


def _split_panel(panel: Panel, f: dict[str, Any]) -> None:
    split, canvas = f["srm"], panel.canvas
    top = max([s["observed"] or 0 for s in split] + [s["expected"] or 0 for s in split] + [1]) * 1.35  # the legend
    panel.x_range, panel.y_range = (-0.6, max(len(split), 1) - 0.4), (0.0, top)
    panel.y_ticks(nice_ticks(0, top, 5))
    bar = panel.w / max(len(split), 1) * 0.35
    for x, s in enumerate(split):
        for offset, value, colour in ((-bar, s["observed"] or 0, _BLUE), (0.0, s["expected"] or 0, _PALE)):
            canvas.rect(panel.px(x) + offset, panel.py(value), bar, panel.py(0) - panel.py(value), colour)
    panel.categories_x([_mask(s["variant"]) for s in split])
    panel.frame()
    panel.y_label("assignments")
    p = f["srm_p_value"]
    heading = "SRM split" + (f": p = {p:.2g}" if isinstance(p, (int, float)) else ": no assignments")
    panel.title(heading, colour="#a4161a" if f["srm_detected"] else "#222222")
    panel.legend([("observed", {"fill": _BLUE}), ("expected", {"fill": _PALE})], panel.x + panel.w - 70,
                 panel.y + 10, size=7)


# ------------------------------------------------------------------------------------------------------ rules


def _rules(f: dict[str, Any]) -> Canvas:
    canvas = Canvas(_WIDTH, _HEIGHT)
    height = _HEIGHT - _TOP - _BOTTOM
    left = Panel(canvas, _LABELS + 20, _TOP, _WIDTH * 0.6 - _LABELS - 40, height)
    right = Panel(canvas, _WIDTH * 0.6 + 60, _TOP, _WIDTH * 0.4 - 80, height)
    rules = list(reversed(f["rules"]))
    left.x_range, left.y_range = (0.0, 100.0), (-0.5, max(len(rules), 1) - 0.5)
    for y, r in enumerate(rules):
        share = 100 * r["share"]
        canvas.rect(left.px(0), left.py(y + 0.35), left.px(share) - left.px(0), left.py(y - 0.35) - left.py(y + 0.35),
                    _RED if r["counted"] else "#bbbbbb")
    left.categories_y([_mask(f"{r['rule']} ({r['target']})" + ("" if r["counted"] else ", uncounted"))
                       for r in rules], _LABELS + 8)
    if not rules:
        canvas.text(left.x + left.w / 2, left.y + left.h / 2, "no active block rule", size=9, anchor="middle")
    left.frame()
    left.x_ticks(nice_ticks(0, 100, 6))
    left.x_label("share of the catalog hidden (%)")
    left.title(f"active block rules: {100 * f['hidden_share']:.0f} % of {f['catalog']} items hidden")
    values = [f["catalog"], f["servable"], f["served"], f["served_published"]]
    top = max(values + [1]) * 1.1
    right.x_range, right.y_range = (-0.6, 3.6), (0.0, top)
    right.y_ticks([t for t in nice_ticks(0, top, 5) if t == int(t)])
    for x, (value, colour) in enumerate(zip(values, (_PALE, _BLUE, _GREEN, _GREEN), strict=True)):
        width = right.w / 4 * 0.6
        canvas.rect(right.px(x) - width / 2, right.py(value), width, right.py(0) - right.py(value), colour)
    right.categories_x(["catalog", "servable", "served", "served\nfrom catalog"])
    right.frame()
    right.y_label("items")
    right.title("served against published")
    _suptitle(canvas, _mask(f"Rules of surface {f['surface']}: what they hide, what clients get"))
    return canvas
