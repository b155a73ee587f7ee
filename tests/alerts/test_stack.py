"""The receiver against the real local stack, running the real runbooks: a healthy fleet is nothing found; with a
blob missing on demo/search, an empty-recommendations alert (which names no surface) is triaged to demo/search only,
dry-run (nothing changes), and the command the incident shows applies exactly its plan."""

from __future__ import annotations

import html
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from alertkit import alert, payload, start_receiver
from picturekit import pictures_in_html, pictures_in_notebook
from placeholders import strings, unfilled, unfilled_in_record
from specskit import spec
from stackfixture import running_stack

from recsys_checks.runbooks.pictures import DRAWN_BY
from recsys_checks.runbooks.spec import load_spec


def manifest(stack, surface: str) -> bytes:
    return (stack.root / "store" / "registry" / "current" / "demo" / surface / "manifest.json").read_bytes()


@pytest.mark.stack
@pytest.mark.slow
def test_an_alert_is_triaged_to_the_broken_surface_and_dry_run_with_the_real_runbook(tmp_path, specs_file):
    with running_stack("file", tmp_path / "stack") as stack:
        r = start_receiver(tmp_path / "work", tmp_path / "incidents", specs_file, ("--triage-ttl", "0"),
                           env=stack.env, command=f"{sys.executable} -m recsys_checks.cli")
        try:
            r.post(payload(alert(fingerprint="healthy1")))
            rows = r.wait_done(timeout=120)
            assert {x["status"] for x in rows} == {"nothing-found"}, rows
            assert "4 surface(s) looked at, 0 broken, 0 unknown" in rows[0]["reason"]

            stack.cli("inject", "missing-blob", "--tenant", "demo", "--surface", "search")
            before = manifest(stack, "search")
            iid = r.post(payload(alert(fingerprint="broken1"))).json()["new"][0]
            rows = [x for x in r.wait_done(timeout=240, count=2) if x["id"] == iid]
            assert {(x["tenant"], x["surface"]) for x in rows} == {("demo", "search")}, rows
            row = next(x for x in rows if x["runbook"] == "empty-recs")
            assert (row["status"], row["verdict"], row["cause"]) == ("finished", "action-required", "missing_blob")
            assert re.fullmatch(r"[0-9a-f]{12}", row["plan_id"])
            assert manifest(stack, "search") == before  # a dry run: nothing changed
            folder = r.out / iid / "runs" / "01-empty-recs"
            record = json.loads((folder / "empty-recs.result.json").read_text())
            assert record["execute"] is False and record["parameters"]["surface"] == "search"
            assert "manifest-status" in (folder / "empty-recs.html").read_text()
            page = r.client.get(f"/incidents/{iid}").text
            assert "versions" in assert_pictures_kept(r, iid, page)["empty-recs"]
            assert page.index("missing_blob") < page.index(row["plan_id"]) < page.index("<iframe")

            # The lever by hand is the runbook's decision-table row for the cause, filled in, with the same plan.
            lever = load_spec("empty-recs").cause("missing_blob").lever
            wanted = [{k: v.replace("{plan}", row["plan_id"]) for k, v in c.items()}
                      for c in lever.commands("empty-recs", "demo", "search", {"kind": "popularity"})]
            shown = r.client.get(f"/incidents/{iid}", headers={"Accept": "application/json"}).json()
            assert next(x for x in shown["rows"] if x["runbook"] == "empty-recs")["fix"]["commands"] == wanted
            assert all(html.escape(c["apply"], quote=False) in page for c in wanted)

            # The command the incident shows applies exactly the plan it diagnosed.
            words = shlex.split(row["apply_command"])
            assert words[:4] == ["recsys-checks", "runbook", "run", "empty-recs"] and "--execute" in words
            applied = subprocess.run([sys.executable, "-m", "recsys_checks.cli", *words[1:], "--json",
                                      "--out", str(tmp_path / "apply")], env=stack.env, capture_output=True,
                                     text=True, timeout=300)
            assert applied.returncode == 0, applied.stderr
            assert json.loads(Path(tmp_path / "apply" / "empty-recs.result.json").read_text())["verdict"] == \
                "mitigated"
        finally:
            r.stop()


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.parametrize("fault, name, labels, runbook, cause", [
    ("stale-manifest", "RecsysManifestStale", {}, "stale-manifest", "pipeline_not_published"),
    ("corrupt-manifest", "RecsysArtifactLoadFailures", {"kind": "manifest"}, "rollback-manifest",
     "artifact_incompatible"),
    ("foreign-artifact", "RecsysArtifactLoadFailures", {"kind": "popularity"}, "rollback-manifest",
     "artifact_incompatible"),
])
def test_each_alert_kind_is_triaged_to_the_broken_surface_only(tmp_path, specs_file, fault, name, labels, runbook,
                                                               cause):
    """The triage reads what the real freshness scan and probes print: one surface broken of four, found."""
    with running_stack("file", tmp_path / "stack") as stack:
        stack.cli("inject", fault, "--tenant", "demo", "--surface", "search")
        r = start_receiver(tmp_path / "work", tmp_path / "incidents", specs_file, ("--triage-ttl", "0"),
                           env=stack.env, command=f"{sys.executable} -m recsys_checks.cli")
        try:
            iid = r.post(payload(alert(name, labels=labels))).json()["new"][0]
            rows = r.wait_done(timeout=240)
            assert {(x["tenant"], x["surface"]) for x in rows} == {("demo", "search")}, rows
            row = next(x for x in rows if x["runbook"] == runbook)
            assert (row["status"], row["verdict"], row["cause"]) == ("finished", "action-required", cause), row
            assert_no_unfilled_placeholder(r, iid)
            page = r.client.get(f"/incidents/{iid}").text
            assert "versions" in assert_pictures_kept(r, iid, page)[runbook]
            if name == "RecsysManifestStale":  # the staleness triage: the fleet's ages, the stale surface named
                triage = pictures_in_html(page)
                assert [k for k, _ in triage] == ["freshness"] and "1 stale" in triage[0][1], triage
                assert "demo/search" in html.unescape(page[page.index("Fleet freshness"):])
        finally:
            r.stop()


