"""The receiver on a bad disk and against hostile payloads, in process (httpx's ASGI transport over the real app and
store): nothing an alert sends crashes it, nothing it could not write is answered 200, nothing outside the folders it
made is written, and what it writes is standard, compact JSON."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from alertkit import TOKEN, alert, payload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys_checks.alerts import store as store_module
from recsys_checks.alerts import web
from recsys_checks.alerts.checks import ChecksCli
from recsys_checks.alerts.incident import Incident, incident_id
from recsys_checks.alerts.payload import MAX_ALERT_BYTES, BadPayload, normal_time, parse
from recsys_checks.alerts.server import Receiver, Settings
from recsys_checks.alerts.store import Store
from recsys_checks.alerts.web import build_app

NO_RUNBOOK = "AlertNoRunbookLists"  # an alert no spec lists: recorded, nothing runs


@asynccontextmanager
async def served(out: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The receiver's app on ``out`` (no runbook specs: nothing runs), started and stopped as its lifespan does."""
    settings = Settings(host="127.0.0.1", port=0, out=out, token=TOKEN)
    cli = ChecksCli([sys.executable, "-c", "raise SystemExit(2)"], triage_timeout=5, run_timeout=10)
    store = Store(out)
    store.check_writable()
    store.load()
    receiver = Receiver(settings, cli, {}, store)
    await receiver.start()
    transport = httpx.ASGITransport(app=build_app(receiver))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://receiver",
                                     headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as client:
            yield client
    finally:
        await receiver.stop()


def run(test: Callable[[], Any]) -> Any:
    return asyncio.run(test())


async def post(client: httpx.AsyncClient, body: object = None, raw: bytes | None = None) -> httpx.Response:
    return await client.post("/alertmanager", content=raw if raw is not None else json.dumps(body))


async def listed(client: httpx.AsyncClient) -> list:
    return (await client.get("/incidents?format=json")).json()


def iid(a: dict) -> str:
    return incident_id(a["fingerprint"], normal_time(a["startsAt"]))


def test_an_alert_that_cannot_be_written_is_503_and_its_redelivery_is_kept(tmp_path, monkeypatch):
    """A full disk: 503 naming why, nothing kept in memory; the same delivery once the disk has room: 200, on disk."""
    real = store_module.write_atomic

    def full(path, data, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    a = alert(NO_RUNBOOK)

    async def go():
        async with served(tmp_path / "out") as client:
            monkeypatch.setattr(store_module, "write_atomic", full)
            refused = await post(client, payload(a))
            assert refused.status_code == 503 and "No space left" in refused.text and "not accepted" in refused.text
            assert await listed(client) == []
            monkeypatch.setattr(store_module, "write_atomic", real)
            kept = await post(client, payload(a))
            assert kept.status_code == 200 and kept.json()["new"] == [iid(a)]

    run(go)
    assert json.loads((tmp_path / "out" / iid(a) / "alert.json").read_text())["fingerprint"] == a["fingerprint"]


def test_a_written_alert_is_200(tmp_path):
    """Quiet: a disk with room answers 200 and the incident is on disk."""
    a = alert(NO_RUNBOOK)

    async def go():
        async with served(tmp_path / "out") as client:
            assert (await post(client, payload(a))).status_code == 200

    run(go)
    assert (tmp_path / "out" / iid(a) / "incident.json").is_file()


def test_a_symlinked_incident_folder_is_not_followed(tmp_path):
    """``<out>/<id>`` planted as a link to elsewhere: nothing is written there, and the alert is not accepted."""
    a = alert(NO_RUNBOOK)
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / iid(a)).symlink_to(elsewhere)

    async def go():
        async with served(out) as client:
            return await post(client, payload(a))

    answer = run(go)
    assert answer.status_code == 503 and "symbolic link" in answer.text
    assert list(elsewhere.iterdir()) == []


@pytest.mark.slow
def test_thousands_of_alerts_past_the_save_deadline_are_all_on_disk_after_a_restart(tmp_path, monkeypatch):
    """The 503 after the save deadline says they are still being written, and they are: every one after a restart.
    (2,000 alerts are about 4,000 files written and fsynced one by one: far more than a 50 ms deadline allows.)"""
    monkeypatch.setattr(web, "SAVE_TIMEOUT", 0.05)
    alerts = [alert(NO_RUNBOOK, fingerprint=f"b{i:05d}") for i in range(2000)]
    out = tmp_path / "out"

    async def go():
        async with served(out) as client:
            answer = await post(client, payload(*alerts))
            assert answer.status_code == 503 and "still being written" in answer.text, answer.text

    run(go)
    again = Store(out)
    count, _, unreadable = again.load()
    assert count == len(alerts) and unreadable == []
    assert {iid(a) for a in alerts} == {p.parent.name for p in out.glob("*/alert.json")}


def test_alerts_are_kept_compact_within_the_bound(tmp_path):
    """An alert of many labels takes on disk about what it took in the body (no indentation)."""
    a = alert(NO_RUNBOOK, labels={f"l{i}": "v" * 1000 for i in range(90)})

    async def go():
        async with served(tmp_path / "out") as client:
            assert (await post(client, payload(a))).status_code == 200

    run(go)
    kept = (tmp_path / "out" / iid(a) / "alert.json").stat().st_size
    assert kept <= len(json.dumps(a)) + 16 and kept <= MAX_ALERT_BYTES


