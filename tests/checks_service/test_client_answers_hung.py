"""Found by the generated incidents: a cooc blob replaced by a FIFO hangs the service's reader, so requests with
anchors get no answer at all; the clients check called the whole surface unread (``inconclusive``). A shape that gets
no answer while an artifact it reads cannot be read is that artifact's problem, with its kind to roll back; with every
artifact readable, no answer stays unread."""

from __future__ import annotations

import json

import httpx
import pytest

from recsys_checks.judge.serving.clients import Published, check_client_answers
from recsys_checks.reach.service import ServiceClient
from recsys_checks.reach.settings import Target

ITEMS = [f"sku-{n:04d}" for n in range(1, 21)]


def _client(target: Target) -> ServiceClient:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v1/admin/"):
            return httpx.Response(404, json={"code": "RECSYS_CONFIG_NOT_FOUND", "status": 404})
        if "anchors" in json.loads(request.content):
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json={"items": [{"item_id": i, "rank": n} for n, i in enumerate(ITEMS[:10], 1)]})

    return ServiceClient(target, transport=httpx.MockTransport(handle))


def _published(unreadable: dict[str, str]) -> Published:
    return Published(kinds={"popularity": set(ITEMS), "cooc": set(ITEMS)}, unreadable=unreadable,
                     popularity=list(ITEMS), anchor=ITEMS[0])


def test_no_answer_while_the_cooc_artifact_is_unreadable_is_that_artifact_s_problem() -> None:
    target = Target.from_env({"RECSYS_BASE_URL": "http://service"})
    published = _published({"cooc": "file:///store/cooc.json is not a regular file (a FIFO)"})
    result = check_client_answers(target, "demo", "home", published=published, client=_client(target))
    assert result.status == "fail" and not result.unread, result.summary
    (finding,) = result.data["findings"]
    assert (finding["cause"], finding["shape"], finding["evidence"]["kind"]) == ("artifact_unreadable", "anchors",
                                                                                 "cooc")


def test_no_answer_with_every_artifact_readable_is_unread() -> None:
    target = Target.from_env({"RECSYS_BASE_URL": "http://service"})
    result = check_client_answers(target, "demo", "home", published=_published({}), client=_client(target))
    assert result.unread, result.summary
    assert result.status == "fail"


@pytest.mark.parametrize("kind", ["popularity", "cooc"])
def test_the_finding_names_the_unreadable_kind_the_shape_reads(kind: str) -> None:
    target = Target.from_env({"RECSYS_BASE_URL": "http://service"})
    result = check_client_answers(target, "demo", "home", published=_published({kind: "a directory"}),
                                  client=_client(target))
    kinds = {f["evidence"].get("kind") for f in result.data["findings"] if f["cause"] == "artifact_unreadable"}
    assert kinds == {kind}
