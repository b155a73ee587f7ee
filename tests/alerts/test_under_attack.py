"""The receiver as a process under attack and under faults: idle and trickling sockets, a notify webhook that answers
without end, a run that prints without end, a second receiver on the same folder, a fleet that cannot be listed, and
Slack's control sequences in labels."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from alertkit import TOKEN, alert, payload
from test_faults import BROKEN_SEARCH, Webhook, wait_for

from recsys_checks.alerts.guard import HEADER_TIMEOUT

IDLE = int(os.environ.get("RECEIVER_IDLE", "300"))
SOAK_SECONDS = float(os.environ.get("RECEIVER_SOAK_SECONDS", "0"))  # `make soak`: deliveries for this long
ANSWER_WITHIN = 2.0


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _idle(address: tuple[str, int]) -> socket.socket:
    """A connection that sends a request line and Host, and nothing more."""
    sock = socket.create_connection(address, timeout=30)
    sock.sendall(b"POST /alertmanager HTTP/1.1\r\nHost: x\r\n")
    return sock


class Trickler(threading.Thread):
    """Sends a request's headers one byte a second; records when and how the receiver ended the connection."""

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(address, timeout=60)
        self.started = time.monotonic()
        self.ended_after: float | None = None
        self.answer = b""

    def run(self) -> None:
        headers = b"POST /alertmanager HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
        self.sock.setblocking(False)
        for byte in headers:
            try:
                self.sock.send(bytes([byte]))
            except OSError:
                break
            try:
                chunk = self.sock.recv(4096)
                if chunk == b"" or chunk:
                    self.answer += chunk
                    break
            except BlockingIOError:
                pass
            except OSError:
                break
            time.sleep(1.0)
        self.ended_after = time.monotonic() - self.started
        self.sock.close()


def _deliver(url: str, n: int) -> tuple[int, float]:
    started = time.monotonic()
    response = httpx.post(f"{url}/alertmanager", content=json.dumps(payload(alert(fingerprint=f"d{n:04d}"))),
                          headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}, timeout=30)
    return response.status_code, time.monotonic() - started


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_idle_connections_and_a_trickler_do_not_keep_an_authorised_alert_out(receiver, capsys):
    """300 connections that send a request line and Host only, and one trickling its headers at 1 byte/s: an
    authorised alert is still answered 200 within 2 s, and the trickler is cut at the header deadline."""
    with receiver(fleet=BROKEN_SEARCH, run_sleep=0.1) as r:
        address = _address(r.url)
        trickler = Trickler(address)
        trickler.start()
        sockets = [_idle(address) for _ in range(IDLE)]
        try:
            timings = []
            deadline = time.monotonic() + SOAK_SECONDS
            n = 0
            while True:
                sockets += [_idle(address) for _ in range(20)]  # the attacker keeps opening
                timings.append(_deliver(r.url, n))
                n += 1
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.5)
            trickler.join(HEADER_TIMEOUT + 10)
        finally:
            for sock in sockets:
                sock.close()
        worst = max(seconds for _, seconds in timings)
        with capsys.disabled():
            print(f"\n{IDLE}+ idle connections, 1 trickler: {len(timings)} deliveries, codes "
                  f"{sorted({c for c, _ in timings})}, slowest {worst:.3f} s; trickler cut after "
                  f"{trickler.ended_after:.1f} s")
        assert {c for c, _ in timings} == {200} and worst < ANSWER_WITHIN, timings
        # Cut at the deadline, or before it to make room (it is the oldest connection waiting for its headers).
        assert trickler.ended_after is not None and trickler.ended_after < HEADER_TIMEOUT + 5
        assert r.client.get("/healthz").status_code == 200


@pytest.mark.slow
def test_a_header_trickler_is_answered_408_at_the_deadline(receiver):
    """One connection sending its headers at 1 byte/s, alone: 408 at the header deadline, not never."""
    with receiver(fleet=BROKEN_SEARCH) as r:
        trickler = Trickler(_address(r.url))
        trickler.start()
        trickler.join(HEADER_TIMEOUT + 10)
        assert trickler.answer.startswith(b"HTTP/1.1 408"), trickler.answer
        assert HEADER_TIMEOUT - 1 < trickler.ended_after < HEADER_TIMEOUT + 5


@pytest.mark.slow
def test_a_delivery_whose_headers_arrive_at_once_is_not_cut(receiver):
    """Quiet: a kept-alive client sending deliveries a few seconds apart is answered every time."""
    with receiver(fleet=BROKEN_SEARCH) as r:
        for n in range(3):
            assert r.post(payload(alert(fingerprint=f"k{n}"))).status_code == 200
            time.sleep(2)


