"""Finding the runbooks' pictures where they land, by what each says it is (its group ``recsys-picture-<kind>`` and
its ``<title>``): in an executed notebook's outputs, and in the receiver's HTML (inline SVG, or an ``<img>`` of a
``data:image/svg+xml`` URI). Written apart from the drawing code: it reads the SVG text, not the module's names."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

_KIND = re.compile(r'<g id="recsys-picture-([a-z]+)"')
_TITLE = re.compile(r"<title>([^<]*)</title>")
_DATA_URI = re.compile(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"')


def pictures_in_svg(svg: str) -> list[tuple[str, str]]:
    """(kind, title) of each picture in an SVG text or a page holding SVG: each ``<svg`` element's first group id
    and title."""
    found = []
    for part in re.split(r"(?=<svg[\s>])", svg)[1:]:
        kind, title = _KIND.search(part), _TITLE.search(part)
        if kind:
            found.append((kind.group(1), title.group(1) if title else ""))
    return found


def pictures_in_notebook(path: Path) -> list[tuple[str | None, str, str]]:
    """(step id of the cell, kind, title) of every SVG picture in a code cell's outputs, in order."""
    found = []
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        tags = (cell.get("metadata") or {}).get("tags") or []
        step = next((t.removeprefix("step:") for t in tags if t.startswith("step:")), None)
        for output in cell.get("outputs") or []:
            svg = (output.get("data") or {}).get("image/svg+xml")
            if svg:
                found += [(step, kind, title) for kind, title in
                          pictures_in_svg("".join(svg) if isinstance(svg, list) else svg)]
    return found


def pictures_in_html(page: str) -> list[tuple[str, str]]:
    """(kind, title) of every picture on an HTML page: inline SVG, then images of SVG data URIs."""
    found = pictures_in_svg(page)
    for encoded in _DATA_URI.findall(page):
        found += pictures_in_svg(base64.b64decode(encoded).decode("utf-8"))
    return found
