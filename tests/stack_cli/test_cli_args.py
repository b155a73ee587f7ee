"""recsys-stack argument handling and the fault registry: no stack is started here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys_stack.cli import main
from recsys_stack.faults import FAULTS

CONTRACT_FAULTS = {
    "stale-manifest": "stale-manifest",
    "stale-cache": "stale-manifest",
    "stale-data": "stale-manifest",
    "bad-publish": "rollback-manifest",
    "missing-blob": "empty-recs",
    "corrupt-manifest": "rollback-manifest",
    "partial-publish": "pipeline-failed",
    "validation-failed": "validation-failed",
    "limit-exceeded": "limit-exceeded",
    "bad-rules": "rollback-config-rules",
    "bad-config": "rollback-config-rules",
    "foreign-artifact": "rollback-manifest",
    "shrunk-publish": "rollback-manifest",
    "rules-hide-most": "rollback-config-rules",
    "weights-overflow": "rollback-config-rules",
    "store-down": "service-not-ready",
    "not-ready": "service-not-ready",
    "eval-srm": "eval-report-suspect",
    "eval-low-join": "eval-report-suspect",
    "eval-impossible-lift": "eval-report-suspect",
    "eval-schema-break": "eval-report-suspect",
    "eval-clean": "eval-report-suspect",
    "slow-store": "stale-manifest",
    "cooc-unreadable": "service-not-ready",
    "popularity-unreadable": "rollback-manifest",
    "pin-unknown": "rollback-config-rules",
    "rules-wrapped": "rollback-config-rules",
    "max-k-low": "rollback-config-rules",
    "stale-and-blocked": "empty-recs",
    "config-error": "pipeline-failed",
    "signal-db-refused": "pipeline-failed",
    "store-not-writable": "pipeline-failed",
    "backfill-over-limit": "limit-exceeded",
    "implicit-limit": "limit-exceeded",
}


def test_fault_registry_names_every_fault_with_its_runbook() -> None:
    """Every fault of the stack is registered with the runbook that answers it and a description."""
    assert {name: f.runbook for name, f in FAULTS.items()} == CONTRACT_FAULTS
    assert all(f.breaks for f in FAULTS.values())


def test_faults_prints_a_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    """`faults` lists name, runbook and what breaks; `--json` gives the same as objects."""
    assert main(["faults"]) == 0
    table = capsys.readouterr().out
    for name, runbook in CONTRACT_FAULTS.items():
        assert any(line.split()[:2] == [name, runbook] for line in table.splitlines())
    assert main(["faults", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"]: r["runbook"] for r in rows} == CONTRACT_FAULTS


def test_unknown_fault_exits_2_and_lists_the_valid_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown fault name is a usage error naming every valid fault."""
    assert main(["inject", "no-such-fault", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no-such-fault" in err and all(name in err for name in FAULTS)
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["inject", "bad-rules", "--tenant", "../x"],
        ["inject", "bad-rules", "--surface", "a/b"],
        ["publish", "--tenant", "..", "--surface", "home"],
        ["publish", "--tenant", "demo", "--surface", "home", "--day", "2026-13-01"],
        ["publish", "--tenant", "demo", "--surface", "home", "--day", "yesterday"],
        ["up", "--store", "gcs"],
        ["up", "--port", "70000"],
        ["up", "--cache-ttl", "0"],
        ["frobnicate"],
    ],
    ids=["tenant-dotdot", "surface-slash", "publish-tenant", "bad-month", "bad-day", "store", "port", "ttl", "command"],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unsafe tenants/surfaces, impossible days and unknown choices are rejected with exit 2 and one line."""
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--root", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error:" in err


def test_commands_without_a_stack_say_how_to_start_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """status, publish, inject and heal on an empty root exit 2 and point at `recsys-stack up`."""
    for argv in (["status"], ["publish", "--tenant", "demo", "--surface", "home"], ["inject", "bad-rules"], ["heal"]):
        assert main([*argv, "--root", str(tmp_path)]) == 2
        assert "recsys-stack up" in capsys.readouterr().err


def test_down_without_a_stack_is_a_noop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`down` on a root where nothing was started succeeds and says there was nothing to stop."""
    assert main(["down", "--root", str(tmp_path)]) == 0
    assert "nothing to stop" in capsys.readouterr().out


class _RecordingContext:
    """Stands in for a FaultContext and records the calls a fault makes, in order."""

    info = {"manifest_ttl_seconds": 600, "cache_ttl_seconds": 5}

    def __init__(self) -> None:
        self.calls: list[str] = []

    def invalidate(self, tenant: str, surface: str | None, targets: tuple[str, ...] = ("popularity",)) -> None:
        self.calls.append(f"invalidate {tenant}/{surface} {','.join(targets)}")

    def recommend(self, tenant: str, surface: str, k: int = 10):
        self.calls.append(f"recommend {tenant}/{surface}")

        class _Ok:
            status_code = 200

        return _Ok()

    def publish(self, tenant: str, surface: str, **kwargs) -> dict:
        self.calls.append(f"publish {tenant}/{surface}")
        return {"day": "2026-01-02"}

    def publish_resent(self, tenant: str, surface: str, **kwargs) -> dict:
        """A re-run of yesterday with its late events: a publish all the same."""
        return self.publish(tenant, surface, **kwargs)


def test_stale_cache_drops_the_cache_before_warming_it() -> None:
    """stale-cache invalidates, warms, then publishes without invalidating: the old version is cached for a
    full TTL from now, not for what was left of an entry loaded earlier."""
    ctx = _RecordingContext()
    line = FAULTS["stale-cache"].inject(ctx, "demo", "home")  # type: ignore[arg-type]
    assert "manifest TTL 600 s" in line  # the cached manifest, not the blob cache, decides how long
    assert ctx.calls == ["invalidate demo/home popularity", "recommend demo/home", "publish demo/home"]
