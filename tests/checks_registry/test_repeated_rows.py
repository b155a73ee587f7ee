"""Found by the generated incidents: a cooc build whose every row is the same item kept its row count, so the
item-drop invariant saw no loss and rollback-manifest called the surface healthy. An artifact's item count is its
distinct rows; the drop from the version before it is then found."""

from __future__ import annotations

import json

import pytest

from recsys_checks.judge.invariants import item_drop_finding
from recsys_checks.judge.registry.artifact import distinct_rows, inspect_artifact

ROWS = [{"item_id": f"sku-{n:04d}", "items": [{"item_id": "sku-0001", "count": 2}]} for n in range(1, 41)]


def _cooc(rows: list[dict]) -> bytes:
    return json.dumps({"v": 1, "artifact_type": "cooc", "tenant": "demo", "surface": "home",
                       "window": {"start": "2026-12-06T00:00:00Z", "end": "2026-12-07T00:00:00Z"},
                       "neighbors": rows, "build": {"built_at": "", "version": ""}}).encode()


@pytest.mark.parametrize(("rows", "count"), [(ROWS, 40), ([ROWS[0]] * 40, 1), (ROWS + ROWS[:5], 40), ([], 0),
                                             ([{"x": 1}, {"x": 1}], 2)])
def test_an_artifact_counts_its_distinct_rows(rows: list[dict], count: int) -> None:
    assert distinct_rows(rows) == count
    _, _, info = inspect_artifact(_cooc(rows), tenant="demo", surface="home", kind="cooc", allow_empty=True)
    assert info["items"] == count


def test_a_build_repeating_one_row_is_a_drop_and_a_whole_build_is_not() -> None:
    def items(rows: list[dict]) -> int:
        return inspect_artifact(_cooc(rows), tenant="demo", surface="home", kind="cooc")[2]["items"]

    assert item_drop_finding("cooc", items([ROWS[0]] * 40), items(ROWS)) is not None
    assert item_drop_finding("cooc", items(ROWS), items(ROWS)) is None
