"""The SVG writer the pictures are drawn with: ticks on round numbers and times, text that cannot become markup,
labels cut to fit, and every picture a well-formed SVG document (parsed here), also with nothing to draw."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from recsys_checks.judge import figures
from recsys_checks.runbooks import pictures
from recsys_checks.runbooks.svgchart import Canvas, fit, nice_ticks, time_ticks

SVG = "{http://www.w3.org/2000/svg}"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


def _is_one_two_five(step: float) -> bool:
    """Whether ``step`` is 1, 2 or 5 times a power of ten (read from its decimal digits, not from the writer)."""
    digits = Decimal(repr(step)).normalize().as_tuple().digits
    return len(digits) == 1 and digits[0] in (1, 2, 5)


@settings(max_examples=300, deadline=None)
@given(low=finite, span=st.floats(min_value=1e-6, max_value=1e9), most=st.integers(3, 10))
def test_ticks_are_round_evenly_spaced_and_within_the_range(low, span, most):
    assume(span >= abs(low) * 1e-6)  # a chart's range, not a float's last digits
    high = low + span
    ticks = nice_ticks(low, high, most)
    assert 1 <= len(ticks) <= most
    tolerance = span * 1e-9 + 1e-9
    assert all(low - tolerance <= t <= high + tolerance for t in ticks), (low, high, ticks)
    if len(ticks) >= 2:
        steps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
        assert all(math.isclose(s, steps[0], rel_tol=1e-3) for s in steps)
        assert _is_one_two_five(float(f"{steps[0]:.3g}")), steps[0]


def test_ticks_of_a_point_and_of_nothing():
    assert nice_ticks(3.0, 3.0) == [3.0]
    assert nice_ticks(0.0, float("inf")) == []
    assert nice_ticks(10.0, 0.0) == nice_ticks(0.0, 10.0) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]


@settings(max_examples=200, deadline=None)
@given(start=st.integers(0, 10 ** 9), span=st.integers(60, 3 * 365 * 86400), most=st.integers(2, 8))
def test_time_ticks_are_round_utc_times_within_the_range(start, span, most):
    low = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=start)
    high = low + timedelta(seconds=span)
    ticks = time_ticks(low, high, most)
    assert len(ticks) <= most and all(low <= t <= high for t in ticks)
    assert all(t.tzinfo is UTC and t.second == 0 and t.minute % 5 == 0 for t in ticks)
    assert len({b - a for a, b in zip(ticks, ticks[1:], strict=False)}) <= 1


@pytest.mark.parametrize(("text", "width", "expected"), [
    ("short", 200, "short"),
    ("a rule with a very long name indeed", 60, "a rule with…"),  # 60 px hold 12 characters of 8 px
])
def test_a_label_that_does_not_fit_is_cut_with_an_ellipsis(text, width, expected):
    assert fit(text, width, size=8) == expected


def test_text_and_titles_are_escaped_and_stay_text():
    canvas = Canvas(100, 50)
    canvas.text(1, 1, '<script>alert("x")</script> & co')
    drawn = canvas.render("recsys-picture-rules", 'a <b>title</b> & "quotes"')
    assert "<script>" not in drawn and "<b>" not in drawn
    root = ET.fromstring(drawn.split("?>", 1)[1])
    assert root.find(f"{SVG}title").text == 'a <b>title</b> & "quotes"'
    assert [t.text for t in root.iter(f"{SVG}text")] == ['<script>alert("x")</script> & co']


def _figures(bars: int) -> list[dict]:
    records = [{"kind": "popularity", "version": f"{n:064x}", "uri": f"u{n}",
                "window_start": (NOW - timedelta(days=n + 1)).isoformat(), "window_end": (NOW - timedelta(days=n)).isoformat(),
                "built_at": (NOW - timedelta(days=n) + timedelta(hours=1)).isoformat()} for n in range(bars)]
    versions = figures.versions_figure(records, tenant="demo", surface="home", current={"popularity": "u0"},
                                       updated_at=(NOW - timedelta(hours=3)).isoformat(), max_age=timedelta(hours=26),
                                       now=NOW)
    rows = [{"tenant": "t", "surface": f"s{n}", "age_seconds": 3600 * 5 * n} for n in range(bars)]
    variants = [{"variant": v, "exposures": 100 * bars, "clicks": 7 * bars, "ctr": 0.07} for v in "AB"[: bars and 2]]
    srm = {"global": {"observed": {"A": 10 * bars}, "expected_counts": {"A": 10.0 * bars}, "p_value": None}} \
        if bars else None
    rules = [{"id": f"r{n}", "action": "block", "item_ids": [f"i{n}"]} for n in range(bars)]
    return [versions, figures.with_before(versions, versions),
            figures.freshness_figure(rows, max_age_seconds=26 * 3600),
            figures.evaluation_figure(variants, srm, metric="ctr", control="A", threshold=-0.01),
            figures.rules_figure(rules, [{"item_id": f"i{n}"} for n in range(bars)], [], surface="home", now=NOW)]


@pytest.mark.parametrize("bars", [0, 1, 40])
def test_every_picture_is_a_well_formed_svg_with_or_without_data(bars):
    for figure in _figures(bars):
        drawn = pictures.svg(figure)
        root = ET.fromstring(drawn.split("?>", 1)[1])
        assert root.tag == f"{SVG}svg" and root.find(f"{SVG}title").text == pictures.title(figure)
        group = root.find(f"{SVG}g")
        assert group.get("id") == f"recsys-picture-{figure['figure']}" and len(group) > 1
        numbers = [float(n) for n in re.findall(r'(?:x|y|width|height)\d?="(-?[\d.]+)"', drawn)]
        assert all(math.isfinite(n) for n in numbers)
