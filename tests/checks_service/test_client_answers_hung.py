"""Found by the generated incidents: a cooc blob replaced by a FIFO hangs the service's reader, so requests with
anchors get no answer at all; the clients check called the whole surface unread (``inconclusive``), and the probe of empty-recs did the same for a popularity FIFO. A shape that gets
no answer while an artifact it reads cannot be read is that artifact's problem, with its kind to roll back; with every
artifact readable, no answer stays unread."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from recsys_checks.judge.registry.published import ManifestState
from recsys_checks.judge.serving.clients import Published, check_client_answers
from recsys_checks.judge.serving.probe import check_recommendations
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


# The probe asks one plain request: a popularity blob replaced by a FIFO hangs it the same way.
def _hanging_probe(error: type[httpx.TransportError]) -> ServiceClient:
    def handle(request: httpx.Request) -> httpx.Response:
        raise error("timed out", request=request)

    return ServiceClient(TARGET, transport=httpx.MockTransport(handle))


TARGET = Target(base_url="http://service", manifest_template="file:///registry/current/{tenant}/{surface}/manifest.json")
POP_URI = "file:///store/demo/home/popularity/abc.json"


def _state(state: str, detail: str = "") -> Any:
    return lambda target, tenant, surface: ManifestState(state, detail, uri=POP_URI)


def test_a_probe_that_hangs_on_an_unreadable_popularity_blob_names_that_artifact() -> None:
    """No answer (the connection was accepted) while the popularity blob is a FIFO: roll popularity back."""
    why = f"popularity artifact {POP_URI} is not valid: it is not a regular file (a FIFO)"
    result = check_recommendations(TARGET, "demo", "home", client=_hanging_probe(httpx.ReadTimeout),
                                   manifest_reader=_state("invalid", why))
    assert result.status == "fail" and not result.unread, result.summary
    assert (result.data["cause"], result.data["broken_kind"]) == ("artifact_invalid", "popularity")
    assert "FIFO" in result.summary


@pytest.mark.parametrize(("error", "state"), [(httpx.ReadTimeout, "ok"), (httpx.ConnectError, "invalid")],
                         ids=["blob-readable", "never-connected"])
def test_a_probe_without_an_answer_stays_unread_when_no_artifact_explains_it(error: Any, state: str) -> None:
    """A readable blob, or a service that never took the connection: nothing the registry holds explains it."""
    result = check_recommendations(TARGET, "demo", "home", client=_hanging_probe(error),
                                   manifest_reader=_state(state, "popularity artifact is not valid"))
    assert result.data["cause"] == "unreachable" and result.unread, result.summary
