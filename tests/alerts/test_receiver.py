"""The receiver's contract, against a fake recsys-checks: auth, bad input, matching, triage, dedup, queue, files.

Each test but the parser's starts a receiver (a process: marked subprocess, so none is in `make test-fast`); the
longer ones are also marked slow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from alertkit import TOKEN, alert, payload

BROKEN_SEARCH = [{"tenant": "demo", "surface": "home", "probe": "ok"},
                 {"tenant": "demo", "surface": "search", "probe": "fail", "why": "popularity blob missing"}]


@pytest.mark.subprocess
def test_refuses_to_start_without_a_token_or_with_a_short_one(tmp_path):
    base = [sys.executable, "-m", "recsys_checks.cli", "alerts", "serve", "--out", str(tmp_path / "out")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    proc = subprocess.run(base, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "RECSYS_ALERTS_TOKEN is not set" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = subprocess.run(base, env={**env, "RECSYS_ALERTS_TOKEN": "short"}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "shorter than 8" in proc.stderr
    proc = subprocess.run([*base, "--listen", "example.com:80"], env={**env, "RECSYS_ALERTS_TOKEN": TOKEN},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--listen" in proc.stderr
    assert not (tmp_path / "out").exists()  # nothing was made before the refusal


def test_binds_loopback_by_default():
    from recsys_checks.cli.commands import build_parser
    from recsys_checks.cli.receiver import DEFAULT_LISTEN

    args = build_parser().parse_args(["alerts", "serve", "--out", "x"])
    assert args.listen == DEFAULT_LISTEN and DEFAULT_LISTEN.startswith("127.0.0.1:")


@pytest.mark.subprocess
def test_no_token_or_a_wrong_one_is_401_and_runs_nothing(receiver):
    with receiver(fleet=BROKEN_SEARCH) as r:
        body = payload(alert())
        for token in (None, "wrong-token-" + "y" * 20, TOKEN + "x", TOKEN[:-1]):
            response = r.post(body, token=token)
            assert response.status_code == 401, response.text
        assert r.post(body, headers={"Authorization": f"Basic {TOKEN}"}, token=None).status_code == 401
        assert r.rows() == [] and r.calls() == []
        assert not [p for p in r.out.iterdir() if not p.name.startswith(".")]


@pytest.mark.subprocess
def test_malformed_bodies_are_400_with_one_line_and_record_nothing(receiver):
    good = alert()
    cases = {
        b"not json": "not JSON",
        json.dumps([1]).encode(): "not a JSON object",
        json.dumps({**payload(good), "version": "3"}).encode(): "version",
        json.dumps({**payload(good), "alerts": {}}).encode(): "alerts: expected a list",
        json.dumps(payload(good, {**good, "fingerprint": "f2", "startsAt": "yesterday"})).encode():
            "alerts[1].startsAt",
        json.dumps(payload({**good, "status": "burning"})).encode(): "alerts[0].status",
        json.dumps(payload({**good, "labels": {"severity": "page"}})).encode(): "alertname",
        json.dumps(payload({**good, "labels": {"alertname": "X", "n": 1}})).encode(): "alerts[0].labels.n",
        b"\xff\xfe": "UTF-8",
    }
    with receiver(fleet=BROKEN_SEARCH) as r:
        for raw, expected in cases.items():
            response = r.post(None, raw=raw)
            assert response.status_code == 400, (raw, response.text)
            assert expected in response.text and len(response.text.strip().splitlines()) == 1, response.text
        assert r.rows() == [] and r.calls() == []  # the good first alert of a bad payload was not recorded either


@pytest.mark.subprocess
def test_a_body_over_the_limit_is_413(receiver):
    with receiver("--max-body", "2048", fleet=BROKEN_SEARCH) as r:
        big = payload(*[alert(fingerprint=f"f{i}") for i in range(40)])
        response = r.post(big)
        assert response.status_code == 413 and "2048" in response.text
        # Chunked, without a Content-Length: counted as it arrives.
        raw = json.dumps(big).encode()
        response = r.client.post("/alertmanager", content=iter([raw[i:i + 500] for i in range(0, len(raw), 500)]),
                                 headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 413
        assert r.rows() == []


@pytest.mark.subprocess
def test_triage_runs_the_runbooks_for_the_broken_surface_of_two_only(receiver):
    with receiver("--triage-ttl", "0", fleet=BROKEN_SEARCH, plan="abcdef123456", cause="missing_blob") as r:
        assert r.post(payload(alert())).status_code == 200
        rows = r.wait_done()
        assert {(x["tenant"], x["surface"]) for x in rows} == {("demo", "search")}
        assert {x["runbook"] for x in rows} == {"empty-recs", "rollback-config-rules"}  # both specs list the alert
        row = next(x for x in rows if x["runbook"] == "empty-recs")
        assert row["status"] == "finished" and row["verdict"] == "action-required" and row["cause"] == "missing_blob"
        assert row["plan_id"] == "abcdef123456"
        assert row["apply_command"].startswith(
            "recsys-checks runbook run empty-recs -p tenant=demo -p surface=search --execute --plan-id abcdef123456")
        runs = r.calls(("runbook", "run"))
        assert len(runs) == 2 and all("--execute" not in c for c in runs)
        assert {c[2] for c in runs} == {"empty-recs", "rollback-config-rules"}
        # Each incident keeps the alert, the run records and the notebooks rendered to HTML.
        folder = r.out / row["id"]
        assert json.loads((folder / "alert.json").read_text())["fingerprint"] == "f00d01"
        assert json.loads((folder / "runs" / "01-empty-recs" / "empty-recs.result.json").read_text())["verdict"]
        assert "<html" in (folder / "runs" / "01-empty-recs" / "empty-recs.html").read_text().lower()
        page = r.client.get(f"/incidents/{row['id']}").text
        assert page.index("action-required") < page.index("abcdef123456") < page.index("<iframe")
        assert "--execute --plan-id abcdef123456" in page
        assert r.client.get(f"/incidents/{row['id']}/runs/1/notebook").status_code == 200
        listing = r.client.get("/incidents").text
        assert "RecsysEmptyRecommendationsHigh" in listing and "missing_blob" in listing


@pytest.mark.subprocess
@pytest.mark.slow
def test_runs_of_one_surface_never_overlap_whatever_the_workers(receiver):
    """Two alerts of one fault name the same surface: with two workers their runbooks still run one at a time (each
    waits for the one before, and says how long), and the waiting is not counted as the run's own seconds."""
    with receiver("--workers", "2", "--triage-ttl", "0", fleet=BROKEN_SEARCH, run_sleep=1.0) as r:
        posted = time.monotonic()
        r.post(payload(alert(), alert("RecsysHighErrorRate", "f00d02")))
        runs = [x for x in r.wait_done(count=2) if x.get("seconds") is not None]
        elapsed = time.monotonic() - posted
        assert len(runs) >= 3 and {(x["tenant"], x["surface"]) for x in runs} == {("demo", "search")}
        own = sum(x["seconds"] for x in runs)
        assert elapsed >= own * 0.95, (elapsed, own)  # one after another: two workers would have halved it
        assert sum(x["waited_seconds"] for x in runs) >= 0.8 and all(x["seconds"] < 5 for x in runs)


