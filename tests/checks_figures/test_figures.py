"""The runbooks' pictures: their figure data against oracles written apart from the code (generated cases), and
the drawing: labelled with units and UTC, free of secrets, the same bytes for the same data."""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from recsys_checks.judge import figures
from recsys_checks.runbooks import pictures

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _z(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@st.composite
def version_records(draw):
    """Records of one surface: distinct versions, each a one-day (or longer) window and a build time after it."""
    n = draw(st.integers(min_value=0, max_value=45))
    out = []
    for i in range(n):
        start = NOW - DAY * draw(st.integers(min_value=1, max_value=60)) + timedelta(hours=draw(st.integers(0, 23)))
        length = DAY * draw(st.integers(min_value=1, max_value=3))
        built = start + length + timedelta(minutes=draw(st.integers(0, 300)), microseconds=draw(st.integers(0, 999)))
        staging = draw(st.booleans()) and draw(st.booleans())
        out.append({"kind": draw(st.sampled_from(["popularity", "cooc"])), "version": hashlib.sha256(str(i).encode()).hexdigest(),
                    "uri": f"file:///store/{i}.json", "window_start": _z(start), "window_end": _z(start + length),
                    "built_at": "0001-01-01T00:00:00Z" if staging else built.isoformat().replace("+00:00", "Z")})
    return out


@given(version_records(), st.data())
@settings(max_examples=60, deadline=None)
def test_each_drawn_window_is_its_records_window(records, data):
    """Every bar is the window its record says, marked current exactly when the manifest names its blob; the bars
    are the newest windows, at most MAX_BARS, and the rest are counted."""
    current = {}
    if records:
        chosen = data.draw(st.sampled_from(records))
        current = {chosen["kind"]: chosen["uri"]}
    fig = figures.versions_figure(records, tenant="demo", surface="home", current=current,
                                  updated_at=_z(NOW - DAY), max_age=timedelta(hours=26), now=NOW)
    by_version = {r["version"][:12]: r for r in records}
    assert len(fig["bars"]) == min(len(records), figures.MAX_BARS)
    assert fig["versions_not_shown"] == len(records) - len(fig["bars"])
    for bar in fig["bars"]:
        rec = by_version[bar["version"]]
        assert (bar["start"], bar["end"]) == (rec["window_start"], rec["window_end"])
        assert bar["current"] == (rec["uri"] in current.values())
    shown_ends = sorted((b["end"] for b in fig["bars"]), reverse=True)
    all_ends = sorted((r["window_end"] for r in records), reverse=True)
    assert shown_ends == all_ends[: len(shown_ends)]
    publishes = [m for m in fig["marks"] if m["version"] != "manifest"]
    assert len(publishes) == sum(1 for b in fig["bars"] if not by_version[b["version"]]["built_at"].startswith("0001"))
    assert fig["limit"] == _z(NOW - timedelta(hours=26))


def test_a_manifest_written_long_after_its_version_was_built_is_a_repoint():
    """The same manifest write is a publish minutes after the build, a repoint a day after it."""
    rec = {"kind": "popularity", "version": "a" * 64, "uri": "u", "window_start": _z(NOW - 2 * DAY),
           "window_end": _z(NOW - DAY), "built_at": _z(NOW - DAY + timedelta(hours=1))}
    kwargs = {"tenant": "demo", "surface": "home", "current": {"popularity": "u"}, "max_age": DAY, "now": NOW}
    fresh = figures.versions_figure([rec], updated_at=_z(NOW - DAY + timedelta(hours=1, minutes=2)), **kwargs)
    late = figures.versions_figure([rec], updated_at=_z(NOW - timedelta(hours=1)), **kwargs)
    assert [m["what"] for m in fresh["marks"] if m["version"] == "manifest"] == ["publish"]
    assert [m["what"] for m in late["marks"] if m["version"] == "manifest"] == ["repoint"]


ages = st.one_of(st.none(), st.integers(min_value=0, max_value=30 * 86400),
                 st.floats(min_value=0, max_value=30 * 86400, allow_nan=False))


@given(st.lists(ages, max_size=80), st.integers(min_value=3600, max_value=7 * 86400), st.integers(1, 30))
@settings(max_examples=80, deadline=None)
def test_the_histogram_counts_every_freshness_row_once(row_ages, max_age, bins):
    """Counts add up to the rows with an age, each in the bin whose edges hold it (oracle: a linear search over the
    edges); rows without an age are counted apart, never as fresh; the stale names are the rows past the limit."""
    rows = [{"tenant": "t", "surface": f"s{i}", "age_seconds": a} for i, a in enumerate(row_ages)]
    fig = figures.freshness_figure(rows, max_age_seconds=max_age, bins=bins)
    hours = [a / 3600 for a in row_ages if a is not None]
    assert sum(fig["counts"]) == len(hours) == fig["surfaces"]
    assert fig["unaged"] == sum(a is None for a in row_ages)
    assert fig["edges"][-1] >= max(hours + [max_age / 3600]) - 1e-6
    # An age on an inner edge (to the float's last bits) may round either way: such cases are not the kind tested.
    assume(not any(abs(h - e) < 1e-6 for h in hours for e in fig["edges"][1:-1]))
    expected = [0] * bins
    for h in hours:
        index = max(i for i in range(bins) if fig["edges"][i] <= h + 1e-9)
        expected[index] += 1
    assert fig["counts"] == expected
    stale = {f"t/s{i}" for i, a in enumerate(row_ages) if a is not None and a / 3600 > max_age / 3600}
    assert fig["stale_count"] == len(stale) and set(fig["stale"]) <= stale
    assert len(fig["stale"]) == min(len(stale), figures.MAX_BARS)


@given(st.integers(min_value=1, max_value=10**7), st.data())
@settings(max_examples=100, deadline=None)
def test_the_confidence_interval_is_the_wilson_interval(trials, data):
    """Oracle: the Wilson bounds are the roots of (p̂ - p)² = z² p (1 - p) / n, and they hold p̂."""
    hits = data.draw(st.integers(min_value=0, max_value=trials))
    low, high = figures.wilson_interval(hits, trials)
    p_hat, z2 = hits / trials, figures.Z95 ** 2
    for bound in (low, high):
        assert math.isclose((p_hat - bound) ** 2, z2 * bound * (1 - bound) / trials, rel_tol=1e-6, abs_tol=1e-12)
    assert 0 <= low <= p_hat <= high <= 1


def test_the_evaluation_figure_draws_the_threshold_from_the_control_and_the_srm_split():
    """The line the candidate must stay above is control + threshold; the split is observed against expected."""
    variants = [{"variant": "A", "exposures": 1000, "clicks": 100, "ctr": 0.1},
                {"variant": "B", "exposures": 1200, "clicks": 96, "ctr": 0.08}]
    srm = {"global": {"observed": {"A": 1000, "B": 1200}, "expected_counts": {"A": 1100.0, "B": 1100.0},
                      "p_value": 1.9e-5, "detected": True}}
    fig = figures.evaluation_figure(variants, srm, metric="CTR", control="A", threshold=-0.01)
    assert fig["must_stay_above"] == pytest.approx(0.09)
    assert [(s["variant"], s["observed"], s["expected"]) for s in fig["srm"]] == [("A", 1000, 1100.0),
                                                                                   ("B", 1200, 1100.0)]
    assert fig["srm_detected"] is True and fig["variants"][1]["low"] < 0.08 < fig["variants"][1]["high"]


item_ids = st.sampled_from([f"sku-{i}" for i in range(12)])


@given(st.lists(st.lists(item_ids, max_size=8), max_size=6), st.sets(item_ids), st.lists(item_ids, max_size=10))
@settings(max_examples=80, deadline=None)
def test_the_rules_figure_counts_what_each_rule_hides_of_the_catalog(blocks, catalog, served):
    """Per rule, the catalog items it names; together, the union; served from the catalog, the served ids in it."""
    rules = [{"id": f"r{i}", "action": "block", "target_type": "item", "item_ids": ids} for i, ids in enumerate(blocks)]
    rules.append({"id": "off", "action": "block", "item_ids": sorted(catalog), "enabled": False})
    fig = figures.rules_figure(rules, [{"item_id": i} for i in catalog], [{"item_id": i} for i in served],
                               surface="home", now=NOW)
    union = set().union(*(set(ids) & catalog for ids in blocks)) if blocks else set()
    assert fig["catalog"] == len(catalog) and fig["hidden"] == len(union)
    assert fig["servable"] == len(catalog) - len(union)
    assert {r["rule"]: r["hidden"] for r in fig["rules"]} == {f"r{i}": len(set(ids) & catalog)
                                                             for i, ids in enumerate(blocks)}
    assert fig["served"] == len(served) and fig["served_published"] == sum(i in catalog for i in served)


# ----------------------------------------------------------------------------------------------- drawing

def _examples() -> list[dict]:
    rec = {"kind": "popularity", "version": "b" * 64, "uri": "u", "window_start": _z(NOW - 2 * DAY),
           "window_end": _z(NOW - DAY), "built_at": _z(NOW - DAY + timedelta(hours=1))}
    after = figures.versions_figure([rec], tenant="demo", surface="home", current={"popularity": "u"},
                                    updated_at=_z(NOW - timedelta(hours=2)), max_age=timedelta(hours=26), now=NOW)
    return [
        figures.with_before(after, after),
        figures.freshness_figure([{"tenant": "demo", "surface": "home", "age_seconds": 72 * 3600}],
                                 max_age_seconds=26 * 3600),
        figures.evaluation_figure([{"variant": "A", "exposures": 10, "clicks": 1, "ctr": 0.1}], None, metric="ctr",
                                  control="A", threshold=0.0),
        figures.rules_figure([{"id": "all", "action": "block", "item_ids": ["x"]}], [{"item_id": "x"}], [],
                             surface="home", now=NOW),
    ]


@pytest.mark.parametrize("figure", _examples(), ids=lambda f: f["figure"])
def test_each_picture_is_labelled_with_its_units_and_draws_the_same_bytes_twice(figure):
    """Axis labels name their units (and UTC for times); the SVG is deterministic, so a page can be drift-tested."""
    first, second = pictures.svg(figure), pictures.svg(figure)
    assert first == second and first.lstrip().startswith("<?xml")
    unit = {"versions": "time (UTC)", "freshness": "manifest age (hours)", "evaluation": "(per exposure)",
            "rules": "share of the catalog hidden (%)"}[figure["figure"]]
    assert unit in first


@pytest.mark.parametrize("figure", _examples(), ids=lambda f: f["figure"])
def test_each_picture_names_its_kind_in_an_id_and_a_title(figure):
    """Wherever a picture lands (a notebook output, the receiver's HTML), its SVG says which picture it is: one
    group ``recsys-picture-<kind>`` and a ``<title>`` whose words say what is drawn and whose."""
    text = pictures.svg(figure)
    ids = re.findall(r'id="recsys-picture-([a-z]+)"', text)
    assert ids == [figure["figure"]]
    shown = re.search(r"<title>([^<]+)</title>", text).group(1)
    words = {"versions": "Versions timeline: demo/home", "freshness": "Fleet freshness histogram: 1 surface(s), 1 stale",
             "evaluation": "Evaluation against the threshold: ctr", "rules": "Catalog hidden by the rules: surface home"}
    assert shown.startswith(words[figure["figure"]]), shown


def test_a_secret_in_a_label_is_masked_in_the_picture(monkeypatch):
    """A credential of the environment that reached a label (here a rule's id) is masked before drawing."""
    secret = "s3cr3t-api-key-value-1234"
    monkeypatch.setenv("RECSYS_API_KEY", secret)
    fig = figures.rules_figure([{"id": f"rule {secret}", "action": "block", "item_ids": ["x"]}], [{"item_id": "x"}],
                               [], surface="home", now=NOW)
    text = pictures.svg(fig)
    assert secret not in text and "rule " in text


def test_an_unknown_picture_is_refused_with_the_kinds():
    """A figure of no known kind is a clear error naming the kinds, not an empty picture."""
    with pytest.raises(ValueError, match="versions, freshness, evaluation, rules"):
        pictures.svg({"figure": "pie"})


def test_a_picture_is_found_in_a_notebook_by_its_id_under_its_step_and_an_unnamed_image_is_not(tmp_path):
    """The game day's and the receiver's check finds a drawn picture by what it says it is, under the step's cell;
    an SVG without a picture's id (any other image) is not counted."""
    import nbformat
    from picturekit import pictures_in_html, pictures_in_notebook

    drawn = pictures.svg(_examples()[1])
    other = '<svg xmlns="http://www.w3.org/2000/svg"><title>a chart</title><g id="figure_1"></g></svg>'
    nb = nbformat.v4.new_notebook()
    for tag, svg in (("step:publishing", drawn), ("step:other", other)):
        cell = nbformat.v4.new_code_cell("run.step(...)", metadata={"tags": [tag]})
        cell.outputs = [nbformat.v4.new_output("display_data", data={"image/svg+xml": svg})]
        nb.cells.append(cell)
    path = tmp_path / "run.ipynb"
    nbformat.write(nb, path)
    assert pictures_in_notebook(path) == [("publishing", "freshness", "Fleet freshness histogram: 1 surface(s), 1 stale")]
    assert [k for k, _ in pictures_in_html(other)] == []
