"""The oracle of the incident tests (tests/clienttruth.py) fires on each kind of trouble and stays quiet otherwise.

A store of raw files in a temporary folder and a service answered by ``httpx.MockTransport``: no process, no
network. Each kind of hurt, staleness and risk has a test showing it found and the quiet case shows none.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from clienttruth import RawStack, client_truth, read_json, runbooks_for

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
POPULAR = [f"sku-{n:04d}" for n in range(1, 31)]


def _stack(tmp_path: Path, *, answer: Any = None, rules: Any = None, config: Any = None,
           window_end: datetime = NOW - timedelta(hours=12)) -> RawStack:
    """A surface demo/home publishing POPULAR (and cooc rows), with a service that answers ``answer(body)``."""
    store = tmp_path / "store"
    blobs = store / "objectstore"
    blobs.mkdir(parents=True)
    end = window_end.strftime("%Y-%m-%dT%H:%M:%SZ")
    window = {"start": end, "end": end}
    (blobs / "pop.json").write_text(json.dumps({"window": window, "items": [
        {"item_id": i, "count": 100 - n} for n, i in enumerate(POPULAR)]}))
    (blobs / "cooc.json").write_text(json.dumps({"window": window, "neighbors": [
        {"item_id": "sku-0001", "items": [{"item_id": "sku-0040", "count": 3}]}]}))
    manifest = store / "registry/current/demo/home/manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"current": {"popularity": f"file://{blobs}/pop.json",
                                                "cooc": f"file://{blobs}/cooc.json"}}))
    docs = {"rules": [] if rules is None else rules, "config": {"weights": {"pop": 1}} if config is None else config}
    answer = answer or (lambda body: {"items": [{"item_id": i} for i in POPULAR[:body["k"]]]})

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            kind = request.url.path.rsplit("/", 1)[-1]
            return httpx.Response(200, json={kind: docs[kind]})
        out = answer(json.loads(request.content))
        return out if isinstance(out, httpx.Response) else httpx.Response(200, json=out)

    return RawStack(tmp_path, {"RECSYS_API_KEY": "k", "RECSYS_BASE_URL": "http://service"},
                    transport=httpx.MockTransport(handle))


def test_a_full_answer_of_published_items_is_healthy(tmp_path: Path) -> None:
    truth = client_truth(_stack(tmp_path), "demo", "home", now=NOW)
    assert truth.healthy, truth
    assert runbooks_for(truth) == []
    assert set(truth.shapes) == {"plain", "anchors"}


def test_a_shape_that_errors_hurts_clients_and_opens_service_not_ready(tmp_path: Path) -> None:
    def answer(body: dict[str, Any]) -> Any:
        if "anchors" in body:
            return httpx.Response(500, json={"code": "RECSYS_INTERNAL"})
        return {"items": [{"item_id": i} for i in POPULAR[:10]]}

    truth = client_truth(_stack(tmp_path, answer=answer), "demo", "home", now=NOW)
    assert truth.hurt == ["anchors requests answer 500"]
    assert runbooks_for(truth) == ["service-not-ready"]


@pytest.mark.parametrize(("served", "found"), [
    (["sku-9999", *POPULAR[:9]], "in no current artifact"),
    ([POPULAR[0], *POPULAR[:9]], "more than once"),
])
def test_wrong_items_hurt_clients_and_open_rollback_config_rules(tmp_path: Path, served: list[str],
                                                                 found: str) -> None:
    stack = _stack(tmp_path, answer=lambda body: {"items": [{"item_id": i} for i in served]})
    truth = client_truth(stack, "demo", "home", now=NOW)
    assert any(found in why for why in truth.hurt), truth
    assert runbooks_for(truth)[0] in ("rollback-config-rules", "empty-recs")
    assert "rollback-config-rules" in runbooks_for(truth)


@pytest.mark.parametrize("wrapped", [False, True])
def test_a_blocked_item_served_hurts_clients_even_when_the_rules_are_wrapped(tmp_path: Path, wrapped: bool) -> None:
    rules = [{"action": "block", "target_type": "item", "item_ids": [POPULAR[0]]}]
    truth = client_truth(_stack(tmp_path, rules={"rules": rules} if wrapped else rules), "demo", "home", now=NOW)
    assert any("which block rules hide" in why for why in truth.hurt), truth
    assert bool(truth.at_risk) is wrapped


def test_blocks_out_of_scope_or_out_of_their_window_hide_nothing(tmp_path: Path) -> None:
    rules = [{"action": "block", "target_type": "item", "item_ids": [POPULAR[0]], "surface": "search"},
             {"action": "block", "target_type": "item", "item_ids": [POPULAR[1]], "segment": "vip"},
             {"action": "block", "target_type": "item", "item_ids": [POPULAR[2]], "enabled": False},
             {"action": "block", "target_type": "item", "item_ids": [POPULAR[3]],
              "valid_until": (NOW - timedelta(days=1)).isoformat()}]
    assert client_truth(_stack(tmp_path, rules=rules), "demo", "home", now=NOW).healthy


def test_a_short_answer_hurts_clients_unless_blocks_leave_no_more(tmp_path: Path) -> None:
    short = lambda body: {"items": [{"item_id": i} for i in POPULAR[:3]]}  # noqa: E731
    truth = client_truth(_stack(tmp_path / "a", answer=short), "demo", "home", now=NOW)
    assert any("3 distinct items of 10" in why for why in truth.hurt), truth
    assert runbooks_for(truth) == ["empty-recs"]
    everything_but_three = [f"sku-{n:04d}" for n in range(4, 121)]
    blocks = [{"action": "block", "target_type": "item", "item_ids": everything_but_three}]
    truth = client_truth(_stack(tmp_path / "b", answer=short, rules=blocks), "demo", "home", now=NOW)
    assert not truth.hurt, truth
    assert truth.at_risk, "blocks hiding most of the published catalog are at risk"


def test_old_data_is_stale_not_hurt(tmp_path: Path) -> None:
    truth = client_truth(_stack(tmp_path, window_end=NOW - timedelta(hours=40)), "demo", "home", now=NOW)
    assert truth.stale and not truth.hurt and not truth.at_risk, truth
    assert runbooks_for(truth) == ["stale-manifest"]


def test_a_config_key_outside_the_schema_is_at_risk(tmp_path: Path) -> None:
    truth = client_truth(_stack(tmp_path, config={"config": {"weights": {"pop": 1}}}), "demo", "home", now=NOW)
    assert truth.at_risk and not truth.hurt, truth


def test_a_fifo_blob_is_never_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "blob.json"
    os.mkfifo(fifo)
    started = time.monotonic()
    assert read_json(fifo) is None
    assert read_json(tmp_path) is None
    assert time.monotonic() - started < 1.0


def _builds(tmp_path: Path, before: int, now: int) -> RawStack:
    """demo/home whose current popularity build holds ``now`` items where the build before it held ``before``."""
    stack = _stack(tmp_path)
    blobs = tmp_path / "store" / "objectstore"
    records = tmp_path / "store/registry/records/demo/home/popularity"
    records.mkdir(parents=True)
    for name, count, built in (("old", before, "2026-12-06T01:30:00Z"), ("pop", now, "2026-12-07T01:30:00Z")):
        if name == "old":
            (blobs / "old.json").write_text(json.dumps({"items": [{"item_id": f"sku-{n:04d}"} for n in range(count)]}))
        else:
            blob = json.loads((blobs / "pop.json").read_text())
            (blobs / "pop.json").write_text(json.dumps({**blob, "items": blob["items"][:count]}))
        (records / f"{name}.json").write_text(json.dumps({"URI": f"file://{blobs}/{name}.json", "BuiltAt": built}))
    return stack


def test_a_build_that_lost_most_of_its_items_is_at_risk_and_one_that_kept_them_is_not(tmp_path: Path) -> None:
    truth = client_truth(_builds(tmp_path / "a", before=100, now=30), "demo", "home", now=NOW)
    assert any("held 100" in why for why in truth.at_risk) and not truth.hurt, truth
    assert runbooks_for(truth) == ["rollback-manifest"]
    assert client_truth(_builds(tmp_path / "b", before=40, now=30), "demo", "home", now=NOW).healthy