@pytest.mark.subprocess
def test_the_same_alert_notified_again_runs_nothing_new(receiver):
    with receiver(fleet=BROKEN_SEARCH) as r:
        first = r.post(payload(alert())).json()
        r.wait_done()
        # Again, in another payload, with startsAt written another way (the same instant): a duplicate.
        again = r.post(payload(alert(starts="2026-12-03T10:00:00.000+00:00"), alert())).json()
        assert first["new"] and again["new"] == [] and again["duplicates"] == 2
        assert len(r.calls(("runbook", "run"))) == 2
        # A new startsAt is a new firing of the alert: a new incident.
        assert r.post(payload(alert(starts="2026-12-03T12:00:00Z"))).json()["new"]
        rows = r.wait_done(count=2)
        assert len({x["id"] for x in rows}) == 2 and len(r.calls(("runbook", "run"))) == 4
        assert r.incident(first["new"][0])["notified"] == 3


@pytest.mark.slow
def test_a_resolved_alert_is_recorded_against_its_incident(receiver):
    with receiver(fleet=BROKEN_SEARCH) as r:
        iid = r.post(payload(alert())).json()["new"][0]
        r.wait_done()
        answer = r.post(payload(alert(status="resolved"))).json()
        assert answer["resolved"] == 1 and answer["new"] == []
        incident = r.incident(iid)
        assert incident["resolved_at"] == "2026-12-03T11:00:00Z" and incident["status"] == "finished"
        assert len(r.calls(("runbook", "run"))) == 2
        # A resolved alert never seen firing is recorded, not run.
        r.post(payload(alert(fingerprint="other", status="resolved")))
        other = [x for x in r.rows() if x["fingerprint"] == "other"]
        assert other and all(x["status"] == "not-run" and x["resolved_at"] for x in other)
        assert len(r.calls(("runbook", "run"))) == 2


