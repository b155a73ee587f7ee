"""Rendering results for a person (tables, colour on a terminal, plain when piped) or a machine (JSON)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from recsys_checks.core import credentials, jsonio
from recsys_checks.core.render import (
    MAX_CELL,
    VIEWS,
    age_cell,
    cell_text,
    column_label,
    human_value,
    render_action,
    render_check,
    use_colour,
)
from recsys_checks.core.results import ActionResult, CheckResult, worst
from recsys_checks.core.results import exit_code as code_of


def json_document(results: list[CheckResult | ActionResult], exit_code: int) -> dict[str, Any]:
    """What ``--json`` prints: always one object.

    One result is printed as its own object (``check``, ``status``, ``summary``, ``data``... or an action's
    ``status``, ``summary``, ``plan``...). Several results are wrapped in an envelope: ``status`` (the most severe
    status of the checks among them), ``exit_code`` (the command's) and ``results`` (each result's object, in order).
    """
    if len(results) == 1:
        return results[0].to_dict()
    return {
        "status": worst([r.status for r in results if isinstance(r, CheckResult)]),
        "exit_code": exit_code,
        "results": [r.to_dict() for r in results],
    }


def emit(results: list[CheckResult | ActionResult], as_json: bool, stream: TextIO | None = None, *,
         exit_code: int | None = None, full_diff: bool = False) -> None:
    """Print ``results``; any credential of the environment that a peer echoed into them is masked.

    ``exit_code`` is the command's, for the ``--json`` envelope of several results (default: what
    :func:`recsys_checks.core.results.exit_code` gives for ``results``). ``full_diff``: a document plan lists every
    changed field, not only its readable change (``--json`` always has both).
    """
    stream = stream or sys.stdout
    if as_json:
        if exit_code is None:

            exit_code = code_of(results)
        text = jsonio.dumps(json_document(results, exit_code), indent=2, default=str) + "\n"
    else:
        colour = use_colour(stream)
        blocks = [render_action(r, colour, full_diff) if isinstance(r, ActionResult) else render_check(r, colour)
                  for r in results]
        text = "\n\n".join(blocks) + "\n"
    stream.write(credentials.mask(text))


_SAMPLE_ROWS = 200
_BATCH_ROWS = 500


class _Batched:
    """Text for ``stream`` gathered and written :data:`_BATCH_ROWS` pieces at a time; the rest on leaving the block
    (an error included, so that the rows before it are shown). Each batch is masked as :func:`emit` masks (a
    credential holds no line break, and a batch ends with a whole row)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.pending: list[str] = []

    def add(self, text: str) -> None:
        self.pending.append(text)
        if len(self.pending) >= _BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.stream.write(credentials.mask("".join(self.pending)))
            self.pending.clear()

    def __enter__(self) -> _Batched:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()


def _json_lines(value: Any, indent: str) -> str:
    """``value`` as indented JSON whose lines after the first start with ``indent`` (to nest it in a document)."""
    return json.dumps(value, indent=2, default=str).replace("\n", "\n" + indent)


def _stream_cell(key: str, value: Any) -> str:
    """:func:`cell_text` of :func:`human_value` for the plain values of streamed rows, cheaply (a fleet has many)."""
    if value is None:
        return "-"
    if key.endswith("age_seconds"):
        return age_cell(value)
    if type(value) is str and len(value) != 64:
        return value if len(value) <= MAX_CELL else value[: MAX_CELL - 1] + "…"
    return cell_text(human_value(key, value))


def emit_stream(
    rows: Iterable[dict[str, Any]],
    finish: Callable[[], CheckResult],
    fmt: str = "text",
    stream: TextIO | None = None,
) -> CheckResult:
    """Write a check whose rows arrive one by one, then its result; hold no more than a sample of rows.

    ``fmt``: ``text`` (a table, its column widths taken from the first rows, then the result as
    :func:`render_check` shows it), ``json`` (one document, as :func:`emit` writes it, with the rows under
    ``data.rows``) or ``jsonl`` (one line per row, then one line with the result, the only line with a ``check``
    key). Nothing is written before the first row arrives, so an error raised by the listing leaves no output.
    Rows are written :data:`_BATCH_ROWS` at a time (one write each, not one per row), and what was formatted is
    written before an error raised by a later row goes up.
    """
    stream = stream or sys.stdout
    count = 0
    out = _Batched(stream)
    if fmt == "jsonl":
        with out:
            for row in rows:
                out.add(json.dumps(row, default=str) + "\n")
        result = finish()
        stream.write(credentials.mask(json.dumps(result.to_dict(), default=str) + "\n"))
        return result
    if fmt == "json":
        with out:
            for row in rows:
                out.add(('{\n  "data": {\n    "rows": [\n      ' if count == 0 else ",\n      ")
                        + _json_lines(row, "      "))
                count += 1
        result = finish()
        doc = result.to_dict()
        data = dict(doc.pop("data"))
        data.pop("rows", None)
        tail = ['{\n  "data": {\n    "rows": [],' if count == 0 else "\n    ],",
                ",".join(f"\n    {json.dumps(k)}: {_json_lines(v, '    ')}" for k, v in data.items()), "\n  },",
                ",".join(f"\n  {json.dumps(k)}: {_json_lines(v, '  ')}" for k, v in doc.items()), "\n}\n"]
        stream.write(credentials.mask("".join(tail)))
        return result
    columns = (VIEWS.get("freshness") or {}).get("tables", {}).get("rows") or []
    sample: list[list[str]] = []
    widths: list[int] = []

    layout: list[str] = []

    def line(cells: list[str]) -> str:
        return layout[0].format(*cells).rstrip() + "\n"

    def start() -> None:
        widths[:] = [max(len(column_label(c)), *(len(r[i]) for r in sample)) for i, c in enumerate(columns)]
        layout[:] = ["  " + "  ".join(f"{{:<{w}}}" for w in widths)]
        out.add("  rows:\n")
        out.add(line([column_label(c).upper() for c in columns]))
        out.add(line(["-" * w for w in widths]))
        for cells in sample:
            out.add(line(cells))

    with out:
        for row in rows:
            cells = [_stream_cell(c, row.get(c)) for c in columns]
            count += 1
            if widths:
                out.add(line(cells))
                continue
            sample.append(cells)
            if len(sample) >= _SAMPLE_ROWS:
                start()
        if sample and not widths:
            start()
    result = finish()
    stream.write(credentials.mask(render_check(result, use_colour(stream)) + "\n"))
    return result
