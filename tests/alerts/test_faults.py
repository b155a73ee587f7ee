"""The receiver killed mid-run, a notify webhook that hangs or answers 500, and a canary credential."""

from __future__ import annotations

import base64
import json
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from alertkit import TOKEN, alert, payload

BROKEN_SEARCH = [{"tenant": "demo", "surface": "home"}, {"tenant": "demo", "surface": "search", "probe": "fail"}]


def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout} s")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_mid_run_and_restarted_the_incident_is_interrupted_never_finished(receiver, tmp_path, sig):
    out = tmp_path / "incidents"
    with receiver(out=out, fleet=BROKEN_SEARCH, run_sleep=30) as r:
        iid = r.post(payload(alert())).json()["new"][0]
        wait_for(lambda: r.calls(("runbook", "run")), what="a runbook run")
        assert r.incident(iid)["status"] == "running"
        code = r.stop(sig)
        assert code == (0 if sig == signal.SIGTERM else -9)
    on_disk = json.loads((out / iid / "incident.json").read_text())
    if sig == signal.SIGKILL:
        assert on_disk["status"] == "running"  # as it was when the process died
    else:
        assert on_disk["status"] == "interrupted"  # a clean stop says so itself
    with receiver(out=out) as again:
        incident = again.incident(iid)
        assert incident["status"] == "interrupted"
        assert {x["status"] for x in incident["rows"]} <= {"interrupted"}
        assert all(x["verdict"] is None for x in incident["rows"])
        assert "interrupted" in again.client.get("/incidents").text
        # Notified again: the same alert, nothing new runs.
        before = len(again.calls(("runbook", "run")))
        assert again.post(payload(alert())).json()["duplicates"] == 1
        time.sleep(0.5)
        assert len(again.calls(("runbook", "run"))) == before
    assert json.loads((out / iid / "incident.json").read_text())["status"] == "interrupted"


class Webhook(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: str) -> None:
        self.mode, self.bodies = mode, []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:  # noqa: N805
                body = handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
                self.bodies.append(body.decode())
                if self.mode == "hang":
                    time.sleep(60)
                    return
                handler.send_response(500 if self.mode == "500" else 200)
                handler.end_headers()

            def log_message(handler, *args) -> None:  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["hang", "500"])
def test_a_notify_webhook_that_hangs_or_answers_500_never_holds_the_queue(receiver, mode):
    hook = Webhook(mode)
    try:
        with receiver("--workers", "1", env={"RECSYS_ALERTS_NOTIFY_URL": hook.url}, fleet=BROKEN_SEARCH) as r:
            started = time.monotonic()
            for i in range(5):
                r.post(payload(alert(fingerprint=f"n{i}")))
            rows = r.wait_done(timeout=60, count=5)
            elapsed = time.monotonic() - started
            # Five incidents, one worker, each notification up to 3 attempts of 5-10 s: the queue did not wait.
            assert {x["incident_status"] for x in rows} == {"finished"} and elapsed < 20, elapsed
            wait_for(lambda: hook.bodies, what="a notification attempt")
            if mode == "500":
                first = rows[-1]["id"]
                wait_for(lambda: (r.incident(first).get("notify") or {}).get("status") == "failed", timeout=30,
                         what="the failed notification recorded")
                assert r.incident(first)["notify"]["attempts"] == 3
            assert r.client.get("/healthz").status_code == 200
    finally:
        hook.shutdown()
        hook.server_close()


@pytest.mark.slow
def test_notifications_are_slack_shaped_with_verdict_cause_and_link(receiver):
    hook = Webhook("200")
    try:
        with receiver("--external-url", "https://alerts.example.internal", plan="abcdef123456", cause="missing_blob",
                      env={"RECSYS_ALERTS_NOTIFY_URL": hook.url}, fleet=BROKEN_SEARCH) as r:
            iid = r.post(payload(alert())).json()["new"][0]
            wait_for(lambda: (r.incident(iid).get("notify") or {}).get("status") == "sent", what="notification sent")
            body = json.loads(hook.bodies[0])
            assert list(body) == ["text"]
            text = body["text"]
            assert "action-required" in text and "missing_blob" in text and "abcdef123456" in text
            assert f"https://alerts.example.internal/incidents/{iid}" in text
    finally:
        hook.shutdown()
        hook.server_close()


@pytest.mark.slow
def test_a_canary_credential_reaches_no_incident_file_page_or_notification(receiver):
    canary = "canary-api-key-" + "Q7" * 12
    forms = [canary, base64.b64encode(canary.encode()).decode(), TOKEN]
    hook = Webhook("200")
    try:
        env = {"RECSYS_API_KEY": canary, "RECSYS_ALERTS_NOTIFY_URL": hook.url}
        leaked = f"key {canary} b64 {forms[1]} token {TOKEN}"
        with receiver(env=env, fleet=BROKEN_SEARCH, print=leaked, plan="abcdef123456") as r:
            iid = r.post(payload(alert(labels={"note": leaked}, annotations={"description": leaked}))).json()["new"][0]
            wait_for(lambda: (r.incident(iid).get("notify") or {}).get("status") == "sent", what="notification sent")
            # The runner's own files (the notebook and the record) are the runner's to keep secret-free, and it does
            # (tests/runbooks/test_secret_canary.py); this fake runner does not, so the receiver's masking shows.
            texts = [p.read_text() for p in r.out.rglob("*")
                     if p.is_file() and not p.name.endswith((".ipynb", ".result.json"))]
            texts += [r.client.get(u).text for u in ("/incidents", f"/incidents/{iid}",
                                                      f"/incidents/{iid}/runs/1/notebook",
                                                      f"/incidents/{iid}/runs/1/record")]
            texts += [json.dumps(r.rows()), json.dumps(r.incident(iid)), *hook.bodies]
            assert "***" in r.client.get(f"/incidents/{iid}").text  # the leak was there, masked
            for form in forms:
                assert not any(form in t for t in texts), "a credential reached an output"
            # The receiver's own token never reaches a check: it is not in any child's environment.
            assert "***" in (r.out / iid / "alert.json").read_text()
    finally:
        hook.shutdown()
        hook.server_close()


@pytest.mark.slow
def test_a_peer_that_trickles_its_body_gets_408(receiver):
    with receiver(fleet=BROKEN_SEARCH) as r:
        host, port = r.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(f"POST /alertmanager HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                         "Content-Length: 1000\r\nContent-Type: application/json\r\n\r\n{".encode())
            started = time.monotonic()
            answer = sock.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 408") and time.monotonic() - started < 20
        assert r.rows() == []