@pytest.mark.subprocess
def test_an_alert_no_runbook_names_is_recorded_not_dropped(receiver):
    with receiver(fleet=BROKEN_SEARCH) as r:
        r.post(payload(alert("SomethingElseEntirely", "beef01")))
        rows = r.wait_done()
        assert [(x["alert"], x["status"], x["runbook"]) for x in rows] == [("SomethingElseEntirely", "no-runbook", None)]
        assert r.calls() == []


@pytest.mark.subprocess
def test_a_healthy_fleet_is_nothing_found_and_an_unreadable_one_is_not(receiver):
    healthy = [{"tenant": "demo", "surface": "home"}, {"tenant": "demo", "surface": "search"}]
    with receiver("--triage-ttl", "0", fleet=healthy) as r:
        r.post(payload(alert()))
        rows = r.wait_done()
        assert {x["status"] for x in rows} == {"nothing-found"} and r.calls(("runbook", "run")) == []
        assert "2 surface(s) looked at, 0 broken" in rows[0]["reason"]
        # The registry cannot be listed: unknown, not healthy.
        r.set_state(freshness="unread")
        r.post(payload(alert(fingerprint="f2")))
        rows = [x for x in r.wait_done(count=2) if x["fingerprint"] == "f2"]
        assert {x["status"] for x in rows} == {"not-run"}
        assert all("could not read" in x["reason"] and "nothing found" not in x["reason"] for x in rows)
        # A surface whose probe cannot look is a suspect (unknown), run after nothing broken was found.
        r.set_state(freshness="ok", fleet=[{"tenant": "demo", "surface": "home"},
                                           {"tenant": "demo", "surface": "search", "probe": "unread"}])
        r.post(payload(alert(fingerprint="f3")))
        rows = [x for x in r.wait_done(count=3) if x["fingerprint"] == "f3"]
        assert {(x["surface"], x["status"]) for x in rows} == {("search", "finished")}


@pytest.mark.slow
def test_staleness_triage_reads_the_freshness_scan(receiver):
    fleet = [{"tenant": "acme", "surface": "home", "condition": "stale", "age_seconds": 300000},
             {"tenant": "demo", "surface": "home"}, {"tenant": "demo", "surface": "search"}]
    with receiver("--triage-ttl", "0", fleet=fleet) as r:
        r.post(payload(alert("RecsysManifestStale")))
        rows = r.wait_done()
        assert {(x["tenant"], x["surface"]) for x in rows} == {("acme", "home")}
        assert {x["runbook"] for x in rows} == {"stale-artifacts", "stale-manifest"}
        assert r.calls(("recs", "probe")) == []  # the scan explained it: no probes
        # A fresh registry whose service serves an older version: the probes' served-vs-published check finds it.
        r.set_state(fleet=[{"tenant": "demo", "surface": "home"},
                           {"tenant": "demo", "surface": "search", "probe": "stale"}])
        r.post(payload(alert("RecsysManifestStale", "f2")))
        rows = [x for x in r.wait_done(count=2) if x["fingerprint"] == "f2"]
        assert {(x["tenant"], x["surface"]) for x in rows} == {("demo", "search")}


@pytest.mark.slow
def test_artifact_load_alert_is_narrowed_by_its_kind_label(receiver):
    fleet = [{"tenant": "demo", "surface": "home", "condition": "invalid",
              "summary": "demo/home is invalid: cooc blob for demo/home is missing"},
             {"tenant": "demo", "surface": "search", "condition": "invalid",
              "summary": "demo/search is invalid: popularity blob for demo/search is missing"}]
    with receiver("--triage-ttl", "0", fleet=fleet) as r:
        r.post(payload(alert("RecsysArtifactLoadFailures", labels={"kind": "popularity"})))
        rows = r.wait_done()
        assert {(x["tenant"], x["surface"]) for x in rows} == {("demo", "search")}
        assert all("--deep" in c for c in r.calls(("freshness",)))


