"""A storm: 1,000 alerts in one burst (250 fingerprints, each notified four times, from ten senders at once).

Every distinct alert ends with its run records or a recorded "not run: queue full"; nothing is lost and nothing runs
twice; /healthz answers throughout; a second storm of the same size leaves the receiver's memory where the first
left it."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from alertkit import TOKEN, alert, payload

DISTINCT = 250
REPEATS = 4
PER_POST = 50
SENDERS = 10
BROKEN_SEARCH = [{"tenant": "demo", "surface": "home"}, {"tenant": "demo", "surface": "search", "probe": "fail"}]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def storm(r, tag: str) -> set[str]:
    names = ["RecsysEmptyRecommendationsHigh"] * 4 + ["NoSuchRunbookAlert"]
    alerts = [alert(names[i % len(names)], f"{tag}{i:04d}", starts=f"2026-12-03T10:{i % 60:02d}:00Z")
              for i in range(DISTINCT)] * REPEATS
    random.Random(tag).shuffle(alerts)
    posts = [payload(*alerts[i:i + PER_POST]) for i in range(0, len(alerts), PER_POST)]
    with ThreadPoolExecutor(SENDERS) as pool:
        codes = list(pool.map(lambda body: httpx.post(r.url + "/alertmanager", json=body, timeout=60,
                                                      headers={"Authorization": f"Bearer {TOKEN}"}).status_code,
                              posts))
    assert codes == [200] * len(posts)
    return {a["fingerprint"] for a in alerts}


@pytest.mark.slow
def test_a_storm_of_1000_alerts_loses_nothing_and_runs_nothing_twice(receiver):
    with receiver("--queue-size", "40", "--workers", "4", "--triage-ttl", "30", fleet=BROKEN_SEARCH) as r:
        slowest, failures, stop = [0.0], [], threading.Event()

        def watch() -> None:
            with httpx.Client(base_url=r.url, timeout=10) as client:
                while not stop.is_set():
                    started = time.monotonic()
                    try:
                        if client.get("/healthz").status_code != 200:
                            failures.append("status")
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))
                    slowest[0] = max(slowest[0], time.monotonic() - started)
                    time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            first = storm(r, "a")
            r.wait_done(timeout=240, count=DISTINCT)
            before = rss_kib(r.proc.pid)
            second = storm(r, "b")
            rows = r.wait_done(timeout=240, count=2 * DISTINCT)
            after = rss_kib(r.proc.pid)
        finally:
            stop.set()
            watcher.join()
        assert not failures and slowest[0] < 2.0, (failures[:3], slowest[0])

        by_fingerprint: dict[str, list[dict]] = {}
        for row in rows:
            by_fingerprint.setdefault(row["fingerprint"], []).append(row)
        assert set(by_fingerprint) == first | second  # nothing lost
        runs = r.calls(("runbook", "run"))
        folders = [c[c.index("--out") + 1] for c in runs]
        assert len(folders) == len(set(folders))  # nothing ran twice
        ran_per_incident: dict[str, int] = {}
        for folder in folders:
            iid = Path(folder).parent.parent.name
            ran_per_incident[iid] = ran_per_incident.get(iid, 0) + 1
        outcomes = {"finished": 0, "not-run": 0, "no-runbook": 0}
        for fingerprint, its_rows in by_fingerprint.items():
            assert len({x["id"] for x in its_rows}) == 1, fingerprint  # one incident per distinct alert
            status = its_rows[0]["incident_status"]
            outcomes[status] += 1
            iid = its_rows[0]["id"]
            if status == "finished":
                assert {(x["runbook"], x["verdict"]) for x in its_rows} == {
                    ("empty-recs", "action-required"), ("rollback-config-rules", "action-required")}
                assert ran_per_incident.get(iid) == 2
                assert all((r.out / iid / "runs" / f"{x['run']:02d}-{x['runbook']}" / f"{x['runbook']}.result.json")
                           .is_file() for x in its_rows)
            elif status == "not-run":
                assert {x["reason"] for x in its_rows} == {"queue full"} and iid not in ran_per_incident
            else:
                assert status == "no-runbook" and iid not in ran_per_incident
        assert outcomes["finished"] > 0 and outcomes["not-run"] > 0, outcomes  # the queue did fill
        assert outcomes["no-runbook"] == 2 * DISTINCT // 5
        growth_mib = (after - before) / 1024
        print(f"\nstorm: {outcomes}, healthz slowest {slowest[0] * 1000:.0f} ms, RSS {before // 1024} MiB after the "
              f"first storm, {after // 1024} MiB after the second ({growth_mib:+.1f} MiB)")
        assert growth_mib < 25, growth_mib
