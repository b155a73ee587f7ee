"""Our audit records are read in a bounded window: pruned by name before any is read (``since``), newest first, at
most a cap per scope, and the timeline says how many older ones the cap left out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recsys_checks.cli.commands import main
from recsys_checks.judge import auditlog
from recsys_checks.judge import auditlog as audit
from recsys_checks.judge.timeline import check_timeline
from recsys_checks.reach.settings import Target
from recsys_checks.reach.store import TargetStores

NOW = datetime(2026, 1, 12, 12, 0, tzinfo=UTC)


def _target(root: Path) -> Target:
    return Target(manifest_template=root.as_uri() + "/registry/current/{tenant}/{surface}/manifest.json")


def _write(root: Path, count: int, every: timedelta, *, scope: str = "home", broken_before: datetime | None = None,
           ) -> list[str]:
    """``count`` cache-invalidation records of demo/``scope``, one each ``every`` back from NOW, named as
    recsys_checks.judge.auditlog names them; those older than ``broken_before`` are not JSON at all."""
    folder = root / "registry" / "audit" / "demo" / scope
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for n in range(count):
        when = NOW - every * (n + 1)
        stamp = when.strftime("%Y%m%dT%H%M%S") + f".{when.microsecond:06d}Z"
        name = f"{stamp}-{n:012x}.json"
        body = ("{not json" if broken_before is not None and when < broken_before else json.dumps({
            "v": 1, "action": "cache.invalidate", "tenant": "demo", "surface": scope, "who": "bench", "when": stamp,
            "why": f"record {n}", "changes": [], "state": "applied"}))
        (folder / name).write_text(body)
        names.append(name)
    (folder / f"{names[0].removesuffix('.json')}.intent.json").write_text("{}")  # an intent is never a record
    return names


def test_since_prunes_by_name_before_anything_is_read(tmp_path, monkeypatch):
    """Records older than the window are never opened: even unreadable ones there are not reported."""
    _write(tmp_path, 48, timedelta(hours=1), broken_before=NOW - timedelta(hours=10))
    opened: list[str] = []
    get = TargetStores.get

    def counting(self, uri):
        opened.append(uri)
        return get(self, uri)

    monkeypatch.setattr(TargetStores, "get", counting)
    docs = audit.read(_target(tmp_path), "demo", "home", since=NOW - timedelta(hours=6, minutes=30))
    assert [d["why"] for d in docs] == [f"record {n}" for n in range(6)]  # newest first
    assert len(opened) == 6 and docs.left_out == 0 and not any("error" in d for d in docs)


def test_the_cap_reads_the_newest_and_counts_the_rest_of_the_window(tmp_path):
    _write(tmp_path, 30, timedelta(minutes=1))
    docs = auditlog.read_audit(_target(tmp_path), "demo", "home", since=NOW - timedelta(hours=1), limit=10)
    assert [d["why"] for d in docs] == [f"record {n}" for n in range(10)]
    assert docs.left_out == 20
    everything = audit.read(_target(tmp_path), "demo", "home", limit=None)
    assert len(everything) == 30 and everything.left_out == 0


def test_a_name_not_in_the_time_form_is_still_read(tmp_path):
    _write(tmp_path, 3, timedelta(days=3))
    folder = tmp_path / "registry" / "audit" / "demo" / "home"
    (folder / "hand-written.json").write_text(json.dumps({"action": "cache.invalidate", "when": "x"}))
    docs = audit.read(_target(tmp_path), "demo", "home", since=NOW - timedelta(days=1))
    assert [d["uri"].rsplit("/", 1)[1] for d in docs] == ["hand-written.json"]


def test_the_timeline_says_when_the_cap_left_records_out(tmp_path):
    _write(tmp_path, 40, timedelta(minutes=5))
    result = check_timeline(_target(tmp_path), "demo", "home", since=timedelta(days=1), now=NOW,
                            max_audit_records=15)
    assert [e["why"] for e in result.data["events"]] == [f"record {n}" for n in range(14, -1, -1)]  # oldest first
    assert result.status == "warn"
    assert result.data["left_out"] == ["registry audit demo/home: the newest 15 records were read, 25 older ones in "
                                       "the window were not (--max-audit-records)"]
    assert "25 older ones in the window were not" in result.summary
    whole = check_timeline(_target(tmp_path), "demo", "home", since=timedelta(hours=1), now=NOW)
    assert len(whole.data["events"]) == 12 and whole.data["left_out"] == []


def test_the_timeline_command_takes_the_cap(tmp_path, monkeypatch, capsys):
    _write(tmp_path, 8, timedelta(seconds=10))
    monkeypatch.setenv("RECSYS_ARTIFACT_MANIFEST_TEMPLATE", _target(tmp_path).manifest_template)
    monkeypatch.delenv("RECSYS_BASE_URL", raising=False)
    assert main(["timeline", "--tenant", "demo", "--surface", "home", "--since", "3650d", "--max-audit-records", "3",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["data"]["events"]) == 3 and "5 older ones" in doc["data"]["left_out"][0]


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_the_cap_must_be_a_whole_number_of_at_least_1(value, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["timeline", "--tenant", "demo", "--max-audit-records", value])
    assert stop.value.code == 2
