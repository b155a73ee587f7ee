"""The receiver's pieces on their own: the payload, the triage's judgement, the plan id, the store's restart rule."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
from alertkit import alert, payload
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys_checks.alerts.checks import FleetScan, Probe
from recsys_checks.alerts.incident import Incident, aggregate, incident_id
from recsys_checks.alerts.payload import parse
from recsys_checks.alerts.server import parse_listen, parse_param, plan_id_of
from recsys_checks.alerts.store import Store
from recsys_checks.alerts.triage import Observed, Triager, judge
from recsys_checks.core.errors import BadPayload, ConfigError


def test_one_instant_written_two_ways_is_one_key():
    _, (a, b) = parse(json.dumps(payload(alert(starts="2026-12-03T10:00:00.123456789Z"),
                                         alert(starts="2026-12-03T11:00:00.123456+01:00"))).encode())
    assert a.key == b.key and incident_id(*a.key) == incident_id(*b.key)
    assert incident_id(*a.key).startswith("20261203T100000Z-")


def test_a_missing_fingerprint_is_the_hash_of_the_labels():
    raw = {**alert(), "fingerprint": ""}
    _, (a,) = parse(json.dumps(payload(raw)).encode())
    _, (b,) = parse(json.dumps(payload({**raw, "labels": dict(reversed(list(raw["labels"].items())))})).encode())
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 16


@pytest.mark.parametrize("bad", [{"fingerprint": "../x"}, {"endsAt": 5}, {"annotations": {"a": "x" * 5000}}])
def test_bad_fields_are_refused(bad):
    with pytest.raises(BadPayload):
        parse(json.dumps(payload({**alert(), **bad})).encode())


def _scan(*rows):
    return FleetScan(rows=[{"tenant": t, "surface": s, "condition": c, "status": "ok" if c == "healthy" else "fail",
                            "summary": text or f"{t}/{s} is {c}", "age_seconds": age}
                           for t, s, c, age, text in rows])


def _probe(t, s, outcome="ok", summary="10 items"):
    checks = {"recs.probe": {"status": "fail" if outcome == "fail" else "ok", "summary": summary}}
    return Probe(t, s, outcome, checks, summary)


def test_serving_triage_picks_the_failing_probe_then_the_unknown():
    scan = _scan(("a", "x", "healthy", 1, ""), ("a", "y", "healthy", 1, ""), ("a", "z", "healthy", 1, ""))
    probes = {("a", "x"): _probe("a", "x"), ("a", "y"): _probe("a", "y", "unread", "timed out"),
              ("a", "z"): _probe("a", "z", "fail", "a/z is empty")}
    out = judge("serving", Observed(scan, probes, [], 0.1), kind_label=None, max_probes=10)
    assert [(s.surface, s.unknown) for s in out.suspects] == [("z", False), ("y", True)]
    assert out.looked_at == 3


def test_staleness_ranks_the_oldest_first_and_ignores_an_empty_answer():
    scan = _scan(("a", "x", "stale", 100, ""), ("a", "y", "stale", 900, ""), ("a", "z", "healthy", 1, ""))
    probes = {("a", "z"): _probe("a", "z", "fail")}
    out = judge("staleness", Observed(scan, probes, [], 0.1), kind_label=None, max_probes=10)
    assert [s.surface for s in out.suspects] == ["y", "x"]


def test_a_scan_that_could_not_read_is_not_nothing_found():
    out = judge("staleness", Observed(FleetScan(unread="the registry did not answer"), {}, [], 0.1),
                kind_label=None, max_probes=10)
    assert out.suspects == [] and out.unread == ["the registry did not answer"]
    out = judge("serving", Observed(_scan(("a", "x", "healthy", 1, "")), {}, [("a", "x")], 0.1),
                kind_label=None, max_probes=0)
    assert [(s.surface, s.unknown) for s in out.suspects] == [("x", True)]  # not probed: unknown, not healthy


def test_an_artifact_alert_keeps_surfaces_broken_for_its_kind_or_for_every_kind():
    scan = _scan(("a", "cooc", "invalid", 1, "a/cooc: cooc blob is missing"),
                 ("a", "pop", "invalid", 1, "a/pop: popularity blob is missing"),
                 ("a", "all", "invalid", 1, "a/all: the manifest is not valid JSON"))
    out = judge("artifacts", Observed(scan, {}, [], 0.1), kind_label="popularity", max_probes=10)
    assert sorted(s.surface for s in out.suspects) == ["all", "pop"]


def test_the_plan_id_is_the_planned_fix_first_action_plan_hash():
    record = {"steps": [{"role": "act", "status": "planned",
                         "result": {"actions": [{"plan": {"plan_hash": "0888603291b3" + "a" * 52}}]}}]}
    assert plan_id_of(record) == "0888603291b3"
    # Read from the record's data, never from its text: a next action naming a plan is not a planned fix.
    assert plan_id_of({"steps": [], "next_action": "dry run: ... (plan 3f9c2a1b7e4d: re-run)"}) is None
    assert plan_id_of({"steps": [{"role": "act", "status": "not-needed"}]}) is None


def test_aggregate_status():
    rows = lambda *s: list(s)  # noqa: E731
    assert aggregate(rows("finished", "not-run")) == "finished"
    assert aggregate(rows("running", "finished")) == "running"
    assert aggregate(rows("interrupted", "finished")) == "interrupted"
    assert aggregate(rows("nothing-found", "nothing-found")) == "nothing-found"
    assert aggregate(rows("not-run", "nothing-found")) == "not-run"


def test_a_store_read_back_shows_what_was_running_as_interrupted(tmp_path):
    store = Store(tmp_path)
    iid = "20261203T100000Z-0123456789ab"
    doc = {"id": iid, "fingerprint": "f", "starts_at_normal": "x", "status": "running", "phase": "run",
           "rows": [{"status": "finished", "verdict": "healthy"}, {"status": "running", "verdict": None}]}
    store.save_now(Incident.from_dict(doc))
    (tmp_path / "20261203T100000Z-notanincident").mkdir()
    again = Store(tmp_path)
    assert again.load() == (1, 1, [])
    assert again.incidents[iid].status == "interrupted"
    assert [r.status for r in again.incidents[iid].rows] == ["finished", "interrupted"]
    assert json.loads((tmp_path / iid / "incident.json").read_text())["status"] == "interrupted"
    store.close(), again.close()


def test_listen_and_param_settings():
    assert parse_listen("127.0.0.1:0") == ("127.0.0.1", 0) and parse_listen("[::1]:9097") == ("::1", 9097)
    for bad in ("9097", "host:9097", "127.0.0.1:99999"):
        with pytest.raises(ConfigError):
            parse_listen(bad)
    assert parse_param("stale-manifest:user_id=probe") == ("stale-manifest", "user_id", "probe")
    assert parse_param("max_age=48h") == (None, "max_age", "48h")
    for bad in ("execute=true", "plan_id=abc", "noequals"):
        with pytest.raises(ConfigError):
            parse_param(bad)


class SlowCli:
    """A recsys-checks whose probe of a/y hangs; counts the scans."""

    triage_timeout = 0.1

    def __init__(self) -> None:
        self.scans = 0

    async def freshness(self, deep=False, tenant=None):
        self.scans += 1
        await asyncio.sleep(0.05)
        return _scan(("a", "x", "healthy", 1, ""), ("a", "y", "healthy", 1, ""))

    async def probe(self, tenant, surface):
        if surface == "y":
            await asyncio.sleep(30)
        return _probe(tenant, surface)


def test_probes_that_outlast_the_triage_deadline_are_unknown_not_healthy():
    started = time.monotonic()
    out = asyncio.run(Triager(SlowCli(), max_probes=10, ttl=0).triage("RecsysEmptyRecommendationsHigh"))
    assert time.monotonic() - started < 5
    assert [(s.surface, s.unknown) for s in out.suspects] == [("y", True)]
    assert "deadline" in out.suspects[0].signals[0]


def test_alerts_of_one_kind_within_the_ttl_share_one_triage():
    cli = SlowCli()
    cli.probe = lambda t, s: asyncio.sleep(0, _probe(t, s))  # type: ignore[method-assign]
    triager = Triager(cli, max_probes=10, ttl=60)

    async def three():
        return await asyncio.gather(*(triager.triage("RecsysEmptyRecommendationsHigh") for _ in range(3)),
                                    triager.triage("RecsysManifestStale"))

    asyncio.run(three())
    assert cli.scans == 2  # one per kind of triage, not one per alert


SLACK_TEXT = st.text(alphabet=st.sampled_from("<>&!|:/ahttps.@#;amplgt"), max_size=40)


@settings(max_examples=150, deadline=None)
@given(name=SLACK_TEXT, reason=SLACK_TEXT, tenant=SLACK_TEXT)
def test_a_notification_carries_no_slack_control_sequence_whatever_the_labels(name, reason, tenant):
    """Every text of a notification has ``& < >`` escaped (the oracle: unescaping gives back what was shown)."""
    from recsys_checks.alerts.incident import Row
    from recsys_checks.alerts.notify import message

    incident = Incident(id="20261203T100000Z-aaaaaaaaaaaa", alert=name or "A", status="not-run",
                        rows=[Row(status="not-run", runbook="empty-recs", tenant=tenant or None, reason=reason or None)])
    text = message(incident, "http://receiver/incidents/x")
    assert "<" not in text and ">" not in text
    assert re.sub(r"&(amp|lt|gt);", "", text).count("&") == 0
    shown = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert (name or "A") in shown and (reason in shown if reason and not tenant else True)
