"""The receiver's picture: a staleness alert's triage carries the fleet's ages as a histogram, drawn on the incident
page as an image of a data: URI, whose counts are the scan's rows."""

from __future__ import annotations

import base64
import re

from recsys_checks.alerts.checks import FleetScan
from recsys_checks.alerts.render import picture_parts
from recsys_checks.alerts.triage import Observed, judge


def _scan(*ages):
    return FleetScan(rows=[{"tenant": "demo", "surface": f"s{i}", "condition": "stale" if age > 26 * 3600 else
                            "healthy", "status": "fail" if age > 26 * 3600 else "ok", "summary": "",
                            "age_seconds": age} for i, age in enumerate(ages)])


def test_a_staleness_triage_draws_the_fleets_ages_with_the_stale_surfaces_named():
    """The histogram counts every scanned surface once; the stale ones are named on the page's image."""
    out = judge("staleness", Observed(_scan(3600, 7200, 72 * 3600, 100 * 3600), {}, [], 0.1), kind_label=None,
                max_probes=10)
    figure = out.as_dict()["figure"]
    assert sum(figure["counts"]) == 4 and figure["stale"] == ["demo/s3", "demo/s2"]
    html = "".join(picture_parts(out.as_dict()))
    src = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert src and "demo/s3" in base64.b64decode(src.group(1)).decode() and "2 stale" in html


def test_other_triages_and_an_empty_scan_draw_nothing():
    """A serving alert's triage has no fleet picture; nor does a scan that read nothing."""
    serving = judge("serving", Observed(_scan(3600), {}, [], 0.1), kind_label=None, max_probes=10)
    empty = judge("staleness", Observed(FleetScan(unread="no answer"), {}, [], 0.1), kind_label=None, max_probes=10)
    assert serving.figure is None and empty.figure is None
    assert picture_parts(serving.as_dict()) == [] and picture_parts({}) == []
