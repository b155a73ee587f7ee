"""ServiceClient: headers, problem+json, unreachable services, metrics parsing, ETags and audit pages."""

from __future__ import annotations

import dataclasses
import json

import httpx
import pytest

from recsys_checks.core.errors import BadInput, ServiceProblem, Unreachable
from recsys_checks.reach.service import RetryPolicy, ServiceClient, bare_etag, metric_sum, parse_metrics
from recsys_checks.reach.settings import Target

from .conftest import API_KEY, BASE_URL


def test_every_call_sends_tenant_and_a_fresh_request_id(service, client):
    """Tenant-scoped calls carry X-Org-Id, and each call gets its own X-Request-Id."""
    body = ServiceClient.recommend_body("home", user_id="u1", k=3)
    client.recommend("demo", body)
    client.recommend("demo", body)
    first, second = service.requests
    assert first.headers["X-Org-Id"] == "demo"
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]
    assert first.headers["X-Request-Id"].startswith("runbook-")


def test_admin_calls_send_the_api_key(service, client):
    """Admin calls carry X-API-Key from the target."""
    client.get_doc("demo", "config")
    assert service.requests[-1].headers["X-API-Key"] == API_KEY


def test_public_calls_without_a_key_send_none_and_admin_calls_refuse(service):
    """Without RECSYS_API_KEY public calls send no key header and admin calls fail naming the variable."""
    target = Target(base_url=BASE_URL)
    with ServiceClient(target, transport=httpx.MockTransport(service.handler)) as c:
        c.healthz()
        assert "X-API-Key" not in service.requests[-1].headers
        with pytest.raises(BadInput, match="RECSYS_API_KEY"):
            c.get_doc("demo", "config")


def test_problem_json_becomes_a_service_problem_with_code_and_request_id(service, client):
    """A problem+json answer is raised as ServiceProblem carrying status, code, detail and request id."""
    service.recommend_problem = (422, "RECSYS_ARTIFACT_INCOMPATIBLE", "manifest tenant mismatch")
    with pytest.raises(ServiceProblem) as info:
        client.recommend("demo", ServiceClient.recommend_body("home", user_id="u1"))
    p = info.value
    assert (p.status, p.code, p.detail) == (422, "RECSYS_ARTIFACT_INCOMPATIBLE", "manifest tenant mismatch")
    assert p.request_id == service.requests[-1].headers["X-Request-Id"]
    assert "422 RECSYS_ARTIFACT_INCOMPATIBLE" in str(p) and p.request_id in str(p)


def test_an_error_page_that_is_not_problem_json_still_becomes_a_problem(target):
    """A proxy's HTML 502 becomes ServiceProblem without a code, with a snippet of the body."""
    transport = httpx.MockTransport(lambda r: httpx.Response(502, text="<html>Bad Gateway</html>"))
    quick = dataclasses.replace(target, deadline=0.5)  # a 502 is retried until the call's deadline
    with ServiceClient(quick, transport=transport) as c, pytest.raises(ServiceProblem) as info:
        c.retry = RetryPolicy(base=0.001, cap=0.01)
        c.recommend("demo", {"surface": "home"})
    assert info.value.status == 502 and info.value.code is None and "Bad Gateway" in info.value.detail


def test_a_service_that_does_not_answer_is_unreachable_naming_the_url_and_the_fix(service, client):
    """A refused connection becomes Unreachable naming the URL and RECSYS_BASE_URL."""
    service.down = httpx.ConnectError("connection refused")
    with pytest.raises(Unreachable) as info:
        client.healthz()
    message = str(info.value)
    assert f"service at {BASE_URL} did not answer" in message
    assert "check RECSYS_BASE_URL / is the service up?" in message
    assert API_KEY not in message and info.value.sent is False


def test_a_service_that_accepts_but_times_out_is_named_slow_not_down(service, client):
    """A read timeout means the service is up but waiting: the message points at its dependencies and health."""
    service.down = httpx.ReadTimeout("timed out")
    with pytest.raises(Unreachable) as info:
        client.healthz()
    message = str(info.value)
    assert "accepted the connection" in message and "recsys-checks health" in message
    assert "is the service up" not in message


def test_health_detailed_falls_back_to_health_when_missing(service, client):
    """Versions without /health/detailed are asked /health instead."""
    service.detailed = False
    answer = client.health_detailed()
    assert answer.path == "/health" and answer.status == 200
    assert [r.url.path for r in service.requests] == ["/health/detailed", "/health"]