def assert_pictures_kept(r, iid: str, page: str) -> dict[str, set[str]]:
    """Each run's notebook, as the incident page links it (the kept HTML), shows the pictures its executed notebook
    holds, each by its own id and title, and only kinds its runbook's steps draw; returns the kinds per runbook."""
    kept: dict[str, set[str]] = {}
    for link, n in re.findall(r'href="(/incidents/[^"]+/runs/(\d+)/notebook)"', page):
        record = next((r.out / iid / "runs").glob(f"{int(n):02d}-*/*.result.json"))
        runbook = json.loads(record.read_text())["runbook"]
        executed = [(kind, title) for _, kind, title in pictures_in_notebook(record.with_name(f"{runbook}.ipynb"))]
        drawn = {k for s in spec(runbook).steps if (k := DRAWN_BY.get(s.function))}
        assert {k for k, _ in executed} <= drawn and all(title for _, title in executed), (runbook, executed)
        assert pictures_in_html(r.client.get(link).text) == executed
        kept.setdefault(runbook, set()).update(k for k, _ in executed)
    return kept


def assert_no_unfilled_placeholder(r, iid: str) -> None:
    """The receiver's outputs for an incident (its run records, its page, its JSON) carry every tenant and surface
    filled in: a placeholder only inside a template an operator gave (a run's parameters, the manifest template)."""
    records = [json.loads(p.read_text()) for p in sorted((r.out / iid / "runs").glob("*/*.result.json"))]
    assert records
    templates = []
    for record in records:
        assert not unfilled_in_record(record), unfilled_in_record(record)
        templates += [v for _, v in strings({"p": record.get("parameters"), "t": record.get("target")})]
    shown = r.client.get(f"/incidents/{iid}", headers={"Accept": "application/json"}).text
    page = html.unescape(re.sub(r"<[^>]+>", "", r.client.get(f"/incidents/{iid}").text))
    for text in (shown, page):
        assert not unfilled(text, templates), unfilled(text, templates)
