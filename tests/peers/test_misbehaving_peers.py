"""Peers that trickle, never answer, echo the request or answer HTML: every call ends within its deadline with a
clear message, and the API key is neither sent where it is not needed nor printed."""

from __future__ import annotations

import json
import time

import pytest

from recsys_checks.core.errors import Unreachable
from recsys_checks.judge.registry.manifest import check_manifest
from recsys_checks.judge.serving.health import check_health
from recsys_checks.judge.serving.probe import check_recommendations
from recsys_checks.reach.settings import Target
from recsys_checks.reach.store import S3Store

from .peerkit import echo, found, html, not_found_html, peer, redirect, silent, trickle, xhtml

SECRET = "sk-peer-test-0123456789-SECRET"
FAST = {"timeout": 0.5, "deadline": 1.0}


@pytest.mark.slow  # waits out a deadline against a peer that trickles or never answers
@pytest.mark.parametrize("behaviour", [trickle, silent], ids=["trickle", "silent"])
def test_health_ends_within_its_deadline_against_a_slow_peer(behaviour):
    """A peer that trickles headers (no read ever times out) or never answers: health fails in about a deadline."""
    with peer(behaviour) as server:
        started = time.monotonic()
        result = check_health(Target(base_url=server.url, **FAST))
        elapsed = time.monotonic() - started
    assert result.status == "fail"
    assert elapsed < 3.0, elapsed
    assert "too slowly" in result.summary or "no complete answer" in result.summary


@pytest.mark.slow  # waits out a deadline against a peer that trickles or never answers
def test_a_recommendation_probe_ends_within_its_deadline_against_a_trickling_peer():
    """recs probe stops at the deadline with an 'answered too slowly' message."""
    with peer(trickle) as server:
        started = time.monotonic()
        result = check_recommendations(Target(base_url=server.url, **FAST), "demo", "home")
        assert time.monotonic() - started < 3.0
    assert result.status == "fail" and "too slowly" in result.summary


@pytest.mark.slow  # waits out a deadline against a peer that trickles or never answers
def test_an_s3_store_that_trickles_is_unreachable_within_the_deadline():
    """Every S3 call has an overall deadline too: a trickling endpoint gives 'too slowly', not a hang."""
    with peer(trickle) as server:
        target = Target(manifest_template="s3://b/registry/current/{tenant}/{surface}/manifest.json",
                        s3_endpoint=server.url, s3_access_key="k", s3_secret_key="s", **FAST)
        started = time.monotonic()
        with pytest.raises(Unreachable, match="too slowly"):
            check_manifest(target, "demo", "home")
        assert time.monotonic() - started < 3.0
        store = S3Store(server.url, "k", "s", timeout=0.5, deadline=1.0)
        try:
            with pytest.raises(Unreachable, match="too slowly"):
                store.list("s3://b/registry/")
        finally:
            store.close()


def test_the_api_key_is_not_sent_to_health_endpoints_nor_printed():
    """An echoing peer never sees the key on /healthz, /readyz, /health/detailed or /metrics; nothing prints it."""
    with peer(echo) as server:
        result = check_health(Target(base_url=server.url, api_key=SECRET, **FAST))
        seen = b"\n".join(server.requests)
    assert seen and b"x-api-key" not in seen.lower()
    assert SECRET not in json.dumps(result.to_dict())


def test_health_against_an_html_page_says_the_url_is_not_the_service():
    """A web server answering HTML on every path is named as such, not blamed on the artifact store."""
    with peer(html) as server:
        result = check_health(Target(base_url=server.url, **FAST))
    assert result.status in ("warn", "fail")
    assert "RECSYS_BASE_URL" in result.summary and "store" not in result.summary.lower()


@pytest.mark.parametrize("behaviour", [html, not_found_html], ids=["200-html", "404-html"])
def test_a_web_server_as_s3_endpoint_is_named_not_read_as_a_missing_manifest(behaviour):
    """An S3 endpoint that is a web server: 'does not look like an S3 API', never 'no manifest, publish'."""
    with peer(behaviour) as server:
        target = Target(manifest_template="s3://b/registry/current/{tenant}/{surface}/manifest.json",
                        s3_endpoint=server.url, s3_access_key="k", s3_secret_key="s", **FAST)
        with pytest.raises(Unreachable, match="S3 API"):
            check_manifest(target, "demo", "home")


def test_a_probe_against_an_html_error_page_is_not_blamed_on_the_store():
    """A 500 HTML page is 'not the service', not 'cannot read the artifact store'."""
    def error_page(conn, head, stop):
        body = b"<html>Internal Server Error</html>"
        conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\nConnection: close\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    with peer(error_page) as server:
        result = check_recommendations(Target(base_url=server.url, manifest_template="file:///nonexistent/registry/current/"
                              "{tenant}/{surface}/manifest.json", **FAST), "demo", "home")
    assert result.data["cause"] == "not_the_service" and "RECSYS_BASE_URL" in result.summary
    assert "artifact store" not in result.summary


# --- an S3 endpoint that is not an S3 API: the fleet scan could not look ------------------------------------------