def test_readyz_503_is_returned_not_raised(service, client):
    """Readiness failing is information: the answer carries 503."""
    service.ready = 503
    assert client.readyz().status == 503


def test_prometheus_text_is_parsed_with_sorted_labels():
    """Comments are skipped, labels sorted, special values parsed, odd lines ignored."""
    text = (
        "# HELP x help\n# TYPE x counter\n"
        'req_total{outcome="ok",endpoint="recommend"} 5\n'
        'req_total{endpoint="recommend",outcome="error"} 2 1700000000\n'
        "latency_bucket{le=\"+Inf\"} 7\n"
        "gauge 1.5e2\n"
        "upper +Inf\n"
        "this is not a sample\n"
    )
    metrics = parse_metrics(text)
    assert metrics['req_total{endpoint="recommend",outcome="ok"}'] == 5
    assert metrics['latency_bucket{le="+Inf"}'] == 7
    assert metrics["gauge"] == 150 and metrics["upper"] == float("inf")
    assert metric_sum(metrics, "req_total") == 7
    assert metric_sum(metrics, "req_total", outcome="error") == 2
    assert metric_sum(metrics, "missing") is None


def test_metrics_are_fetched_and_parsed(client):
    """GET /metrics gives {name{labels}: value}."""
    metrics = client.metrics()
    assert metrics["recsys_artifact_manifest_age_seconds"] == 120


def test_get_doc_returns_the_document_and_its_bare_etag(service, client):
    """The version is the ETag, bare hex."""
    doc, version = client.get_doc("demo", "config")
    assert doc == service.doc("config") and version == service.current[("demo", "config")]
    assert bare_etag('W/"abc"') == "abc" and bare_etag('"abc"') == "abc" and bare_etag("abc") == "abc"


def test_put_doc_sends_if_match_as_bare_hex(service, client):
    """If-Match is sent bare (a W/"…" form could never match the service's version)."""
    _, version = client.get_doc("demo", "config")
    new = {**service.doc("config"), "algo": "v2"}
    _, new_version = client.put_doc("demo", "config", new, if_match=f'W/"{version}"')
    assert service.requests[-1].headers["If-Match"] == version
    assert json.loads(service.requests[-1].content) == new  # the raw document, never {"config": ...}
    assert new_version == service.current[("demo", "config")] != version


def test_put_doc_with_a_stale_version_is_a_409_problem(service, client):
    """The service answers 409 RECSYS_VERSION_MISMATCH; the client raises it as a problem with exit code 3."""
    with pytest.raises(ServiceProblem) as info:
        client.put_doc("demo", "config", {"weights": {}}, if_match="0" * 64)
    assert info.value.status == 409 and info.value.code == "RECSYS_VERSION_MISMATCH" and info.value.exit_code == 3


