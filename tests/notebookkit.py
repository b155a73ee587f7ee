"""Editing a copied notebook in tests: replace the source of the cells carrying a tag."""

from __future__ import annotations

from pathlib import Path

import nbformat


def replace_cell(root: Path, runbook_id: str, tag: str, source: str) -> None:
    """In ``root/notebooks/<runbook_id>.ipynb``, give every cell tagged ``tag`` the source ``source``."""
    path = root / "notebooks" / f"{runbook_id}.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if tag in (cell.metadata.get("tags") or []):
            cell.source = source
    nbformat.write(nb, path)