class EndlessAnswer(ThreadingHTTPServer):
    """A notify webhook answering 200 with a body that never ends; counts the bytes it managed to send."""

    daemon_threads = True

    def __init__(self) -> None:
        self.sent = 0
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:  # noqa: N805
                handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
                self.requests += 1
                handler.send_response(200)
                handler.send_header("Content-Type", "text/plain")
                handler.end_headers()
                block = b"z" * 65536
                try:
                    for _ in range(300 * 16):  # 300 MiB
                        handler.wfile.write(block)
                        self.sent += len(block)
                except OSError:
                    pass

            def log_message(handler, *args) -> None:  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


@pytest.mark.slow
def test_the_notify_webhooks_answer_is_read_no_further_than_a_few_kib(receiver):
    """A webhook answering 300 MiB: the message counts as sent and the receiver stopped reading at once."""
    hook = EndlessAnswer()
    try:
        with receiver(env={"RECSYS_ALERTS_NOTIFY_URL": hook.url}, fleet=BROKEN_SEARCH) as r:
            iid = r.post(payload(alert())).json()["new"][0]
            wait_for(lambda: (r.incident(iid).get("notify") or {}).get("status"), what="the notification's outcome")
            assert r.incident(iid)["notify"]["status"] == "sent"
            time.sleep(1)
            assert hook.requests == 1 and hook.sent < 16 * 1024 * 1024, hook.sent  # socket buffers, not 300 MiB
    finally:
        hook.shutdown()
        hook.server_close()


@pytest.mark.slow
def test_a_run_printing_past_the_output_cap_is_stopped_at_once_and_says_why(receiver):
    """A runbook run that prints without end: stopped when its output passes the cap, not at --run-timeout."""
    with receiver("--run-timeout", "600", fleet=BROKEN_SEARCH, flood=True) as r:
        started = time.monotonic()
        r.post(payload(alert()))
        rows = r.wait_done(timeout=120)
        assert time.monotonic() - started < 90
        ran = [x for x in rows if x["run"]]
        assert ran and all(x["verdict"] == "failed" and "printed more than" in x["reason"] for x in ran), ran


@pytest.mark.subprocess
def test_a_second_receiver_on_the_same_folder_exits_2(receiver, tmp_path):
    """One receiver per --out: the second says which holds it and exits 2, changing nothing."""
    with receiver(fleet=BROKEN_SEARCH) as r:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
        second = subprocess.run([sys.executable, "-m", "recsys_checks.cli", "alerts", "serve", "--listen",
                                 "127.0.0.1:0", "--out", str(r.out)], env={**env, "RECSYS_ALERTS_TOKEN": TOKEN},
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second
        assert "another receiver" in second.stderr and f"pid {r.proc.pid}" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        assert r.client.get("/healthz").status_code == 200


@pytest.mark.subprocess
def test_a_fleet_scan_that_lists_nothing_is_inconclusive_not_nothing_found(receiver):
    """`freshness` listing no surface (exit 1, "no surfaces found"): the incident says inconclusive."""
    with receiver(freshness="empty") as r:
        iid = r.post(payload(alert("RecsysManifestStale"))).json()["new"][0]
        rows = r.wait_done()
        assert {x["status"] for x in rows} == {"not-run"}
        assert all(x["reason"].startswith("inconclusive") for x in rows), rows
        assert r.incident(iid)["triage"]["status"] == "inconclusive"


@pytest.mark.subprocess
def test_a_fleet_scan_that_lists_healthy_surfaces_is_nothing_found(receiver):
    """Quiet: a scan that listed the fleet and found it healthy is nothing-found."""
    with receiver(fleet=[{"tenant": "demo", "surface": "home"}]) as r:
        r.post(payload(alert("RecsysManifestStale")))
        assert {x["status"] for x in r.wait_done()} == {"nothing-found"}


@pytest.mark.slow
def test_slack_control_sequences_from_labels_never_reach_the_notification_raw(receiver):
    """Labels naming `<!channel>` and a `<https://…|text>` link, quoted back in a refusal reason: escaped."""
    hook = Webhook("200")
    try:
        labels = {"tenant": "<!channel>", "surface": "<https://evil.example|click>"}
        with receiver("--tenant-label", "tenant", "--surface-label", "surface",
                      env={"RECSYS_ALERTS_NOTIFY_URL": hook.url}, fleet=BROKEN_SEARCH) as r:
            name = "RecsysEmptyRecommendationsHigh<!here>"
            iid = r.post(payload(alert(labels=labels), alert(name, "f00d02", labels=labels))).json()["new"][0]
            wait_for(lambda: len(hook.bodies) >= 2, what="two notifications")
            texts = [json.loads(b)["text"] for b in hook.bodies]
            assert any("&lt;!here&gt;" in t for t in texts) and iid, texts
            for text in texts:
                assert "<" not in text and ">" not in text, text
    finally:
        hook.shutdown()
        hook.server_close()
