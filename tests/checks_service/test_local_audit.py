"""Config and rules reverts need the admin API only: without a usable registry our audit record goes to a local
folder (RECSYS_AUDIT_DIR, else the caller's default, else the per-user state folder), never to the suite's default
bucket, and never to a folder that depends on where the command was started."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from recsys_checks.core.errors import BadInput, Unreachable
from recsys_checks.judge import auditlog
from recsys_checks.judge.timeline import check_timeline
from recsys_checks.levers import audit
from recsys_checks.levers.revert import apply_revert, plan_revert
from recsys_checks.reach.service import ServiceClient
from recsys_checks.reach.settings import Target

from .conftest import API_KEY, BASE_URL, CONFIG_SEED, version_of


def admin_only(env: dict[str, str] | None = None) -> Target:
    """The target of an environment with the admin API only (and what ``env`` adds)."""
    return Target.from_env({"RECSYS_BASE_URL": BASE_URL, "RECSYS_API_KEY": API_KEY, **(env or {})})


@pytest.fixture
def connect(service) -> Iterator:
    clients = []

    def make(target: Target) -> ServiceClient:
        clients.append(ServiceClient(target, transport=httpx.MockTransport(service.handler)))
        return clients[-1]

    yield make
    for c in clients:
        c.close()


def revert(target: Target, client: ServiceClient, **kwargs):
    plan = plan_revert(target, "demo", "config", previous=True, reason="weights zeroed", client=client)
    return apply_revert(target, plan, execute=True, client=client, **kwargs)


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_the_environment_says_whether_a_registry_is_configured(tmp_path):
    """No template: no registry (the suite's default template is not a place anyone chose); a template, a records
    template or --manifest-template: configured. RECSYS_AUDIT_DIR is read, shown in the public view."""
    assert admin_only().has_registry is False
    template = (tmp_path / "r").as_uri() + "/current/{tenant}/{surface}/manifest.json"
    assert admin_only({"RECSYS_ARTIFACT_MANIFEST_TEMPLATE": template}).has_registry is True
    assert Target.from_env({}, manifest_template=template).has_registry is True
    records = "s3://b/registry/records/{tenant}/{surface}/"
    assert admin_only({"RECSYS_ARTIFACT_RECORDS_TEMPLATE": records}).has_registry is True
    target = admin_only({"RECSYS_AUDIT_DIR": str(tmp_path / "aud")})
    assert target.audit_dir == str(tmp_path / "aud")
    assert target.to_public_dict()["audit_dir"] == str(tmp_path / "aud")
    assert target.to_public_dict()["registry_configured"] is False
    # a Target built directly keeps naming its registry by its template, as before
    assert Target(manifest_template=template).has_registry and not Target().has_registry


@pytest.mark.parametrize("value, words", [
    ("s3://bucket/audit", "is not a local folder"),
    ("folder\nname", "is not a usable folder path"),
])
def test_a_bad_audit_dir_is_a_one_line_error(value, words):
    with pytest.raises(BadInput, match=words) as caught:
        admin_only({"RECSYS_AUDIT_DIR": value})
    assert "\n" not in str(caught.value).replace(repr(value), "")


def test_an_audit_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(BadInput, match="is a file, not a folder"):
        admin_only({"RECSYS_AUDIT_DIR": str(tmp_path / "f")})


def test_without_a_registry_the_revert_records_in_recsys_audit_dir(bad_config, connect, tmp_path):
    """Admin API only plus RECSYS_AUDIT_DIR: applied, intent and record under <dir>/audit/demo/_tenant/, the
    summary and the audit reference say where and why, nothing written anywhere else, no secret in the files."""
    folder = tmp_path / "aud"
    target = admin_only({"RECSYS_AUDIT_DIR": str(folder)})
    result = revert(target, connect(target))
    assert result.status == "applied", result.summary
    assert bad_config.current[("demo", "config")] == version_of(CONFIG_SEED)
    assert result.audit is not None and result.audit.startswith(f"file://{folder}/audit/demo/_tenant/")
    assert f"our audit record is in the local folder {folder} (RECSYS_AUDIT_DIR)" in result.summary
    assert "no registry is configured: RECSYS_ARTIFACT_MANIFEST_TEMPLATE is not set" in result.summary
    names = files_under(folder)
    assert len(names) == 2 and all(n.startswith("audit/demo/_tenant/") for n in names)
    assert sum(n.endswith(".intent.json") for n in names) == 1
    record = json.loads(Path(result.audit.removeprefix("file://")).read_text())
    assert record["action"] == "config.revert" and record["state"] == "applied" and record["why"] == "weights zeroed"
    assert record["after"] == version_of(CONFIG_SEED) and record["service_request_id"]
    assert "RECSYS_ARTIFACT_MANIFEST_TEMPLATE is not set" in record["recorded_locally_because"]
    for name in names:
        assert API_KEY not in (folder / name).read_text()


def test_with_nothing_configured_the_record_goes_to_the_per_user_state_folder(
        bad_config, connect, tmp_path, monkeypatch):
    """No RECSYS_AUDIT_DIR either: the platform's per-user state folder of recsys-checks (XDG_STATE_HOME on Linux),
    named in the summary with the variable that chooses another; nothing in the working directory."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    started = tmp_path / "started-here"
    started.mkdir()
    monkeypatch.chdir(started)
    target = admin_only()
    result = revert(target, connect(target))
    assert result.status == "applied", result.summary
    default = tmp_path / "state" / "recsys-checks"
    assert auditlog.default_audit_dir() == default
    assert result.audit.startswith(f"file://{default}/audit/demo/_tenant/")
    assert f"in the local folder {default} (set RECSYS_AUDIT_DIR to choose another)" in result.summary
    assert Path(result.audit.removeprefix("file://")).is_file()
    assert "s3://" not in result.summary
    assert files_under(started) == []


def test_without_xdg_state_home_the_state_folder_is_under_home(monkeypatch, tmp_path):
    """The platform convention: ~/.local/state/recsys-checks on Linux when XDG_STATE_HOME is not set."""
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert auditlog.default_audit_dir() == tmp_path / ".local" / "state" / "recsys-checks"
    else:
        assert auditlog.default_audit_dir().name == "recsys-checks"


def test_a_runbook_runs_default_is_the_folder_it_is_given(bad_config, connect, tmp_path, monkeypatch):
    """The caller's default (a runbook run passes its folder) is used when RECSYS_AUDIT_DIR is not set..."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    target = admin_only()
    result = revert(target, connect(target), audit_dir=tmp_path / "incident")
    assert result.audit.startswith(f"file://{tmp_path / 'incident'}/audit/demo/_tenant/")
    assert not (tmp_path / "state").exists()


def test_recsys_audit_dir_wins_over_the_callers_default(bad_config, connect, tmp_path):
    """... and RECSYS_AUDIT_DIR wins over it."""
    target = admin_only({"RECSYS_AUDIT_DIR": str(tmp_path / "aud")})
    result = revert(target, connect(target), audit_dir=tmp_path / "incident")
    assert result.audit.startswith(f"file://{tmp_path / 'aud'}/")
    assert not (tmp_path / "incident").exists()


def test_a_reachable_registry_is_still_where_the_record_goes(bad_config, target, client, tmp_path):
    """A configured registry that can be written keeps the records, RECSYS_AUDIT_DIR or not."""
    from dataclasses import replace

    with_dir = replace(target, audit_dir=str(tmp_path / "aud"))
    result = revert(with_dir, client)
    root = target.audit_root()
    assert result.audit.startswith(f"{root}/audit/demo/_tenant/") and "local folder" not in result.summary
    assert not (tmp_path / "aud").exists()


def test_an_unreadable_registry_falls_back_to_the_local_folder_and_says_why(bad_config, connect, tmp_path,
                                                                           monkeypatch):
    """A configured registry that cannot be read: the revert still happens, recorded locally, the summary names the
    registry, the error and the folder."""
    template = "s3://team-registry/registry/current/{tenant}/{surface}/manifest.json"
    target = admin_only({"RECSYS_ARTIFACT_MANIFEST_TEMPLATE": template, "RECSYS_AUDIT_DIR": str(tmp_path / "aud")})
    real = audit.settle_service

    def settle(target, tenant, scope, current, *, root=None, **evidence):
        if root and root.startswith("s3://"):
            raise Unreachable("object store s3 unreachable while listing s3://team-registry/registry/audit/demo/")
        return real(target, tenant, scope, current, root=root, **evidence)

    monkeypatch.setattr(audit, "settle_service", settle)
    result = revert(target, connect(target))
    assert result.status == "applied"
    assert result.audit.startswith(f"file://{tmp_path / 'aud'}/audit/demo/_tenant/")
    assert "the registry s3://team-registry/registry/audit/ could not be read: object store s3 unreachable" \
        in result.summary


def test_a_registry_that_refuses_the_write_falls_back_to_the_local_folder(bad_config, target, connect, tmp_path,
                                                                         monkeypatch):
    """Readable but not writable (read-only credentials): the intent goes to the local folder, before any change."""
    from dataclasses import replace

    target = replace(target, audit_dir=str(tmp_path / "aud"))
    real = audit.begin_service_change
    registry = target.audit_root()

    def begin(*args, root=None, **kwargs):
        if root == registry:
            raise BadInput(f"access denied writing {registry}/audit/demo/_tenant/x.intent.json")
        return real(*args, root=root, **kwargs)

    monkeypatch.setattr(audit, "begin_service_change", begin)
    result = revert(target, connect(target))
    assert result.status == "applied" and result.audit.startswith(f"file://{tmp_path / 'aud'}/")
    assert "could not be written: access denied" in result.summary


def test_when_no_place_can_take_the_record_nothing_is_changed(bad_config, connect, tmp_path, monkeypatch):
    """The local folder cannot be written: one-line BadInput naming RECSYS_AUDIT_DIR, the config untouched."""
    target = admin_only({"RECSYS_AUDIT_DIR": str(tmp_path / "aud")})
    client = connect(target)
    plan = plan_revert(target, "demo", "config", previous=True, client=client)

    def refuse(*args, **kwargs):
        raise Unreachable("cannot write: read-only file system")

    monkeypatch.setattr(audit, "begin_service_change", refuse)
    before = bad_config.snapshot()
    with pytest.raises(BadInput, match="nothing was changed: set RECSYS_AUDIT_DIR to a writable folder") as caught:
        apply_revert(target, plan, execute=True, client=client)
    assert "\n" not in str(caught.value)
    assert bad_config.snapshot() == before
    assert [r.method for r in bad_config.mutating_requests()] == []


def test_a_dry_run_writes_no_local_folder(bad_config, connect, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    target = admin_only()
    client = connect(target)
    plan = plan_revert(target, "demo", "config", previous=True, client=client)
    assert apply_revert(target, plan, client=client).status == "planned"
    assert sorted(tmp_path.iterdir()) == []


def test_the_timeline_shows_the_local_records(bad_config, connect, tmp_path):
    """The timeline reads RECSYS_AUDIT_DIR: the revert's service entry carries our who and why from the local
    record; a record of ours the service does not have (another tenant's service) shows on its own."""
    folder = tmp_path / "aud"
    target = admin_only({"RECSYS_AUDIT_DIR": str(folder)})
    client = connect(target)
    revert(target, client, actor="oncall-bo")
    result = check_timeline(target, "demo", now=datetime.now(UTC), client=client, read_history=lambda *a: [],
                            read_manifest=lambda *a: None, read_audit=lambda *a: [], surfaces=["home"])
    assert result.data["sources"]["local audit"] == "ok"
    rows = [e for e in result.data["events"] if e["kind"] == "config" and e["who"] == "oncall-bo"]
    assert len(rows) == 1 and rows[0]["why"] == "weights zeroed"
    # the local record alone, without the service's log: its own row, source local audit
    result = check_timeline(Target.from_env({"RECSYS_AUDIT_DIR": str(folder)}), "demo", now=datetime.now(UTC),
                            read_history=lambda *a: [], read_manifest=lambda *a: None, read_audit=lambda *a: [],
                            surfaces=["home"])
    [row] = [e for e in result.data["events"] if e["source"] == "local audit"]
    assert row["kind"] == "config" and row["what"] == "config.revert" and row["who"] == "oncall-bo"


def test_the_timeline_reads_the_default_folder_only_when_it_exists(tmp_path, monkeypatch):
    """The per-user state folder is read once records were written there; a ./recsys-audit of the working
    directory (where earlier versions wrote) is not read: only RECSYS_AUDIT_DIR names another folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    target = Target.from_env({})
    kwargs = {"read_history": lambda *a: [], "read_manifest": lambda *a: None, "read_audit": lambda *a: [],
              "surfaces": ["home"]}
    (tmp_path / "recsys-audit" / "audit").mkdir(parents=True)
    assert "local audit" not in check_timeline(target, "demo", **kwargs).data["sources"]
    (tmp_path / "state" / "recsys-checks" / "audit").mkdir(parents=True)
    assert check_timeline(target, "demo", **kwargs).data["sources"]["local audit"] == "ok"
    legacy = Target.from_env({"RECSYS_AUDIT_DIR": str(tmp_path / "recsys-audit")})
    assert check_timeline(legacy, "demo", **kwargs).data["sources"]["local audit"] == "ok"


def test_a_runbook_runs_folder_is_its_out_folder_not_the_kernels_temporary_one(tmp_path, monkeypatch):
    """`runbook run` writes the run record in a temporary folder and moves it to --out: the folder a lever records
    in is --out (RECSYS_RUNBOOK_OUT), else the run record's folder."""
    from recsys_checks.runbooks.run import OUT_ENV, RECORD_ENV, RunbookRun

    target = admin_only()
    monkeypatch.setenv(RECORD_ENV, str(tmp_path / "kernel-tmp" / "rollback-config-rules.result.json"))
    monkeypatch.setenv(OUT_ENV, str(tmp_path / "out"))
    run = RunbookRun("rollback-config-rules", target=target, tenant="demo", surface="home")
    assert run.out_dir == tmp_path / "out"
    monkeypatch.delenv(OUT_ENV)
    assert RunbookRun("rollback-config-rules", target=target, tenant="demo", surface="home").out_dir == \
        tmp_path / "kernel-tmp"
    given = RunbookRun("rollback-config-rules", target=target, record_path=tmp_path / "x" / "r.json", tenant="demo",
                       surface="home")
    assert given.out_dir == tmp_path / "x"
