"""--json prints exactly one object: a result as itself, several results in one envelope."""

from __future__ import annotations

import io
import json

import pytest

from recsys_checks.cli import commands
from recsys_checks.cli.output import emit
from recsys_checks.core import results
from recsys_checks.core.results import CheckResult


def _printed(results: list[CheckResult], **kwargs: int) -> dict:
    out = io.StringIO()
    emit(results, as_json=True, stream=out, **kwargs)
    return json.loads(out.getvalue())


def test_one_result_is_printed_as_its_own_object():
    """A single check prints its result object, as a notebook's CheckResult.to_dict() has it."""
    result = CheckResult("manifest.status", "warn", "held", {"condition": "held"}, "etag-1", "file:///m.json")
    assert _printed([result]) == result.to_dict()


def test_several_results_are_printed_in_one_envelope_with_the_worst_status_and_the_exit_code():
    """Several results: {"status": worst, "exit_code": code, "results": [each result, in order]}."""
    first = CheckResult("recs.probe", "ok", "10 items", {"cause": None})
    second = CheckResult("recs.served_vs_published", "fail", "cache stale", {"verdict": "cache_stale"})
    doc = _printed([first, second], exit_code=1)
    assert doc == {"status": "fail", "exit_code": 1, "results": [first.to_dict(), second.to_dict()]}


def test_the_envelope_takes_the_commands_exit_code_when_none_is_given():
    """Without an exit code, the envelope carries what the exit-code rule gives for the results."""
    unreachable = CheckResult("recs.probe", "fail", "unreachable", {"exit_code": 2})
    doc = _printed([unreachable, CheckResult("recs.served_vs_published", "warn", "unexplained")])
    assert doc["exit_code"] == 2 == results.exit_code([unreachable]) and doc["status"] == "fail"


def test_recs_probe_prints_one_envelope_with_its_exit_code(closed_port: int, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch):
    """`recs probe --json` has two results: one object whose exit_code is the process's and whose results are the
    probe and served-vs-published, in that order."""
    monkeypatch.setenv("RECSYS_BASE_URL", f"http://127.0.0.1:{closed_port}")
    code = commands.main(["recs", "probe", "--tenant", "demo", "--surface", "home", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 2 and doc["exit_code"] == code and doc["status"] == "fail"
    assert [r["check"] for r in doc["results"]] == ["recs.probe", "recs.served_vs_published"]
