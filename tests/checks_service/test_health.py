"""check_health: live, ready, degraded and unreachable services."""

from __future__ import annotations

import httpx

from recsys_checks.judge.serving.health import check_health, dependency_checks


def test_a_live_ready_service_is_ok_with_key_metrics(target, client):
    """Everything up: ok, with dependency rows and key metrics in the data."""
    result = check_health(target, client)
    assert result.status == "ok", result.summary
    assert {c["name"] for c in result.data["detail"]["checks"]} == {"objectstore", "admin_db"}
    metrics = result.data["metrics"]
    assert metrics["requests_total"] == 100 and metrics["requests_error"] == 3 and metrics["requests_empty"] == 7
    assert metrics["artifact_load_failures_total"] == 2


def test_a_service_that_is_not_live_fails(service, target, client):
    """/healthz not 200 → fail."""
    service.live = 500
    result = check_health(target, client)
    assert result.status == "fail" and "not live" in result.summary


def test_a_service_that_is_not_ready_fails_naming_the_dependency(service, target, client):
    """/readyz 503 → fail naming the failing dependency check."""
    service.ready = 503
    service.checks["objectstore"] = {"status": "fail", "detail": "connection refused"}
    result = check_health(target, client)
    assert result.status == "fail"
    assert "not ready" in result.summary and "objectstore" in result.summary and "connection refused" in result.summary


def test_a_degraded_dependency_warns(service, target, client):
    """Ready, but a dependency reports degraded → warn."""
    service.checks["admin_db"] = {"status": "degraded", "detail": "slow"}
    result = check_health(target, client)
    assert result.status == "warn" and "admin_db" in result.summary


def test_a_failing_dependency_fails_even_when_readyz_answers_200(service, target, client):
    """The store check failing in /health/detailed is a fail: every recommendation would answer 500."""
    service.checks["objectstore"] = {"status": "fail", "detail": "Not a directory"}
    result = check_health(target, client)
    assert result.status == "fail" and "objectstore" in result.summary and "Not a directory" in result.summary


def test_an_unreachable_service_is_a_fail_result_not_an_exception(service, target, client):
    """Connection refused → a fail result naming the URL."""
    service.down = httpx.ConnectError("refused")
    result = check_health(target, client)
    assert result.status == "fail" and "did not answer" in result.summary and target.base_url in result.summary


def test_older_services_without_health_detailed_are_read_from_health(service, target, client):
    """The /health fallback still yields dependency rows."""
    service.detailed = False
    result = check_health(target, client)
    assert result.status == "ok" and result.data["detail"]["path"] == "/health"


def test_dependency_rows_accept_the_list_and_boolean_shapes():
    """Services report checks as a mapping or a list, with words or booleans."""
    rows = dependency_checks({"checks": [{"name": "db", "status": "UP"}, {"name": "s3", "ok": False}]})
    assert rows == [{"name": "db", "status": "up", "detail": ""}, {"name": "s3", "status": "fail", "detail": ""}]
    assert dependency_checks("plain text") == []


def test_a_base_url_that_answers_html_pages_is_not_reported_healthy(target):
    """A proxy or UI answering 200 with a page everywhere: warn naming RECSYS_BASE_URL, not ok."""
    from recsys_checks.reach.service import ServiceClient

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>dashboard</html>", headers={"Content-Type": "text/html"})

    with ServiceClient(target, transport=httpx.MockTransport(handler)) as c:
        result = check_health(target, c)
    assert result.status == "warn" and "RECSYS_BASE_URL" in result.summary
