"""An answer that is not the service's (an HTML error page from a proxy, a login portal or another application on
RECSYS_BASE_URL) is named so by the clients check, with the setting to look at; a problem+json error of the service is
not."""

from __future__ import annotations

import json

import httpx
import pytest

from recsys_checks.judge.serving.clients import Published, check_client_answers
from recsys_checks.reach.service import ServiceClient
from recsys_checks.reach.settings import Target

ITEMS = [f"sku-{n:04d}" for n in range(1, 21)]
PAGE = "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"


def _client(target: Target, answer: httpx.Response) -> ServiceClient:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v1/admin/"):
            return httpx.Response(404, json={"code": "RECSYS_CONFIG_NOT_FOUND", "status": 404})
        if "anchors" in json.loads(request.content):
            return answer
        return httpx.Response(200, json={"items": [{"item_id": i, "rank": n} for n, i in enumerate(ITEMS[:10], 1)]})

    return ServiceClient(target, transport=httpx.MockTransport(handle))


def _published() -> Published:
    return Published(kinds={"popularity": set(ITEMS), "cooc": set(ITEMS)}, unreadable={},
                     popularity=list(ITEMS), anchor=ITEMS[0])


@pytest.mark.parametrize("status", [404, 501])
def test_an_html_page_for_one_shape_is_named_not_the_services_answer(status: int) -> None:
    target = Target.from_env({"RECSYS_BASE_URL": "http://service"})
    answer = httpx.Response(status, text=PAGE, headers={"Content-Type": "text/html"})
    result = check_client_answers(target, "demo", "home", published=_published(), client=_client(target, answer))
    assert result.status == "fail"
    (finding,) = result.data["findings"]
    assert (finding["cause"], finding["shape"]) == ("requests_fail", "anchors")
    assert finding["evidence"]["not_the_service"] is True
    assert "not the service's" in finding["summary"] and "RECSYS_BASE_URL" in finding["summary"]


def test_a_problem_of_the_service_is_its_own_answer() -> None:
    target = Target.from_env({"RECSYS_BASE_URL": "http://service"})
    answer = httpx.Response(400, json={"code": "RECSYS_INVALID_REQUEST", "status": 400, "detail": "anchors unknown"},
                            headers={"Content-Type": "application/problem+json"})
    result = check_client_answers(target, "demo", "home", published=_published(), client=_client(target, answer))
    (finding,) = result.data["findings"]
    assert finding["cause"] == "requests_fail" and "not_the_service" not in finding["evidence"]
    assert "RECSYS_BASE_URL" not in finding["summary"] and "anchors unknown" in finding["summary"]