@pytest.mark.parametrize("raw, expected", [
    (b'{"version": "4", "alerts": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", "nested"),
    (json.dumps(payload({**alert(), "extra": {"a": {"b": [1]}}})).encode(), "nests 6 deep"),
    (json.dumps(payload({**alert(), "startsAt": "9999-12-31T23:59:59-23:59"})).encode(), "alerts[0].startsAt"),
    (json.dumps(payload({**alert(), "startsAt": "0001-01-01T00:00:00+23:59"})).encode(), "alerts[0].startsAt"),
    (json.dumps(payload({**alert(), "extra": 1})).encode().replace(b'"extra": 1', b'"extra": NaN'), "NaN"),
    (json.dumps(payload({**alert(), "extra": 1})).encode().replace(b'"extra": 1', b'"extra": 1e400'), "range"),
    (json.dumps(payload({**alert(), "extra": "x" * (MAX_ALERT_BYTES + 1)})).encode(), "bytes as JSON"),
])
def test_hostile_bodies_are_400_with_one_line(tmp_path, raw, expected):
    """Nested 100,000 deep, deeper than Alertmanager nests, a time out of range, NaN, 1e400, a huge alert: 400."""

    async def go():
        async with served(tmp_path / "out") as client:
            answer = await post(client, raw=raw)
            assert answer.status_code == 400 and expected in answer.text, answer.text
            assert len(answer.text.strip().splitlines()) == 1
            assert await listed(client) == []

    run(go)


@settings(max_examples=200, deadline=None)
@given(year=st.integers(1, 9999), hours=st.integers(0, 23), minutes=st.integers(0, 59), sign=st.sampled_from("+-"),
       edge=st.sampled_from(["01-01T00:00:00", "12-31T23:59:59", "06-15T12:00:00"]))
def test_any_rfc3339_time_is_parsed_or_refused_never_a_crash(year, hours, minutes, sign, edge):
    """Every well-formed time, offsets to ±23:59 at the ends of the calendar: an alert, or BadPayload naming it."""
    starts = f"{year:04d}-{edge}{sign}{hours:02d}:{minutes:02d}"
    try:
        _, (parsed,) = parse(json.dumps(payload(alert(starts=starts))).encode())
    except BadPayload as exc:
        assert "alerts[0].startsAt" in str(exc)
    else:
        assert parsed.key[1].endswith("Z")


def _incident_doc(iid_: str) -> dict:
    return Incident(id=iid_, alert="X", labels={"a": "b"}, status="finished").to_dict()


FIELDS = ["labels", "rows", "notified", "status", "runbooks", "triage", "id", "summary"]
WRONG = st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2), st.just({"x": [1]}),
                  st.none(), st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=WRONG)
def test_an_incident_file_of_any_shape_is_loaded_or_set_aside_and_the_others_load(tmp_path_factory, field, value):
    """One incident.json with a field of another type: the good one loads; the bad one loads or is set aside."""
    root = tmp_path_factory.mktemp("out")
    good, bad = "20261203T100000Z-aaaaaaaaaaaa", "20261203T100000Z-bbbbbbbbbbbb"
    for name in (good, bad):
        (root / name).mkdir()
    (root / good / "incident.json").write_text(json.dumps(_incident_doc(good)))
    (root / bad / "incident.json").write_text(json.dumps({**_incident_doc(bad), field: value}))
    store = Store(root)
    count, _, unreadable = store.load()
    assert good in store.incidents and store.incidents[good].status == "finished"
    if unreadable:
        assert count == 1 and unreadable[0].startswith(bad) and store.incidents[bad].status == "unreadable"
        assert (root / bad / "incident.json.unreadable").is_file() and not (root / bad / "incident.json").exists()
    else:
        assert count == 2
        json.dumps(store.incidents[bad].to_dict())


def test_an_unreadable_incident_is_listed_as_such(tmp_path):
    """Labels that are a list: listed `unreadable` with the reason, and the receiver starts."""
    out = tmp_path / "out"
    bad = "20261203T100000Z-cccccccccccc"
    (out / bad).mkdir(parents=True)
    (out / bad / "incident.json").write_text(json.dumps({**_incident_doc(bad), "labels": ["x"]}))

    async def go():
        async with served(out) as client:
            return await listed(client)

    rows = run(go)
    assert [(r["id"], r["status"]) for r in rows] == [(bad, "unreadable")] and "labels" in rows[0]["reason"]


def test_what_is_written_is_standard_json(tmp_path):
    """A run record's NaN or Infinity never reaches incident.json as such."""
    store = Store(tmp_path)
    incident = Incident(id="20261203T100000Z-dddddddddddd", rows=[])
    incident.triaged({"seconds": float("nan"), "x": [float("inf")]})
    store.save_now(incident)
    text = (tmp_path / incident.id / "incident.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} written"))
