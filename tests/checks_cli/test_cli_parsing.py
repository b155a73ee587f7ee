"""The recsys-checks command line: argument validation, exit codes and rendering, without any network."""

from __future__ import annotations

import io
import json

import pytest

from recsys_checks.cli import commands
from recsys_checks.cli.output import emit
from recsys_checks.core import results
from recsys_checks.core.render import table
from recsys_checks.core.results import ActionResult, CheckResult, Plan
from recsys_checks.reach.settings import Target

LEAF_COMMANDS = [
    ["health"],
    ["manifest", "status"],
    ["manifest", "history"],
    ["manifest", "rollback"],
    ["freshness"],
    ["recs", "probe"],
    ["config", "show"],
    ["config", "history"],
    ["config", "revert"],
    ["rules", "show"],
    ["rules", "history"],
    ["rules", "revert"],
    ["cache", "invalidate"],
    ["timeline"],
]


@pytest.mark.parametrize("command", LEAF_COMMANDS, ids=" ".join)
def test_every_command_has_help_and_json(command, capsys):
    """Each command answers --help with exit 0 and offers --json."""
    with pytest.raises(SystemExit) as exc:
        commands.main([*command, "--help"])
    assert exc.value.code == 0
    assert "--json" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["manifest", "status", "--tenant", "../x", "--surface", "home"], "'../x'"),
        (["manifest", "status", "--tenant", "demo", "--surface", ".."], "'..'"),
        (["manifest", "status", "--tenant", "demo", "--surface", "a/b"], "'a/b'"),
        (["manifest", "status", "--tenant", " demo", "--surface", "home"], "' demo'"),
        (["manifest", "status", "--tenant", "demo", "--surface", "home", "--max-age", "soon"], "soon"),
        (["manifest", "rollback", "--tenant", "demo", "--surface", "home"], "--to"),
        (["manifest", "rollback", "--tenant", "demo", "--surface", "home", "--to", "ab", "--previous"], "--previous"),
        (["cache", "invalidate", "--tenant", "demo", "--targets", "everything"], "everything"),
        (["cache", "invalidate", "--tenant", "demo", "--targets", ","], "--targets"),
        (["timeline", "--tenant", "demo", "--since", "-3d"], "--since"),
    ],
)
def test_bad_input_exits_2_with_one_line_reason(argv, named, capsys, monkeypatch):
    """Unsafe names, bad durations and contradictory flags are refused, naming the culprit in one line, before
    any client of the service or the store is even made."""
    import recsys_checks.reach.service
    import recsys_checks.reach.store

    def contacted(*args, **kwargs):
        raise AssertionError("a client was made before the input was checked")

    monkeypatch.setattr(recsys_checks.reach.service.ServiceClient, "__init__", contacted)
    monkeypatch.setattr(recsys_checks.reach.store.TargetStores, "__init__", contacted)
    with pytest.raises(SystemExit) as exc:
        commands.main(argv)
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("recsys-checks") and "error:" in lines[0] and named in lines[0], lines
    assert len(lines) <= 2 and all("--help" in line for line in lines[1:]), lines


def test_bad_environment_is_a_configuration_error(monkeypatch, capsys):
    """A malformed RECSYS_BASE_URL is reported as exit 2 naming the variable."""
    monkeypatch.setenv("RECSYS_BASE_URL", "localhost:8080")
    assert commands.main(["health"]) == 2
    assert "RECSYS_BASE_URL" in capsys.readouterr().err


def _plan(before: str, after: str) -> Plan:
    return Plan("manifest.rollback", "demo/home", "etag-1", [{"what": "popularity", "before": before, "after": after}])


def test_exit_code_follows_results():
    """Fail → 1, warn → 0, conflict → 3, an applied action whose verification failed → 1."""
    ok = CheckResult("x", "ok", "fine")
    warn = CheckResult("x", "warn", "hmm")
    fail = CheckResult("x", "fail", "broken")
    assert results.exit_code([ok, warn]) == 0
    assert results.exit_code([ok, fail]) == 1
    assert results.exit_code([CheckResult("x", "fail", "moved", {"exit_code": 3})]) == 3
    assert results.exit_code([ActionResult("applied", "done", _plan("a", "b"), "audit-uri", verification=fail)]) == 1
    assert results.exit_code([ActionResult("applied", "done", _plan("a", "b"), "audit-uri", verification=ok)]) == 0


def test_exit_code_rule_precedence_and_the_missing_audit_record():
    """Could-not-look (2) beats broken (1); conflict (3) beats all; applied without its audit record is 1."""
    broken = CheckResult("x", "fail", "broken")
    unreachable = CheckResult("x", "fail", "no answer", {"exit_code": 2})
    assert results.exit_code([unreachable]) == 2 and results.exit_code([broken, unreachable]) == 2
    assert results.exit_code([unreachable, CheckResult("x", "fail", "moved", {"exit_code": 3})]) == 3
    assert results.exit_code([ActionResult("applied", "done", _plan("a", "b"), None)]) == 1
    assert results.exit_code([ActionResult("planned", "dry-run", _plan("a", "b"), None)]) == 0
    assert [code for code, _, _ in results.EXIT_CODES] == [0, 1, 2, 3]


