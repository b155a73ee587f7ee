"""Sources of the timeline against a running stack: manifest writes that no record explains, and our audit records
in a local folder when a config or rules revert has no registry to record in.

A re-run of an old day (the stack's `stale-data` fault) repoints the manifest at already-recorded versions and
writes no version record: only the manifest's updated_at shows it, and the timeline does. A config revert made with
the admin API alone (RECSYS_BASE_URL and RECSYS_API_KEY, nothing else) records in RECSYS_AUDIT_DIR, else
the per-user state folder (never a folder of the working directory), and never in the store.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from checks_integration.checkskit import CLI_TIMEOUT, Checks, Run, assert_no_secret

pytestmark = pytest.mark.stack


def manifest_rows(checks: Checks, surface: str = "home") -> tuple[list[dict], list[dict]]:
    events = checks("timeline", "--tenant", "demo", "--surface", surface, "--since", "30d", expect=0).json["data"]["events"]
    return [e for e in events if e["kind"] == "manifest"], events


def test_a_rerun_of_an_old_day_shows_as_a_repoint_and_a_rollback_of_ours_once(checks: Checks) -> None:
    """Quiet on the seeded publish history; one repoint row after stale-data naming each kind's oldest version and
    its window; after our rollback, one rollback row and no repoint row."""
    rows, events = manifest_rows(checks)
    assert rows == [], rows  # every seeded swap is its publish's
    oldest = {}
    for e in events:
        if e["kind"] == "publish":
            kind, version = e["what"].split()
            oldest.setdefault(kind, (version, e["why"]))

    checks.stack.cli("inject", "stale-data", "--tenant", "demo", "--surface", "home")
    rows, _ = manifest_rows(checks)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["what"] == "manifest repointed to an old version" and row["source"] == "registry manifest"
    assert row["after"] == "; ".join(f"{kind} {oldest[kind][0]}" for kind in sorted(oldest))
    assert "no version record was written" in row["why"]
    for kind, (version, window) in oldest.items():
        assert f"{kind} {version} is of {window}" in row["why"]
    text = checks("timeline", "--tenant", "demo", "--surface", "home", "--since", "1d", json_out=False, expect=0)
    assert "manifest repointed to an old version" in text.stdout

    newest = [e for e in events if e["kind"] == "publish" and e["what"].startswith("popularity ")][-1]["after"]
    checks("manifest", "rollback", "--tenant", "demo", "--surface", "home", "--kind", "popularity", "--to", newest,
           "--execute", "--reason", "undo the re-run (timeline test)", expect=0)
    rows, events = manifest_rows(checks)
    assert rows == [], rows
    assert [e["why"] for e in events if e["kind"] == "rollback"] == ["undo the re-run (timeline test)"]


def admin_only(checks: Checks, **extra: str) -> dict[str, str | None]:
    """Overrides leaving only RECSYS_BASE_URL and RECSYS_API_KEY of the stack's environment (plus ``extra``)."""
    keep = ("RECSYS_BASE_URL", "RECSYS_API_KEY")
    drop: dict[str, str | None] = {k: None for k in checks.stack.env if k not in keep}
    return {**drop, "RECSYS_ACTOR": "oncall-test", **extra}


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def assert_no_secret_in(paths: list[Path], checks: Checks) -> None:
    for path in paths:
        text = path.read_text()
        for name, value in {**checks.secrets, "RECSYS_API_KEY": checks.stack.api_key}.items():
            assert value not in text, f"{name} written into {path}"


