"""The runbooks' pictures: figure data (:mod:`recsys_checks.judge.figures`) drawn as SVG with matplotlib.

A step hands its picture to the run with :func:`attach`; the run shows it under the step's table in the notebook
(:func:`show`), where nbconvert keeps it in the receiver's HTML. :func:`svg` draws one figure as SVG text: the Agg
backend (no display, no window), text kept as text (so the runner's secret scan reads it, and every label goes
through the secret mask first), no date in the file (the same data draws the same bytes). matplotlib is imported
here, inside the drawing functions, and nowhere else: a run that draws nothing never loads it; a run whose steps
draw starts the import in a background thread as it begins (:func:`warm_up`), in a notebook kernel only.

Every axis says its unit, every time is UTC.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable
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

__all__ = ["DRAWN_BY", "ID_PREFIX", "KINDS", "SHOWS", "attach", "evaluation", "freshness", "pending", "rules", "show",
           "svg", "title", "versions", "warm_up"]

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
_WIDTH, _HEIGHT = 8.0, 3.4  # inches


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


def warm_up(functions: Iterable[str]) -> threading.Thread | None:
    """When a run's steps (``functions``, as the spec names them) will draw in a notebook, import matplotlib in a
    background thread now, so that the import (most of what the first picture costs) overlaps the steps' reads and
    the pauses between cells instead of adding to the run; the thread, or None when nothing will be drawn."""
    if not any(f in DRAWN_BY for f in functions) or not _in_kernel():
        return None
    thread = threading.Thread(target=_import_quietly, name="pictures-warm-up", daemon=True)
    thread.start()
    return thread


def _import_quietly() -> None:
    try:
        _pyplot()
    except Exception:  # noqa: BLE001 - a failed warm-up only loses the head start: the first picture imports again
        pass


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


_IMPORT_LOCK = threading.Lock()  # one thread sets matplotlib up at a time (a warm-up may be doing it)


def _pyplot() -> Any:
    with _IMPORT_LOCK:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt

        plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "recsys-runbooks", "font.size": 9,
                             "axes.spines.top": False, "axes.spines.right": False})
    return plt


def svg(figure: dict[str, Any]) -> str:
    """``figure`` drawn as SVG text."""
    draw = {"versions": _versions, "freshness": _freshness, "evaluation": _evaluation, "rules": _rules}
    kind = figure.get("figure")
    if kind not in draw:
        raise ValueError(f"no picture of kind {kind!r}: use one of {', '.join(KINDS)}")
    plt = _pyplot()
    fig = draw[kind](plt, figure)
    fig.set_gid(ID_PREFIX + kind)
    try:
        out = io.StringIO()
        fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None, "Title": title(figure)})
    finally:
        plt.close(fig)
    return out.getvalue()


def title(figure: dict[str, Any]) -> str:
    """The picture's title in a line (its SVG ``<title>``): what it is and whose, masked like every label."""
    kind = figure.get("figure")
    whose = {"versions": f"{figure.get('tenant')}/{figure.get('surface')}", "rules": f"surface {figure.get('surface')}",
             "freshness": f"{figure.get('surfaces')} surface(s), {figure.get('stale_count')} stale",
             "evaluation": f"{figure.get('metric')} per variant and the SRM split"}.get(kind, "")
    return _mask(f"{_TITLES.get(kind, kind)}: {whose}")


_TITLES = {"versions": "Versions timeline", "freshness": "Fleet freshness histogram",
           "evaluation": "Evaluation against the threshold", "rules": "Catalog hidden by the rules"}


# ------------------------------------------------------------------------------------------------------ versions


def _versions(plt: Any, f: dict[str, Any]) -> Any:
    panels = [("before", f["before"]), ("after", f)] if f.get("before") else [("", f)]
    fig, axes = plt.subplots(1, len(panels), figsize=(_WIDTH * (1.3 if len(panels) > 1 else 1), _HEIGHT),
                             squeeze=False, sharey=False)
    for ax, (label, data) in zip(axes[0], panels, strict=True):
        _versions_panel(ax, data, label)
    axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    fig.suptitle(_mask(f"Versions of {f['tenant']}/{f['surface']}: data windows, publishes and the pointer (UTC)"))
    fig.autofmt_xdate()
    return fig


def _versions_panel(ax: Any, f: dict[str, Any], label: str) -> None:
    import matplotlib.dates as mdates

    bars = list(reversed(f["bars"]))  # oldest at the bottom
    for y, b in enumerate(bars):
        start, end = parse_time(b["start"]), parse_time(b["end"])
        ax.barh(y, mdates.date2num(end) - mdates.date2num(start), left=mdates.date2num(start), height=0.6,
                color="#1f77b4" if b["current"] else "#c7d4e2", edgecolor="#1f77b4" if b["current"] else "#8fa5bd")
    ax.set_yticks(range(len(bars)), [_mask(f"{b['kind']} {b['version'][:8]}" + (" (current)" if b["current"] else ""))
                                     for b in bars])
    for m in f["marks"]:
        at = mdates.date2num(parse_time(m["at"]))
        style = {"publish": ("#2a9d3c", ":"), "repoint": ("#d62728", "--")}[m["what"]]
        ax.axvline(at, color=style[0], linestyle=style[1], linewidth=1)
    limit = mdates.date2num(parse_time(f["limit"]))
    ax.axvline(limit, color="#8a5a00", linewidth=1.5)
    ax.axvline(mdates.date2num(parse_time(f["now"])), color="#444", linewidth=1)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M", tz=parse_time(f["now"]).tzinfo))
    ax.set_xlabel("time (UTC)")
    hours = f["max_age_seconds"] / 3600
    ax.set_title(_mask(f"{label + ': ' if label else ''}pointer written {f['updated_at'] or 'never'}"), fontsize=9)
    ax.plot([], [], color="#2a9d3c", linestyle=":", label="publish")
    ax.plot([], [], color="#d62728", linestyle="--", label="repoint")
    ax.plot([], [], color="#8a5a00", linewidth=1.5, label=f"limit: now - {hours:g} h")
    ax.plot([], [], color="#444", label="now")


