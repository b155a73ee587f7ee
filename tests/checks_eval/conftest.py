"""Fixtures of the evaluation checks: JSONL logs written into a temporary folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def jsonl(tmp_path: Path) -> Callable[..., Path]:
    """Write records (dicts, or raw strings for broken lines) as a JSONL file under tmp; returns its path."""
    def write(name: str, records: list) -> Path:
        path = tmp_path / name
        path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
        return path

    return write