S3_TEMPLATE = "s3://b/registry/current/{tenant}/{surface}/manifest.json"


def _s3_target(server) -> Target:
    return Target(manifest_template=S3_TEMPLATE, s3_endpoint=server.url, s3_access_key="k", s3_secret_key="s", **FAST)


@pytest.mark.parametrize("behaviour", [html, xhtml, not_found_html, redirect],
                         ids=["200-html", "200-xhtml", "404-html", "307"])
def test_a_fleet_scan_against_a_web_server_is_inconclusive(behaviour, capsys, monkeypatch):
    """An S3 endpoint answering a web page or a redirect: freshness is inconclusive (exit 2, unread set), never
    'no surfaces found'."""
    from recsys_checks.cli.commands import main

    monkeypatch.setenv("RECSYS_ARTIFACT_S3_ACCESS_KEY", "peer-test-access-key")
    monkeypatch.setenv("RECSYS_ARTIFACT_S3_SECRET_KEY", "peer-test-secret-key")
    with peer(behaviour) as server:
        code = main(["freshness", "--json", "--manifest-template", S3_TEMPLATE, "--s3-endpoint", server.url])
    doc = json.loads(capsys.readouterr().out)
    assert code == 2 and doc["data"]["outcome"] == "inconclusive"
    assert all(r["surface"] is None and r["condition"] == "unreachable" for r in doc["data"]["rows"])
    assert doc["unread"] and "no surfaces found" not in doc["summary"]
    assert "S3 API" in doc["unread"] or "redirect" in doc["unread"] or "failed while listing" in doc["unread"]


@pytest.mark.parametrize("call", ["get", "exists", "put", "list", "children", "walk"])
def test_an_s3_endpoint_that_redirects_ends_with_a_clear_message(call):
    """A 307 on any S3 call: Unreachable naming the redirect and the setting, never a RecursionError, and no
    request to where it points."""
    with peer(redirect) as server:
        store = S3Store(server.url, "k", "s", timeout=0.5, deadline=2.0)
        calls = {"get": lambda: store.get("s3://b/k"), "exists": lambda: store.exists("s3://b/k"),
                 "put": lambda: store.put("s3://b/k", b"{}", if_match='"x"'),
                 "list": lambda: store.list("s3://b/p/"), "children": lambda: store.children("s3://b/p/"),
                 "walk": lambda: list(store.walk("s3://b/p/"))}
        try:
            with pytest.raises(Unreachable, match=r"answered 307 \(a redirect to http://127\.0\.0\.1:1/elsewhere\)"
                                                  r".*RECSYS_ARTIFACT_S3_ENDPOINT"):
                calls[call]()
        finally:
            store.close()
        assert len(server.requests) <= 2  # at most the retry of the request itself, no HeadBucket chase


def test_a_manifest_status_against_a_redirecting_endpoint_is_unreachable():
    """manifest status (one surface) against a 307: the same clear message."""
    with peer(redirect) as server, pytest.raises(Unreachable, match="redirect"):
        check_manifest(_s3_target(server), "demo", "home")


@pytest.mark.slow  # waits out a deadline against a peer that trickles
def test_a_fleet_scan_against_a_trickling_listing_stops_near_the_deadline():
    """The listing runs under the overall deadline too: a trickling endpoint makes the scan inconclusive after
    about one deadline, as manifest status does, not after the peer gives up."""
    from recsys_checks.judge.registry.freshness import check_freshness

    with peer(trickle) as server:
        started = time.monotonic()
        res = check_freshness(_s3_target(server))
        elapsed = time.monotonic() - started
    assert elapsed < 3.0, elapsed
    assert res.data["outcome"] == "inconclusive" and "too slowly" in res.unread


@pytest.mark.slow  # waits out a deadline against a peer that trickles
def test_every_page_of_a_walk_has_the_deadline():
    """walk (the paged listing the fleet scan reads) stops at the deadline against a trickling endpoint."""
    with peer(trickle) as server:
        store = S3Store(server.url, "k", "s", timeout=0.5, deadline=1.0)
        started = time.monotonic()
        try:
            with pytest.raises(Unreachable, match="too slowly"):
                list(store.walk("s3://b/registry/"))
        finally:
            store.close()
        assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("command", [["config", "show"], ["config", "history"], ["rules", "show"],
                                     ["rules", "history"]])
def test_the_admin_api_answering_302_is_an_unusable_answer(command, capsys, monkeypatch):
    """A login portal answering 302 on the admin API: never `OK … version ` and exit 0; an unusable answer, exit 1,
    naming the redirect, and the key never sent to where it points."""
    from recsys_checks.cli.commands import main

    monkeypatch.setenv("RECSYS_API_KEY", SECRET)
    with peer(found) as server:
        code = main([*command, "--tenant", "demo", "--base-url", server.url])
        hosts = [h for h in server.requests if b"login.example" in h.split(b"\r\n", 1)[0]]
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 1, text
    assert "302" in text and "redirect to https://login.example/sso" in text and "RECSYS_BASE_URL" in text
    assert not text.startswith("OK") and SECRET not in text and hosts == []