def test_audit_follows_keyset_pages_until_the_end(service, client):
    """All entries come back newest first across pages of the given size."""
    for n in range(6):
        service.seed("config", {**service.doc("config"), "algo": f"a{n}"})
    total = len(service.audit_log)
    entries = list(client.audit("demo", limit=3))
    assert [e["id"] for e in entries] == list(range(total, 0, -1))
    audit_calls = [r for r in service.requests if r.url.path.endswith("/audit")]
    assert len(audit_calls) == -(-total // 3)
    assert list(client.audit("demo", limit=3, max_entries=4)) == entries[:4]


def test_unknown_admin_document_kind_is_bad_input(client):
    """Only config and rules exist."""
    with pytest.raises(BadInput, match="config, rules"):
        client.get_doc("demo", "weights")


def test_unsafe_tenant_is_refused_before_any_request(service, client):
    """Path segments are validated before a URL is built."""
    with pytest.raises(BadInput):
        client.get_doc("../etc", "config")
    assert service.requests == []


def test_the_api_key_never_appears_in_reprs_or_problem_messages(service, target):
    """repr(client), repr(target) and an auth problem's message do not contain the key."""
    service.api_key = "another-key"
    with ServiceClient(target, transport=httpx.MockTransport(service.handler)) as c:
        assert API_KEY not in repr(c) and API_KEY not in repr(target)
        with pytest.raises(ServiceProblem) as info:
            c.get_doc("demo", "config")
    assert info.value.status == 401 and "RECSYS_API_KEY" in str(info.value)
    assert API_KEY not in str(info.value) and API_KEY not in repr(info.value)


@pytest.mark.parametrize("key", [API_KEY + "\n", API_KEY + "\r", " " + API_KEY, "clé-" + API_KEY])
def test_an_api_key_with_a_stray_newline_or_non_ascii_is_refused_without_showing_it(service, key):
    """A key the HTTP library would reject (and quote in its error) is refused first, naming the variable only."""
    target = Target(base_url=BASE_URL, api_key=key)
    with ServiceClient(target, transport=httpx.MockTransport(service.handler)) as c:
        with pytest.raises(BadInput, match="RECSYS_API_KEY") as info:
            c.get_doc("demo", "config")
    assert API_KEY not in str(info.value) and service.requests == []


def test_a_transport_error_quoting_the_api_key_is_redacted(target):
    """An HTTP library error that quotes a header value never carries the key into the message."""
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.LocalProtocolError(f"Illegal header value b'{API_KEY}'")

    with ServiceClient(target, transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(Unreachable) as info:
            c.get_doc("demo", "config")
    assert API_KEY not in str(info.value) and "***" in str(info.value)


def test_a_success_answer_that_is_not_json_is_a_problem_naming_the_base_url_fix(target):
    """A 200 HTML page (a proxy, a login portal) is an unusable answer with exit 1, never an empty document."""
    page = "<html><body>Please sign in</body></html>"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=page, headers={"Content-Type": "text/html"})

    with ServiceClient(target, transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(ServiceProblem, match="RECSYS_BASE_URL") as info:
            c.get_doc("demo", "config")
        with pytest.raises(ServiceProblem, match="not a recommendation response|not JSON"):
            c.recommend("demo", ServiceClient.recommend_body("home", user_id="u1"))
    assert info.value.exit_code == 1 and "\n" not in str(info.value)


def test_a_json_answer_without_an_items_list_is_not_read_as_no_recommendations(target):
    """{"items": "x"} or a JSON list is garbage, not an empty result."""
    for body in ([1, 2], {"items": "none"}, {"items": [1]}, {"items": [], "meta": []}):
        def handler(request: httpx.Request, body=body) -> httpx.Response:
            return httpx.Response(200, json=body)

        with ServiceClient(target, transport=httpx.MockTransport(handler)) as c:
            with pytest.raises(ServiceProblem, match="not a recommendation response"):
                c.recommend("demo", ServiceClient.recommend_body("home", user_id="u1"))


def test_an_undecodable_answer_is_a_problem_not_a_traceback(target):
    """A body that cannot be decoded (bad Content-Encoding) is a one-line problem, not an httpx exception."""
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"not gzip at all", headers={"Content-Encoding": "gzip"})

    with ServiceClient(target, transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(ServiceProblem, match="unreadable answer"):
            c.get_doc("demo", "config")


ADMIN_CALLS = {
    "get_doc": lambda c: c.get_doc("demo", "config"),
    "put_doc": lambda c: c.put_doc("demo", "rules", [], "ab" * 32),
    "audit_page": lambda c: c.audit_page("demo"),
    "audit": lambda c: list(c.audit("demo")),
    "invalidate": lambda c: c.invalidate("demo", ["config"]),
    "recommend": lambda c: c.recommend("demo", ServiceClient.recommend_body("home", user_id="u1")),
    "metrics": lambda c: c.metrics(),
}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("call", sorted(ADMIN_CALLS))
def test_a_redirect_is_an_unusable_answer_never_followed(target, call, status):
    """Any redirect (a login portal, a proxy) to any call: an unusable answer (exit 1) naming the redirect and the
    RECSYS_BASE_URL fix, never an empty document, and nothing is sent where it points."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, headers={"Location": f"https://login.example/sso?key={API_KEY}"})

    with ServiceClient(target, transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(ServiceProblem, match=rf"{status} answer is a redirect to https://login\.example/sso.*"
                                                 "RECSYS_BASE_URL") as info:
            ADMIN_CALLS[call](c)
    assert info.value.exit_code == 1 and API_KEY not in str(info.value)
    assert [r.url.host for r in seen] == ["recsys.test"] * len(seen) and len(seen) == 1


@pytest.mark.parametrize("body", [{}, {"tenant_id": "demo"}, [], "config"])
def test_a_json_answer_that_is_not_the_wrapped_document_is_unusable(target, body):
    """GET config answering JSON without the document (``{}``, a list, a string): unusable, never an empty config."""
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body, headers={"ETag": "ab" * 32})

    with ServiceClient(target, transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(ServiceProblem, match="is not a config document"):
            c.get_doc("demo", "config")
