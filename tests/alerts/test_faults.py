"""The receiver killed mid-run, a notify webhook that hangs or answers 500, and a canary credential."""

from __future__ import annotations

import base64
import binascii
import html
import json
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

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


def _leaked_forms(value: str) -> list[str]:
    """How a credential leaks into what a check prints or an alert carries: as written, base64 (one line, and wrapped
    at 76 columns as base64(1) writes it), URL-encoded, hex."""
    raw = value.encode()
    return [value, base64.b64encode(raw).decode(), base64.encodebytes(raw).decode().rstrip("\n"),
            quote(value, safe=""), binascii.hexlify(raw).decode()]


def _written_forms(value: str) -> set[str]:
    """Each leaked form as the receiver's outputs could write it: as is, a JSON string, HTML, HTML of JSON."""
    out = set()
    for form in _leaked_forms(value):
        as_json = [json.dumps(form)[1:-1], json.dumps(form, ensure_ascii=False)[1:-1]]
        out |= {form, *as_json, html.escape(form), html.escape(form, quote=False), *map(html.escape, as_json)}
    return out


CANARIES = {
    "plain": ("RECSYS_API_KEY", "canary-api-key-" + "Q7" * 12),
    "escaped": ("RECSYS_API_KEY", 'Cnry"Api\\Key<9>&zz'),
    "listed": ("VAULT_PASSWORD", 'Cnry"Vault\\Pass<9>&zz/' + "w" * 50),  # long: its base64 wraps at 76 columns
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(CANARIES))
def test_a_canary_credential_reaches_no_incident_file_page_or_notification(receiver, kind):
    """A credential (one that JSON and HTML escape, one listed in RECSYS_SECRET_VARIABLES), leaked as written and
    encoded through labels, annotations and a run's output: no form of it, escaped or not, reaches alert.json,
    incident.json, a page, a JSON answer, a notification or the log."""
    variable, canary = CANARIES[kind]
    hook = Webhook("200")
    try:
        env = {variable: canary, "RECSYS_ALERTS_NOTIFY_URL": hook.url, "RECSYS_SECRET_VARIABLES": "VAULT_PASSWORD"}
        leaked = " ".join(["key", *_leaked_forms(canary), "token", TOKEN])
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
            texts += [r.client.get(f"/incidents/{iid}", headers={"Accept": "application/json"}).text,
                      r.client.get("/incidents", headers={"Accept": "application/json"}).text, *hook.bodies]
            assert "***" in r.client.get(f"/incidents/{iid}").text  # the leak was there, masked
            assert "***" in (r.out / iid / "alert.json").read_text()
        texts.append(r.log())
        for form in _written_forms(canary) | _written_forms(TOKEN):
            assert not any(form in t for t in texts), f"a credential reached an output as {form!r}"
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