def test_a_config_revert_with_only_the_admin_api_records_in_recsys_audit_dir(checks: Checks, tmp_path: Path) -> None:
    """Admin API only plus RECSYS_AUDIT_DIR: exit 0, the record (and its intent) where the output says, nothing
    written to the store, no secret in the record; the timeline of the same environment shows it with our why."""
    checks.stack.cli("inject", "bad-config", "--tenant", "acme", "--surface", "home")
    folder = tmp_path / "audit-dir"
    env = admin_only(checks, RECSYS_AUDIT_DIR=str(folder))
    store_before = checks.store_snapshot()
    result = checks("config", "revert", "--tenant", "acme", "--previous", "--execute", "--reason",
                    "zeroed weights (local audit test)", expect=0, **env).json
    assert result["status"] == "applied" and result["verification"]["status"] == "ok", result
    assert result["audit"].startswith(f"file://{folder}/audit/acme/_tenant/")
    assert f"our audit record is in the local folder {folder} (RECSYS_AUDIT_DIR)" in result["summary"]
    assert "RECSYS_ARTIFACT_MANIFEST_TEMPLATE is not set" in result["summary"]
    record_path = Path(result["audit"].removeprefix("file://"))
    record = json.loads(record_path.read_text())
    assert record["action"] == "config.revert" and record["state"] == "applied" and record["who"] == "oncall-test"
    assert [p.name for p in files(folder)] == sorted([record_path.name, record_path.name.replace(".json",
                                                                                                 ".intent.json")])
    assert_no_secret_in(files(folder), checks)
    assert checks.store_snapshot() == store_before  # nothing in the registry, nor in any default bucket

    timeline = checks("timeline", "--tenant", "acme", "--since", "1h", expect=0, **env).json
    assert timeline["data"]["sources"]["local audit"] == "ok"
    rows = [e for e in timeline["data"]["events"] if e["kind"] == "config" and e["who"] == "oncall-test"]
    assert len(rows) == 1 and rows[0]["why"] == "zeroed weights (local audit test)", timeline["data"]["events"]


def run_in(checks: Checks, cwd: Path, *args: str, **env: str | None) -> Run:
    """`recsys-checks ARGS` (text output) from the working directory ``cwd``."""
    proc = subprocess.run([sys.executable, "-m", "recsys_checks.cli", *args], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, env=checks.env(**env), cwd=cwd)
    run = Run(args, proc.returncode, proc.stdout, proc.stderr)
    assert_no_secret(run, checks.secrets)
    return run


def test_with_nothing_configured_the_record_goes_to_the_state_folder_and_the_output_names_it(
        checks: Checks, tmp_path: Path) -> None:
    """No registry, no RECSYS_AUDIT_DIR: the per-user state folder ($XDG_STATE_HOME/recsys-checks), named by the text
    output, nothing in the working directory; the timeline run from another folder reads it."""
    checks.stack.cli("inject", "bad-config", "--tenant", "acme", "--surface", "home")
    env = admin_only(checks, XDG_STATE_HOME=str(tmp_path / "state"))
    started, elsewhere = tmp_path / "started-here", tmp_path / "elsewhere"
    started.mkdir()
    elsewhere.mkdir()
    run = run_in(checks, started, "config", "revert", "--tenant", "acme", "--previous", "--execute", "--reason",
                 "default folder test", **env)
    assert run.code == 0, run
    assert files(started) == []
    default = tmp_path / "state" / "recsys-checks"
    assert f"audit record: file://{default}/audit/acme/_tenant/" in run.stdout
    assert f"our audit record is in the local folder {default} (set RECSYS_AUDIT_DIR to choose another)" in run.stdout
    records = [p for p in files(default) if not p.name.endswith(".intent.json")]
    assert len(records) == 1 and json.loads(records[0].read_text())["why"] == "default folder test"
    assert_no_secret_in(files(default), checks)
    timeline = run_in(checks, elsewhere, "timeline", "--tenant", "acme", "--since", "1h", "--json", **env)
    assert timeline.code == 0, timeline
    assert any(e["why"] == "default folder test" for e in timeline.json["data"]["events"])


def test_a_runbook_run_with_only_the_admin_api_keeps_the_record_in_its_folder(checks: Checks, tmp_path: Path) -> None:
    """rollback-config-rules with the admin API only: mitigated, the audit record in --out beside the run record
    (not in the kernel's temporary folder, which is removed), and the run record names it."""
    checks.stack.cli("inject", "bad-config", "--tenant", "acme", "--surface", "home")
    out = tmp_path / "run"
    run = run_in(checks, tmp_path, "runbook", "run", "rollback-config-rules", "-p", "tenant=acme", "-p",
                 "surface=home", "--execute", "--reason", "runbook local audit test", "--out", str(out), "--json",
                 **admin_only(checks))
    assert run.code == 0, run
    record = run.json
    assert record["verdict"] == "mitigated", record
    audits = [c["audit"] for c in record["changed"] if c.get("audit")]
    assert len(audits) == 1 and audits[0].startswith(f"file://{out.resolve()}/audit/acme/_tenant/")
    assert Path(audits[0].removeprefix("file://")).is_file()
    assert (out / "rollback-config-rules.result.json").is_file()
    assert_no_secret_in(files(out / "audit"), checks)
