"""`recsys-checks eval quality|report` and `hold set|clear|status`: exit codes, readable output and --json."""

from __future__ import annotations

import json

import pytest

from recsys_checks.cli.commands import main
from recsys_stack.evalgen import EXPERIMENT_ID, generate


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("scenario, code", [("clean", 0), ("srm", 1), ("low-join", 1), ("impossible-lift", 1),
                                            ("schema-break", 1)])
def test_eval_quality_exits_0_only_when_the_data_can_be_trusted(tmp_path, capsys, scenario, code):
    """The generated datasets: clean ships (0); each broken one is not trusted (1)."""
    paths = generate(tmp_path, scenario, requests=400)
    got, out, _ = run(capsys, "eval", "quality", "--exposures", str(paths["exposure"]), "--outcomes",
                      str(paths["outcome"]), "--assignments", str(paths["assignment"]), "--experiment-id",
                      EXPERIMENT_ID)
    assert got == code, out
    assert ("trust_verdict: trusted" if code == 0 else "trust_verdict: not trusted") in out


def test_eval_quality_json_and_unreadable_input(tmp_path, capsys):
    """--json prints the result document; a missing file is exit 2 with one line on stderr."""
    paths = generate(tmp_path, "clean", requests=100)
    code, out, _ = run(capsys, "eval", "quality", "--exposures", str(paths["exposure"]), "--outcomes",
                       str(paths["outcome"]), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["check"] == "eval.quality" and doc["data"]["outcome_join_rate"] == 1.0
    code, _, err = run(capsys, "eval", "quality", "--exposures", str(tmp_path / "none.jsonl"), "--outcomes",
                       str(paths["outcome"]))
    assert code == 2 and err.count("\n") == 1 and "does not exist" in err
    with pytest.raises(SystemExit) as usage:
        main(["eval", "quality", "--exposures", "x", "--outcomes", "y", "--weights", "a=-1"])
    assert usage.value.code == 2 and "VARIANT=WEIGHT" in capsys.readouterr().err


def test_eval_report_exit_codes(tmp_path, capsys):
    """A trusted report exits 0, a low join 1, a file that is not JSON 2."""
    report = {"run_id": "r", "mode": "offline", "created_at": "2026-01-02T00:00:00Z", "version": "0.1.0",
              "summary": {}, "offline": {"metrics": [{"name": "ndcg@10", "value": 0.3}]},
              "data_quality": {"join_integrity": {"outcome_count": 10, "outcome_join_rate": 1.0,
                                                  "exposure_join_rate": 0.2}}}
    good = tmp_path / "good.json"
    good.write_text(json.dumps(report))
    assert run(capsys, "eval", "report", str(good))[0] == 0
    report["data_quality"]["join_integrity"]["outcome_join_rate"] = 0.5
    good.write_text(json.dumps(report))
    code, out, _ = run(capsys, "eval", "report", str(good))
    assert code == 1 and "outcome join rate 50.0%" in out
    bad = tmp_path / "bad.json"
    bad.write_text("<html>")
    assert run(capsys, "eval", "report", str(bad))[0] == 2


def test_hold_set_clear_status_on_the_command_line(tmp_path, capsys, monkeypatch):
    """Dry-run first; --execute sets it; status exits 1 while held and 0 after clear."""
    monkeypatch.setenv("RECSYS_ACTOR", "oncall")
    template = (tmp_path / "registry").as_uri() + "/current/{tenant}/{surface}/manifest.json"
    common = ["--tenant", "demo", "--surface", "home", "--manifest-template", template]
    code, out, _ = run(capsys, "hold", "set", *common, "--reason", "SRM in exp-1")
    assert code == 0 and "DRY-RUN" in out and not (tmp_path / "registry/current/demo/home/hold.json").exists()
    assert run(capsys, "hold", "status", *common)[0] == 0
    code, out, _ = run(capsys, "hold", "set", *common, "--reason", "SRM in exp-1", "--execute")
    assert code == 0 and "APPLIED" in out and "audit record" in out
    code, out, _ = run(capsys, "hold", "status", *common)
    assert code == 1 and "is held" in out and "SRM in exp-1" in out and "by oncall" in out
    code, out, _ = run(capsys, "hold", "clear", *common, "--reason", "fixed", "--execute")
    assert code == 0 and "APPLIED" in out
    assert run(capsys, "hold", "status", *common, "--json")[0] == 0
    marker = json.loads((tmp_path / "registry/current/demo/home/hold.json").read_text())
    assert marker["held"] is False and marker["previous"]["reason"] == "SRM in exp-1"