# ------------------------------------------------------------------------------------------------------ freshness


def _freshness(plt: Any, f: dict[str, Any]) -> Any:
    fig, ax = plt.subplots(figsize=(_WIDTH, _HEIGHT))
    edges = f["edges"]
    widths = [b - a for a, b in zip(edges, edges[1:], strict=False)]
    colours = ["#d62728" if left >= f["limit_hours"] else "#1f77b4" for left in edges[:-1]]
    ax.bar(edges[:-1], f["counts"], width=widths, align="edge", color=colours, edgecolor="white")
    ax.axvline(f["limit_hours"], color="#8a5a00", linewidth=1.5, label=f"limit {f['limit_hours']:g} h")
    ax.set_xlabel("manifest age (hours)")
    ax.set_ylabel("surfaces")
    ax.legend(loc="upper right", frameon=False)
    stale = f["stale"]
    named = ", ".join(stale[:8]) + (f" and {f['stale_count'] - 8} more" if f["stale_count"] > 8 else "")
    title = (f"Fleet freshness: {f['surfaces']} surface(s) with an age, {f['stale_count']} stale"
             + (f", {f['unaged']} without an age" if f["unaged"] else ""))
    ax.set_title(_mask(title), fontsize=10)
    if stale:
        ax.text(0.99, 0.75, _mask(f"stale: {named}"), transform=ax.transAxes, ha="right", va="top", fontsize=8,
                color="#a4161a", wrap=True)
    return fig


# ------------------------------------------------------------------------------------------------------ evaluation


def _evaluation(plt: Any, f: dict[str, Any]) -> Any:
    fig, (left, right) = plt.subplots(1, 2, figsize=(_WIDTH, _HEIGHT))
    rows = f["variants"]
    for x, r in enumerate(rows):
        value = r["value"] or 0.0
        left.errorbar(x, value, yerr=[[value - r["low"]], [r["high"] - value]], fmt="o", capsize=4,
                      color="#1f77b4" if r["variant"] != f["control"] else "#444")
    left.set_xticks(range(len(rows)), [_mask(r["variant"]) for r in rows])
    left.set_xlim(-0.6, len(rows) - 0.4)
    if f["must_stay_above"] is not None:
        left.axhline(f["must_stay_above"], color="#d62728", linestyle="--", linewidth=1,
                     label=f"control {f['threshold']:+g} (threshold)")
        left.legend(loc="lower right", fontsize=7, frameon=False)
    left.set_ylabel(f"{f['metric']} (per exposure)")
    left.set_title("primary metric, 95 % interval", fontsize=9)
    split = f["srm"]
    xs = range(len(split))
    right.bar([x - 0.2 for x in xs], [s["observed"] for s in split], width=0.4, label="observed", color="#1f77b4")
    right.bar([x + 0.2 for x in xs], [s["expected"] or 0 for s in split], width=0.4, label="expected",
              color="#c7d4e2")
    right.set_xticks(list(xs), [_mask(s["variant"]) for s in split])
    right.set_ylabel("assignments")
    p = f["srm_p_value"]
    right.set_title("SRM split" + (f": p = {p:.2g}" if isinstance(p, (int, float)) else ": no assignments"),
                    fontsize=9, color="#a4161a" if f["srm_detected"] else "#222")
    right.legend(loc="lower right", fontsize=7, frameon=False)
    fig.suptitle("Evaluation: each variant against the threshold, and the split it was assigned")
    return fig


# ------------------------------------------------------------------------------------------------------ rules


def _rules(plt: Any, f: dict[str, Any]) -> Any:
    fig, (left, right) = plt.subplots(1, 2, figsize=(_WIDTH, _HEIGHT), gridspec_kw={"width_ratios": [3, 2]})
    rules = list(reversed(f["rules"]))
    left.barh(range(len(rules)), [100 * r["share"] for r in rules],
              color=["#d62728" if r["counted"] else "#bbbbbb" for r in rules])
    left.set_yticks(range(len(rules)), [_mask(f"{r['rule']} ({r['target']})" + ("" if r["counted"] else ", uncounted"))
                                        for r in rules])
    left.set_xlim(0, 100)
    left.set_xlabel("share of the catalog hidden (%)")
    left.set_title(f"active block rules: {100 * f['hidden_share']:.0f} % of {f['catalog']} items hidden", fontsize=9)
    names = ["catalog", "servable", "served", "served\nfrom catalog"]
    values = [f["catalog"], f["servable"], f["served"], f["served_published"]]
    right.bar(range(4), values, color=["#c7d4e2", "#1f77b4", "#2a9d3c", "#2a9d3c"])
    right.set_xticks(range(4), names)
    right.set_ylabel("items")
    right.set_title("served against published", fontsize=9)
    fig.suptitle(_mask(f"Rules of surface {f['surface']}: what they hide, what clients get"))
    return fig
