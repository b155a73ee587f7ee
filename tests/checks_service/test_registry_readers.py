"""The default readers of recs and timeline against a real file:// registry laid out like the suite's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys_checks.judge.registry.artifact import artifact_version
from recsys_checks.judge.registry.published import read_manifest_state, read_published_versions
from recsys_checks.judge.timeline import check_timeline
from recsys_checks.reach.settings import Target

from .conftest import POP_V1, POP_V2


class Registry:
    """Writes manifests, records and blobs under a temporary root, in the suite's formats."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.target = Target(manifest_template=f"file://{root}/registry/current/{{tenant}}/{{surface}}/manifest.json")

    def blob(self, items: list, day: int, *, surface: str = "home") -> str:
        doc = {"v": 1, "artifact_type": "popularity", "tenant": "demo", "surface": surface,
               "window": {"start": f"2026-01-{day - 1:02d}T00:00:00Z", "end": f"2026-01-{day:02d}T00:00:00Z"},
               "items": items, "build": {"built_at": f"2026-01-{day:02d}T01:00:00Z", "version": ""}}
        version = artifact_version(doc)
        doc["build"] = {"built_at": doc["build"]["built_at"], "version": version, "source_hash": "x"}
        path = self.root / "objectstore" / "demo" / surface / "popularity" / f"{version}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2))
        record = {"Key": {"Tenant": "demo", "Surface": surface, "Segment": "default", "Type": "popularity"},
                  "Window": {"Start": doc["window"]["start"], "End": doc["window"]["end"]}, "Version": version,
                  "URI": f"file://{path}", "BuiltAt": f"2026-01-{day:02d}T01:00:00.000000001Z"}
        rec = self.root / "registry" / "records" / "demo" / surface / "popularity" / f"{version}.json"
        rec.parent.mkdir(parents=True, exist_ok=True)
        rec.write_text(json.dumps(record))
        return f"file://{path}"

    def manifest(self, current: dict, *, surface: str = "home", raw: str | None = None) -> None:
        path = self.root / "registry" / "current" / "demo" / surface / "manifest.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"v": 1, "tenant": "demo", "surface": surface, "current": dict(sorted(current.items())),
               "updated_at": "2026-01-11T01:00:00Z"}
        path.write_text(raw if raw is not None else json.dumps(doc, indent=2))


@pytest.fixture
def registry(tmp_path) -> Registry:
    """An empty file:// registry with a target whose manifest template points into it."""
    return Registry(tmp_path)


def test_a_published_popularity_reads_as_ok_with_its_items(registry):
    """Manifest → valid blob → state ok with the artifact's items and version."""
    uri = registry.blob(POP_V1, 10)
    registry.manifest({"popularity": uri})
    state = read_manifest_state(registry.target, "demo", "home")
    assert state.state == "ok", state.detail
    assert state.items == POP_V1 and state.version and uri.endswith(state.version + ".json")
    assert state.updated_at == "2026-01-11T01:00:00Z" and state.etag


def test_each_broken_registry_state_is_named(registry):
    """missing manifest, no popularity, missing blob, empty artifact, corrupt blob, corrupt manifest."""
    t = registry.target
    assert read_manifest_state(t, "demo", "home").state == "missing"
    registry.manifest({})
    assert read_manifest_state(t, "demo", "home").state == "no_popularity"
    registry.manifest({"popularity": f"file://{registry.root}/objectstore/demo/home/popularity/{'0' * 64}.json"})
    assert read_manifest_state(t, "demo", "home").state == "missing_blob"
    registry.manifest({"popularity": registry.blob([], 11)})
    assert read_manifest_state(t, "demo", "home").state == "empty"
    uri = registry.blob(POP_V1, 12)
    Path(uri.removeprefix("file://")).write_text("{not json")
    registry.manifest({"popularity": uri})
    assert read_manifest_state(t, "demo", "home").state == "invalid"
    registry.manifest({}, raw="{broken")
    assert read_manifest_state(t, "demo", "home").state == "invalid"


def test_published_versions_come_newest_first_with_items(registry):
    """The history reader returns each record's items."""
    registry.blob(POP_V1, 10)
    registry.blob(POP_V2, 11)
    versions = read_published_versions(registry.target, "demo", "home")
    assert [v.items for v in versions] == [POP_V2, POP_V1]
    assert versions[0].window_end == "2026-01-11T00:00:00Z"


def test_timeline_discovers_surfaces_and_reads_records_without_a_service(registry):
    """No service configured: publishes of every surface shown, service audit reported unavailable."""
    registry.manifest({"popularity": registry.blob(POP_V1, 10)})
    registry.manifest({"popularity": registry.blob(POP_V2, 11, surface="search")}, surface="search")
    from datetime import UTC, datetime

    result = check_timeline(registry.target, "demo", now=datetime(2026, 1, 12, tzinfo=UTC))
    assert result.status == "warn" and "RECSYS_BASE_URL" in result.summary
    assert sorted(e["surface"] for e in result.data["events"] if e["kind"] == "publish") == ["home", "search"]
    # home's manifest was written a day after its only version was built, and no record explains that write
    [row] = [e for e in result.data["events"] if e["kind"] == "manifest"]
    assert row["surface"] == "home" and row["what"] == "manifest updated" and row["when"] == "2026-01-11T01:00:00Z"