def test_plain_output_when_piped_has_no_colour_codes():
    """Output to a pipe is plain text; a dry-run says nothing was changed and how to apply."""
    out = io.StringIO()
    emit([ActionResult("planned", "would repoint popularity", _plan("old-uri", "new-uri"))], as_json=False, stream=out)
    text = out.getvalue()
    assert "\033[" not in text
    assert "DRY-RUN" in text and "--execute" in text
    assert "old-uri" in text and "new-uri" in text


def test_json_output_is_the_result_dict():
    """--json prints the structured result a machine can read back."""
    out = io.StringIO()
    result = CheckResult("manifest.status", "fail", "stale", {"age_seconds": 99}, state="e1", target="demo/home")
    emit([result], as_json=True, stream=out)
    assert json.loads(out.getvalue()) == result.to_dict()


def test_table_aligns_columns_and_shows_missing_values():
    """Tables have a header per column and '-' for missing values."""
    text = table([{"kind": "popularity", "version": "abc"}, {"kind": "cooc", "version": None}])
    lines = text.splitlines()
    assert lines[0].split() == ["KIND", "VERSION"]
    assert lines[-1].split() == ["cooc", "-"]


def test_secrets_never_appear_in_target_repr_or_public_dict():
    """The API key and S3 secret are kept out of repr() and the public view."""
    target = Target.from_env(
        {"RECSYS_API_KEY": "sekret-api-key", "RECSYS_ARTIFACT_S3_SECRET_KEY": "sekret-s3", "RECSYS_BASE_URL": "http://x"}
    )
    text = repr(target) + json.dumps(target.to_public_dict())
    assert "sekret" not in text
    assert target.to_public_dict()["api_key_set"] is True


def test_human_view_shortens_versions_and_ages_and_keeps_json_whole():
    """A person sees 12-character versions and a readable age; --json keeps the full values."""
    version = "ab" * 32
    result = CheckResult(
        "manifest.status", "fail", "stale", target="demo/home",
        data={"condition": "stale", "age_seconds": 3 * 86400 + 3600, "manifest_uri": "file:///x/manifest.json",
              "artifacts": [{"kind": "popularity", "version": version, "status": "ok", "items": 3, "summary": "ok",
                             "uri": "file:///very/long/uri"}]},
    )
    out = io.StringIO()
    emit([result], as_json=False, stream=out)
    text = out.getvalue()
    assert "abababababab" in text and version not in text
    assert "73h00m" in text  # 3 days and 1 hour, as the summaries write ages
    assert "file:///very/long/uri" not in text
    out = io.StringIO()
    emit([result], as_json=True, stream=out)
    assert json.loads(out.getvalue())["data"]["artifacts"][0]["version"] == version


def test_an_error_message_never_prints_a_credential_from_the_environment(monkeypatch, capsys):
    """Whatever built an error message, the CLI masks RECSYS_API_KEY and the S3 keys before printing it."""
    from recsys_checks.core.errors import Unreachable

    monkeypatch.setenv("RECSYS_API_KEY", "sekret-api-key")
    monkeypatch.setenv("RECSYS_ARTIFACT_S3_SECRET_KEY", "sekret-s3-key")

    def leaky(args):
        raise Unreachable("library said: header b'sekret-api-key' / sig of sekret-s3-key")

    monkeypatch.setattr(commands, "_health", leaky)
    assert commands.main(["health"]) == 2
    err = capsys.readouterr().err
    assert "sekret" not in err and "***" in err


@pytest.mark.parametrize("limit", ["0", "-3", "many"])
def test_history_limit_must_be_a_positive_whole_number(limit, capsys):
    """--limit 0, negative or not a number is bad input (exit 2), not a silently odd answer."""
    with pytest.raises(SystemExit) as exc:
        commands.main(["config", "history", "--tenant", "demo", "--limit", limit])
    assert exc.value.code == 2


def test_an_internal_error_is_one_masked_line_and_exit_1(monkeypatch, capsys):
    """A defect prints one line without any credential, says how to get the traceback, and exits 1."""
    monkeypatch.setenv("RECSYS_API_KEY", "sekret-key-123")
    monkeypatch.delenv("RECSYS_CHECKS_DEBUG", raising=False)

    def broken(args):
        raise RuntimeError("boom while sending sekret-key-123")

    monkeypatch.setattr(commands, "_timeline", broken)
    assert commands.main(["timeline", "--tenant", "demo"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" in err and "RECSYS_CHECKS_DEBUG=1" in err
    assert "sekret-key-123" not in err
    monkeypatch.setenv("RECSYS_CHECKS_DEBUG", "1")
    with pytest.raises(RuntimeError):
        commands.main(["timeline", "--tenant", "demo"])


def test_a_rollback_plan_shows_the_old_and_new_blob_of_each_kind():
    """A person sees exactly which blob each pointer moves from and to, not only the short versions."""
    old, new = "a" * 64, "b" * 64
    plan = Plan("manifest.rollback", "s3://b/registry/current/demo/home/manifest.json", '"e1"', [
        {"what": "current.popularity", "kind": "popularity", "before": f"s3://b/o/popularity/{old}.json",
         "after": f"s3://b/o/popularity/{new}.json", "before_version": old, "after_version": new}])
    out = io.StringIO()
    emit([ActionResult("planned", "dry-run: would repoint", plan)], as_json=False, stream=out)
    text = out.getvalue()
    assert f"s3://b/o/popularity/{old}.json" in text and f"-> s3://b/o/popularity/{new}.json" in text
    assert "aaaaaaaaaaaa" in text and "bbbbbbbbbbbb" in text