@pytest.mark.slow
def test_worst_surfaces_first_and_the_rest_listed(receiver):
    fleet = [{"tenant": "t", "surface": f"s{i}", "condition": "stale", "age_seconds": 1000 * i} for i in range(5)]
    with receiver("--max-surfaces", "2", "--triage-ttl", "0", fleet=fleet) as r:
        r.post(payload(alert("RecsysManifestStale")))
        rows = r.wait_done()
        ran = {x["surface"] for x in rows if x["status"] == "finished"}
        listed = {x["surface"] for x in rows if x["status"] == "not-run"}
        assert ran == {"s4", "s3"} and listed == {"s2", "s1", "s0"}  # the oldest first
        assert all("--max-surfaces" in x["reason"] for x in rows if x["status"] == "not-run")
        incident = r.incident(rows[0]["id"])
        assert all(x["dry_run_command"].startswith("recsys-checks runbook run") for x in incident["rows"])


@pytest.mark.slow
def test_labels_that_name_the_surface_skip_the_triage(receiver):
    with receiver("--tenant-label", "org", "--surface-label", "surface", "-p", "max_age=48h",
                  fleet=BROKEN_SEARCH) as r:
        r.post(payload(alert(labels={"org": "acme", "surface": "home"})))
        rows = r.wait_done()
        assert {(x["tenant"], x["surface"]) for x in rows} == {("acme", "home")}
        assert r.calls(("freshness",)) == [] and r.calls(("recs", "probe")) == []
        run = next(c for c in r.calls(("runbook", "run")) if c[2] == "empty-recs")
        assert "max_age=48h" in run  # passed to the runbook that declares it
        # An unsafe label value is refused, recorded, and runs nothing.
        r.post(payload(alert(fingerprint="f2", labels={"org": "../etc", "surface": "home"})))
        bad = [x for x in r.wait_done(count=2) if x["fingerprint"] == "f2"]
        assert {x["status"] for x in bad} == {"not-run"} and "unsafe tenant" in bad[0]["reason"]
        # Only the tenant label: the triage looks at that tenant only.
        r.post(payload(alert(fingerprint="f3", labels={"org": "demo"})))
        r.wait_done(count=3)
        assert ["freshness", "--json", "--tenant", "demo"] in r.calls(("freshness",))


@pytest.mark.slow
def test_a_full_queue_records_not_run_and_runs_it_when_notified_again_with_room(receiver):
    with receiver("--queue-size", "1", "--workers", "1", fleet=BROKEN_SEARCH, run_sleep=1.0) as r:
        answers = [r.post(payload(alert(fingerprint=f"q{i}"))).json() for i in range(4)]
        assert sum(a["not_run"] for a in answers) >= 2
        rows = r.wait_done(timeout=60, count=4)
        refused = {x["fingerprint"] for x in rows if x["status"] == "not-run"}
        assert refused and all(x["reason"] == "queue full" for x in rows if x["status"] == "not-run")
        ran = {x["fingerprint"] for x in rows if x["status"] == "finished"}
        assert ran | refused == {"q0", "q1", "q2", "q3"} and not ran & refused
        again = r.post(payload(alert(fingerprint=sorted(refused)[0]))).json()
        assert again["requeued"] == 1
        rows = r.wait_done(timeout=60)
        assert {x["status"] for x in rows if x["fingerprint"] == sorted(refused)[0]} == {"finished"}
        counts = {}
        for c in r.calls(("runbook", "run")):
            counts[(c[2], c[c.index("--out") + 1].split("/runs/")[0])] = counts.get((c[2], c[c.index("--out") + 1]
                                                                                      .split("/runs/")[0]), 0) + 1
        assert set(counts.values()) == {1}  # nothing ran twice


@pytest.mark.slow
def test_healthz_and_metrics(receiver):
    with receiver(fleet=BROKEN_SEARCH) as r:
        r.post(payload(alert()))
        r.wait_done()
        health = r.client.get("/healthz").json()
        assert health["status"] == "ok" and health["queue_depth"] == 0
        text = r.client.get("/metrics").text
        assert "recsys_alerts_queue_depth 0.0" in text
        assert 'recsys_alerts_runs_total{verdict="action-required"} 2.0' in text
        assert "recsys_alerts_run_seconds_count 2.0" in text


@pytest.mark.slow
def test_stopped_with_sigterm_exits_0(receiver):
    with receiver(fleet=BROKEN_SEARCH) as r:
        assert r.stop() == 0
        assert "stopped" in r.log()
