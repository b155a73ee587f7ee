"""Publishing into and breaking a running stack: every fault is observed through the API or the store.

One stack per store serves the whole module; each fault test saves what it breaks and restores it afterwards
(manifest bytes put back, admin documents PUT back, `heal`), so the next test starts from a healthy stack.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from stackfixture import StackHandle, pid_alive, running_stack
from suite_lines import suite_family

from recsys_stack.cli import main
from recsys_stack.faults import FAULTS
from recsys_stack.objstore import NotFound
from recsys_stack.processes import open_store
from recsys_stack.publisher import run_logs, runs_dir

pytestmark = pytest.mark.stack

# Faults that publish run on their own surface so that one fault's published day never hides another's effect
# (e.g. an orphan blob needs a day that was never published before).
TARGETS = {
    "partial-publish": ("acme", "search"),
    "validation-failed": ("acme", "home"),
    "limit-exceeded": ("acme", "home"),
    "backfill-over-limit": ("acme", "home"),
    "implicit-limit": ("acme", "home"),
}
PUBLISH_TARGET = ("demo", "search")


@pytest.fixture(scope="module", params=["file", "s3"])
def fault_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    """A running stack of each store, private to this module because its tests break it on purpose."""
    with running_stack(request.param, tmp_path_factory.mktemp(f"faults-{request.param}")) as handle:
        yield handle


def _headers(handle: StackHandle, tenant: str) -> dict[str, str]:
    return {"X-API-Key": handle.api_key, "X-Org-Id": tenant, "X-Actor": "stack-cli-tests"}


def call(handle: StackHandle, method: str, path: str, tenant: str = "demo", body=None) -> httpx.Response:
    with httpx.Client(base_url=handle.base_url, timeout=15.0, trust_env=False) as client:
        return client.request(method, path, json=body, headers=_headers(handle, tenant))


def recommend(handle: StackHandle, tenant: str = "demo", surface: str = "home") -> httpx.Response:
    body = {"surface": surface, "k": 10, "user": {"user_id": "u-test"}}
    return call(handle, "POST", "/v1/recommend", tenant, body)


def served(handle: StackHandle, tenant: str = "demo", surface: str = "home") -> list[str]:
    resp = recommend(handle, tenant, surface)
    assert resp.status_code == 200, resp.text
    return [item["item_id"] for item in resp.json()["items"]]


def invalidate(handle: StackHandle, tenant: str, surface: str, targets: tuple[str, ...] = ("popularity",)) -> None:
    body = {"targets": list(targets), "surface": surface}
    resp = call(handle, "POST", f"/v1/admin/tenants/{tenant}/cache/invalidate", tenant, body)
    assert resp.status_code == 200, resp.text


def manifest_key(tenant: str, surface: str) -> str:
    return f"registry/current/{tenant}/{surface}/manifest.json"


def read_manifest_bytes(handle: StackHandle, tenant: str, surface: str) -> bytes:
    with closing(open_store(handle.info, handle.env)) as store:
        return store.get(manifest_key(tenant, surface))


def stack_cli(handle: StackHandle, *argv: str) -> int:
    return main([*argv, "--root", str(handle.root)])


@dataclass
class Saved:
    """What a fault may break, captured before it is injected."""

    tenant: str
    surface: str
    manifest: bytes
    config: dict
    rules: list


def save(handle: StackHandle, tenant: str, surface: str) -> Saved:
    config = call(handle, "GET", f"/v1/admin/tenants/{tenant}/config", tenant).json()["config"]
    rules = call(handle, "GET", f"/v1/admin/tenants/{tenant}/rules", tenant).json()["rules"]
    return Saved(tenant, surface, read_manifest_bytes(handle, tenant, surface), config, rules)


def restore(handle: StackHandle, saved: Saved) -> None:
    assert stack_cli(handle, "heal") == 0
    with closing(open_store(handle.info, handle.env)) as store:
        store.put(manifest_key(saved.tenant, saved.surface), saved.manifest)
    for kind, doc in (("config", saved.config), ("rules", saved.rules)):
        # The PUT body is the document itself (never wrapped): a wrapped one would be stored as a new, wrong document.
        resp = call(handle, "PUT", f"/v1/admin/tenants/{saved.tenant}/{kind}", saved.tenant, doc)
        assert resp.status_code == 200, resp.text
    invalidate(handle, saved.tenant, saved.surface, ("popularity", "config", "rules"))
    assert call(handle, "GET", "/readyz").status_code == 200
    assert served(handle, saved.tenant, saved.surface)


# --- what each fault must visibly break --------------------------------------------------------------------------


def _latest_run(handle: StackHandle, saved: Saved) -> dict:
    return run_logs(handle.root, saved.tenant, saved.surface)[0]


def _assert_failed_run(handle: StackHandle, saved: Saved, family: str) -> dict:
    """The newest run, of yesterday, failed, printing a line of the suite's ``family`` (tests/suite_lines.py), and
    swapped nothing: serving stays on the day before, the last day published (the checkpoint), as after a morning
    run that failed."""
    run = _latest_run(handle, saved)
    printed = (runs_dir(handle.root, saved.tenant, saved.surface) / f"{run['run_id']}.log").read_text()
    assert run["status"] == "failed" and suite_family(printed) == family, printed
    assert printed.rstrip("\n").endswith(run["error"])
    with closing(open_store(handle.info, handle.env)) as store:
        _, etag = store.get_with_etag(manifest_key(saved.tenant, saved.surface))
    # A run stopped on its setup (exit 2) reads no manifest: it swapped nothing and saw nothing.
    assert run["manifest"]["after"] is None and run["manifest"]["before"] in ((None, etag) if family == "setup"
                                                                               else (etag,))
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    assert run["day"] == yesterday.isoformat()
    checkpoint = json.loads((handle.root / "checkpoints" / saved.tenant / f"{saved.surface}.json").read_text())
    assert checkpoint == {"day": (yesterday - timedelta(days=1)).isoformat()}
    return run


def observe_stale_manifest(handle: StackHandle, saved: Saved) -> None:
    manifest = json.loads(read_manifest_bytes(handle, saved.tenant, saved.surface))
    updated = datetime.strptime(manifest["updated_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert datetime.now(UTC) - updated > timedelta(hours=71)
    assert served(handle, saved.tenant, saved.surface)  # still serving: only freshness is broken


def observe_stale_data(handle: StackHandle, saved: Saved) -> None:
    manifest = json.loads(read_manifest_bytes(handle, saved.tenant, saved.surface))
    old = json.loads(saved.manifest)
    assert manifest["updated_at"] >= old["updated_at"]  # the pointer looks fresh
    with closing(open_store(handle.info, handle.env)) as store:
        for kind, uri in manifest["current"].items():
            assert uri != old["current"][kind]
            window = json.loads(store.get(store.key_for_uri(uri)))["window"]
            end = datetime.strptime(window["end"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            assert datetime.now(UTC) - end > timedelta(days=3), (kind, window)  # the data is old
    assert served(handle, saved.tenant, saved.surface)  # still serving: only the data's age is wrong


def observe_stale_cache(handle: StackHandle, saved: Saved, before: list[str]) -> None:
    manifest = json.loads(read_manifest_bytes(handle, saved.tenant, saved.surface))
    old = json.loads(saved.manifest)
    assert manifest["current"]["popularity"] != old["current"]["popularity"]
    assert manifest["updated_at"] >= old["updated_at"]
    assert served(handle, saved.tenant, saved.surface) == before  # the cache hides the new version
    invalidate(handle, saved.tenant, saved.surface)
    assert served(handle, saved.tenant, saved.surface) != before


def observe_empty(handle: StackHandle, saved: Saved) -> None:
    resp = recommend(handle, saved.tenant, saved.surface)
    assert resp.status_code == 200 and resp.json()["items"] == [], resp.text


def observe_missing_blob(handle: StackHandle, saved: Saved) -> None:
    observe_empty(handle, saved)
    uri = json.loads(read_manifest_bytes(handle, saved.tenant, saved.surface))["current"]["popularity"]
    with closing(open_store(handle.info, handle.env)) as store, pytest.raises(NotFound):
        store.get(store.key_for_uri(uri))


def observe_corrupt_manifest(handle: StackHandle, saved: Saved) -> None:
    resp = recommend(handle, saved.tenant, saved.surface)
    assert resp.status_code == 422 and resp.json()["code"] == "RECSYS_ARTIFACT_INCOMPATIBLE", resp.text


def observe_partial_publish(handle: StackHandle, saved: Saved) -> None:
    run = _assert_failed_run(handle, saved, "dependency")
    blob = next(s for s in run["steps"] if s["step"] == "blob" and s["kind"] == "popularity")
    assert blob["status"] == "ok"
    version = blob["uri"].rsplit("/", 1)[-1].removesuffix(".json")
    base = f"{saved.tenant}/{saved.surface}/popularity/{version}.json"
    with closing(open_store(handle.info, handle.env)) as store:
        assert store.exists(f"objectstore/{base}")  # the orphan blob
        assert not store.exists(f"registry/records/{base}")  # never recorded


def observe_validation_failed(handle: StackHandle, saved: Saved) -> None:
    run = _assert_failed_run(handle, saved, "bad event")
    assert run["error"] == "run failed: invalid exposure event: item_id must be set"
    assert not any(s["step"] == "blob" for s in run["steps"])  # refused at ingest, before anything was built


def observe_limit_exceeded(handle: StackHandle, saved: Saved) -> None:
    _assert_failed_run(handle, saved, "event limit")


def observe_config_error(handle: StackHandle, saved: Saved) -> None:
    run = _assert_failed_run(handle, saved, "setup")
    assert run["exit_code"] == 2 and run["error"] == "config error: unsupported artifact kind: embeddings"


def observe_signal_db_refused(handle: StackHandle, saved: Saved) -> None:
    _assert_failed_run(handle, saved, "signal database refused")


def observe_store_not_writable(handle: StackHandle, saved: Saved) -> None:
    assert _assert_failed_run(handle, saved, "os error")["error"].endswith(": permission denied")


def observe_implicit_limit(handle: StackHandle, saved: Saved) -> None:
    run = _assert_failed_run(handle, saved, "optional stage limit")
    assert run["error"].startswith("run failed: limit_exceeded: distinct user limit exceeded: 3 >= 3")


def observe_backfill_over_limit(handle: StackHandle, saved: Saved) -> None:
    """Two days published and checkpointed, then the suite's line; the failed day is the one after the checkpoint."""
    run = _latest_run(handle, saved)
    printed = (runs_dir(handle.root, saved.tenant, saved.surface) / f"{run['run_id']}.log").read_text()
    assert suite_family(printed) == "configuration" and printed.rstrip().endswith("backfill exceeds max days: 3 > 2")
    assert printed.count(" INFO ingest: start ") == 2 and printed.count(" INFO publish: done ") == 2


def observe_bad_rules(handle: StackHandle, saved: Saved) -> None:
    observe_empty(handle, saved)
    entries = call(handle, "GET", f"/v1/admin/tenants/{saved.tenant}/audit?limit=5", saved.tenant).json()["entries"]
    entry = next(e for e in entries if e["action"] == "rules.update")
    assert entry["actor_sub"].startswith("api-key:") and entry["after_state"] != saved.rules


def observe_bad_config(handle: StackHandle, saved: Saved) -> None:
    resp = recommend(handle, saved.tenant, saved.surface)
    assert resp.status_code == 200 and resp.json()["items"] == []
    assert "SIGNAL_UNAVAILABLE" in [w["code"] for w in resp.json().get("warnings", [])]


def observe_foreign_artifact(handle: StackHandle, saved: Saved) -> None:
    observe_corrupt_manifest(handle, saved)
    manifest = json.loads(read_manifest_bytes(handle, saved.tenant, saved.surface))
    assert f"/{saved.tenant}/" not in manifest["current"]["popularity"], manifest


def observe_shrunk_publish(handle: StackHandle, saved: Saved) -> None:
    manifest = json.loads(read_manifest_bytes(handle, saved.tenant, saved.surface))
    old = json.loads(saved.manifest)
    with closing(open_store(handle.info, handle.env)) as store:
        now = json.loads(store.get(store.key_for_uri(manifest["current"]["popularity"])))["items"]
        before = json.loads(store.get(store.key_for_uri(old["current"]["popularity"])))["items"]
    assert len(now) == 5 < len(before) // 2, (len(now), len(before))
    resp = recommend(handle, saved.tenant, saved.surface)
    assert resp.status_code == 200 and len(resp.json()["items"]) == 5, resp.text  # valid and served, but shrunk


def observe_rules_hide_most(handle: StackHandle, saved: Saved) -> None:
    resp = recommend(handle, saved.tenant, saved.surface)
    assert resp.status_code == 200 and 0 < len(resp.json()["items"]) < 10, resp.text
    rules = call(handle, "GET", f"/v1/admin/tenants/{saved.tenant}/rules", saved.tenant).json()["rules"]
    assert len(rules[-1]["item_ids"]) > 50


def observe_store_down(handle: StackHandle, saved: Saved) -> None:
    resp = recommend(handle, saved.tenant, saved.surface)
    assert resp.status_code == 500 and resp.json()["code"] == "RECSYS_INTERNAL", resp.text


def observe_not_ready(handle: StackHandle, saved: Saved) -> None:
    assert call(handle, "GET", "/readyz").status_code == 503
    assert call(handle, "GET", "/healthz").status_code == 200


def observe_eval(expect: str, trusted: bool = False) -> Callable[[StackHandle, Saved], None]:
    """An evaluation fault writes a dataset under ROOT/eval/; the checks find ``expect`` in it."""
    def observe(handle: StackHandle, saved: Saved) -> None:
        from recsys_checks.judge.evaluation.quality import check_eval_quality
        from recsys_stack.evalgen import EXPERIMENT_ID
        from recsys_stack.faults import eval_dir

        folder = eval_dir(handle.root, saved.tenant, saved.surface)
        res = check_eval_quality(folder / "exposures.jsonl", folder / "outcomes.jsonl", folder / "assignments.jsonl",
                           EXPERIMENT_ID)
        assert res.data["trusted"] is trusted and expect in res.summary, res.summary

    return observe


def _answer(handle: StackHandle, saved: Saved, **extra) -> httpx.Response:
    body = {"surface": saved.surface, "k": 10, "user": {"user_id": "u-test"}, **extra}
    return call(handle, "POST", "/v1/recommend", saved.tenant, body)


def observe_cooc_unreadable(handle: StackHandle, saved: Saved) -> None:
    blob = json.loads(saved.manifest)["current"]["cooc"]
    assert _answer(handle, saved).status_code == 200  # list pages are fine
    anchored = _answer(handle, saved, anchors={"item_ids": ["sku-0001"]})
    assert anchored.status_code == 500 and anchored.json()["code"] == "RECSYS_INTERNAL", (blob, anchored.text)


def observe_popularity_unreadable(handle: StackHandle, saved: Saved) -> None:
    resp = _answer(handle, saved)
    assert resp.status_code == 500 and resp.json()["code"] == "RECSYS_INTERNAL", resp.text


def observe_pin_unknown(handle: StackHandle, saved: Saved) -> None:
    resp = _answer(handle, saved)
    assert [i["item_id"] for i in resp.json()["items"][:2]] == ["sku-00O3", "sku-0012x"], resp.text
    assert "RULE_PIN_INJECTED" in {w["code"] for w in resp.json().get("warnings") or []}


def observe_rules_wrapped(handle: StackHandle, saved: Saved) -> None:
    stored = call(handle, "GET", f"/v1/admin/tenants/{saved.tenant}/rules", saved.tenant).json()["rules"]
    assert stored == {"rules": saved.rules}


def observe_max_k_low(handle: StackHandle, saved: Saved) -> None:
    resp = _answer(handle, saved)
    assert len(resp.json()["items"]) == 2, resp.text
    assert "DEFAULT_APPLIED" in {w["code"] for w in resp.json().get("warnings") or []}


def observe_stale_and_blocked(handle: StackHandle, saved: Saved) -> None:
    assert _answer(handle, saved).json()["items"] == []
    updated = json.loads(read_manifest_bytes(handle, saved.tenant, saved.surface))["updated_at"]
    assert datetime.now(UTC) - datetime.fromisoformat(updated) > timedelta(hours=49)


OBSERVE: dict[str, Callable[[StackHandle, Saved], None]] = {
    "cooc-unreadable": observe_cooc_unreadable,
    "popularity-unreadable": observe_popularity_unreadable,
    "pin-unknown": observe_pin_unknown,
    "rules-wrapped": observe_rules_wrapped,
    "max-k-low": observe_max_k_low,
    "stale-and-blocked": observe_stale_and_blocked,
    "stale-manifest": observe_stale_manifest,
    "stale-data": observe_stale_data,
    "bad-publish": observe_empty,
    "missing-blob": observe_missing_blob,
    "corrupt-manifest": observe_corrupt_manifest,
    "partial-publish": observe_partial_publish,
    "validation-failed": observe_validation_failed,
    "limit-exceeded": observe_limit_exceeded,
    "bad-rules": observe_bad_rules,
    "config-error": observe_config_error,
    "signal-db-refused": observe_signal_db_refused,
    "store-not-writable": observe_store_not_writable,
    "backfill-over-limit": observe_backfill_over_limit,
    "implicit-limit": observe_implicit_limit,
    "bad-config": observe_bad_config,
    "foreign-artifact": observe_foreign_artifact,
    "shrunk-publish": observe_shrunk_publish,
    "rules-hide-most": observe_rules_hide_most,
    "weights-overflow": observe_store_down,  # the same 500 RECSYS_INTERNAL, from the config this time
    "store-down": observe_store_down,
    "not-ready": observe_not_ready,
    "eval-srm": observe_eval("sample ratio mismatch"),
    "eval-low-join": observe_eval("outcome join rate 69.4% is below 95%"),
    "eval-impossible-lift": observe_eval("impossible"),
    "eval-schema-break": observe_eval("break the contract"),
    "eval-clean": observe_eval("our decision (no run configuration given): ship, by the suite's rules with our defaults",
                                trusted=True),
}


def test_every_fault_has_an_observation() -> None:
    """Each registered fault is covered by the parametrized test below."""
    assert set(OBSERVE) | {"stale-cache", "slow-store"} == set(FAULTS)


@pytest.mark.parametrize("fault", [f for f in FAULTS if f != "slow-store"])
def test_injected_fault_breaks_the_running_stack(fault: str, fault_stack: StackHandle) -> None:
    """`recsys-stack inject FAULT` visibly breaks the stack (API or store), and the break can be undone."""
    tenant, surface = TARGETS.get(fault, ("demo", "home"))
    if fault in ("store-not-writable", "cooc-unreadable", "popularity-unreadable") \
            and fault_stack.info.get("store") == "s3":
        pytest.skip("a read-only folder or a directory in place of a blob is a file store's fault")
    saved = save(fault_stack, tenant, surface)
    before = served(fault_stack, tenant, surface)
    assert before, "a healthy stack serves recommendations"
    try:
        assert stack_cli(fault_stack, "inject", fault, "--tenant", tenant, "--surface", surface) == 0
        if fault == "stale-cache":
            observe_stale_cache(fault_stack, saved, before)
        else:
            OBSERVE[fault](fault_stack, saved)
    finally:
        restore(fault_stack, saved)
    assert_every_window_has_ended(fault_stack, tenant, surface)  # once the store is back (store-down)


def assert_every_window_has_ended(handle: StackHandle, tenant: str, surface: str) -> None:
    """Every run of the surface covered a UTC day before today, and every version record's window has ended: the
    stack publishes as the suite is scheduled (daily, for the previous day), never a window ending in the future."""
    today = datetime.now(UTC).date()
    days = [run["day"] for run in run_logs(handle.root, tenant, surface)]
    assert days and all(date.fromisoformat(day) < today for day in days), days
    with closing(open_store(handle.info, handle.env)) as store:
        for key in store.list(f"registry/records/{tenant}/{surface}/"):
            end = json.loads(store.get(key))["Window"]["End"]
            assert datetime.strptime(end, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) <= datetime.now(UTC), (key, end)


def test_publish_runs_the_next_ended_day_and_changes_served_recommendations(
    fault_stack: StackHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    """`publish` swaps in the day after the checkpoint and invalidates the cache, so the service serves it at once;
    once up to date it re-runs yesterday (same versions), never the day in progress."""
    tenant, surface = PUBLISH_TARGET
    saved = save(fault_stack, tenant, surface)
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    try:
        older = (yesterday - timedelta(days=2)).isoformat()
        assert stack_cli(fault_stack, "publish", "--tenant", tenant, "--surface", surface, "--day", older) == 0
        for day, new_day in ((yesterday - timedelta(days=1), True), (yesterday, True), (yesterday, False)):
            before_manifest = json.loads(read_manifest_bytes(fault_stack, tenant, surface))
            before = served(fault_stack, tenant, surface)
            capsys.readouterr()
            assert stack_cli(fault_stack, "publish", "--tenant", tenant, "--surface", surface) == 0
            assert f"day {day.isoformat()}" in capsys.readouterr().out
            after_manifest = json.loads(read_manifest_bytes(fault_stack, tenant, surface))
            assert after_manifest["updated_at"] >= before_manifest["updated_at"]
            # Up to date, the re-run of yesterday builds the versions the manifest already names.
            moved = after_manifest["current"]["popularity"] != before_manifest["current"]["popularity"]
            assert moved is new_day
            assert (served(fault_stack, tenant, surface) != before) is new_day
            assert run_logs(fault_stack.root, tenant, surface)[0]["status"] == "ok"
        assert_every_window_has_ended(fault_stack, tenant, surface)
    finally:
        restore(fault_stack, saved)


def test_failed_publish_exits_1_with_the_run_failed_line(
    fault_stack: StackHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    """A publish whose manifest cannot be read exits 1 and prints the pipeline's `run failed:` line."""
    tenant, surface = PUBLISH_TARGET
    saved = save(fault_stack, tenant, surface)
    with closing(open_store(fault_stack.info, fault_stack.env)) as store:
        store.put(manifest_key(tenant, surface), b"{broken")
    try:
        assert stack_cli(fault_stack, "publish", "--tenant", tenant, "--surface", surface) == 1
        assert capsys.readouterr().err.startswith("run failed: dependency: ")
    finally:
        restore(fault_stack, saved)


@pytest.mark.parametrize("fail_at", ["blob", "validate:cooc", "record:popularity", "swap"])
def test_publish_told_to_fail_at_a_step_leaves_the_manifest_and_exits_1(
    fault_stack: StackHandle, capsys: pytest.CaptureFixture[str], fail_at: str
) -> None:
    """`publish --fail-at STEP` fails like a broken pipeline: `run failed:` line, exit 1, manifest bytes unchanged."""
    tenant, surface = PUBLISH_TARGET
    before = read_manifest_bytes(fault_stack, tenant, surface)
    code = stack_cli(fault_stack, "publish", "--tenant", tenant, "--surface", surface, "--fail-at", fail_at)
    assert code == 1
    printed = capsys.readouterr().err  # the stage lines, then the suite's failure line(s)
    assert suite_family(printed) in ("dependency", "validator check"), printed
    assert read_manifest_bytes(fault_stack, tenant, surface) == before
    assert run_logs(fault_stack.root, tenant, surface)[0]["status"] == "failed"


def test_publish_with_an_unknown_failure_step_is_a_usage_error(
    fault_stack: StackHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--fail-at nowhere` exits 2 naming the valid steps, and publishes nothing."""
    tenant, surface = PUBLISH_TARGET
    before = read_manifest_bytes(fault_stack, tenant, surface)
    assert stack_cli(fault_stack, "publish", "--tenant", tenant, "--surface", surface, "--fail-at", "nowhere") == 2
    assert "validate" in capsys.readouterr().err
    assert read_manifest_bytes(fault_stack, tenant, surface) == before


def test_publish_rejects_a_tenant_the_stack_does_not_serve(
    fault_stack: StackHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown tenant is a usage error (exit 2) that names the tenants the stack serves."""
    assert stack_cli(fault_stack, "publish", "--tenant", "nobody", "--surface", "home") == 2
    err = capsys.readouterr().err
    assert "nobody" in err and "demo" in err and "acme" in err


def test_heal_with_nothing_broken_changes_nothing(fault_stack: StackHandle, capsys: pytest.CaptureFixture[str]) -> None:
    """`heal` on a healthy stack is a no-op that says so."""
    assert stack_cli(fault_stack, "heal") == 0
    assert "nothing to heal" in capsys.readouterr().out
    assert Path(fault_stack.root, "store").is_dir() or fault_stack.info["store"] == "s3"


# --- slow-store: a latency proxy in front of the S3 endpoint ------------------------------------------------------


def _stack_json(handle: StackHandle) -> dict:
    return json.loads((handle.root / "stack.json").read_text())


def _list_seconds(endpoint: str, handle: StackHandle) -> float:
    import time

    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(s3={"addressing_style": "path"}),
        aws_access_key_id=handle.env["RECSYS_ARTIFACT_S3_ACCESS_KEY"],
        aws_secret_access_key=handle.env["RECSYS_ARTIFACT_S3_SECRET_KEY"],
    )
    with closing(client):
        client.list_objects_v2(Bucket="recsys-artifacts", Prefix="registry/current/", MaxKeys=1)  # connect
        start = time.monotonic()
        client.list_objects_v2(Bucket="recsys-artifacts", Prefix="registry/current/", MaxKeys=1)
        return time.monotonic() - start


def test_slow_store_is_refused_on_a_file_store(fault_stack: StackHandle, capsys: pytest.CaptureFixture[str]) -> None:
    """On a file store slow-store exits 2 with one line saying it needs S3, and changes nothing."""
    if fault_stack.info["store"] != "file":
        pytest.skip("the S3 stack accepts slow-store")
    before = (fault_stack.root / "stack.json").read_bytes()
    assert stack_cli(fault_stack, "inject", "slow-store") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "S3 store only" in err and "--store s3" in err
    assert (fault_stack.root / "stack.json").read_bytes() == before


def test_slow_store_delays_every_s3_request_until_healed(fault_stack: StackHandle,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """slow-store puts a proxy before S3 that holds each request; the service keeps serving; heal removes it."""
    if fault_stack.info["store"] != "s3":
        pytest.skip("slow-store needs the S3 store")
    direct = _stack_json(fault_stack)["s3_endpoint"]
    try:
        assert stack_cli(fault_stack, "inject", "slow-store", "--latency-ms", "300") == 0
        assert "300 ms" in capsys.readouterr().out
        info = _stack_json(fault_stack)
        proxy_pid = info["processes"]["s3-proxy"]
        assert info["s3_endpoint"] != direct and info["s3_upstream_endpoint"] == direct
        assert _list_seconds(info["s3_endpoint"], fault_stack) >= 0.3
        assert _list_seconds(direct, fault_stack) < 0.3
        assert served(fault_stack)  # the service keeps its own connection to the store
    finally:
        assert stack_cli(fault_stack, "heal") == 0
    assert "answers directly again" in capsys.readouterr().out
    info = _stack_json(fault_stack)
    assert info["s3_endpoint"] == direct and "s3-proxy" not in info["processes"]
    assert not pid_alive(int(proxy_pid))
    assert stack_cli(fault_stack, "heal") == 0 and "nothing to heal" in capsys.readouterr().out


def test_a_store_that_never_answers_ends_freshness_with_unreachable(fault_stack: StackHandle) -> None:
    """Behind a proxy that holds every request for ten minutes, freshness is inconclusive (the store unreachable)
    within its timeout."""
    if fault_stack.info["store"] != "s3":
        pytest.skip("slow-store needs the S3 store")
    from recsys_checks.judge.registry.freshness import check_freshness
    from recsys_checks.reach.settings import Target
    from recsys_stack.processes import client_env, read_secrets

    try:
        assert stack_cli(fault_stack, "inject", "slow-store", "--latency-ms", "600000") == 0
        env = client_env(_stack_json(fault_stack), read_secrets(fault_stack.root))
        target = Target.from_env(env, timeout=1.0)
        result = check_freshness(target)  # pytest's timeout would end a hang; the read timeout ends it in seconds
        assert result.data["outcome"] == "inconclusive" and "unreachable" in result.unread
    finally:
        assert stack_cli(fault_stack, "heal") == 0


def test_latency_is_refused_for_any_other_fault(fault_stack: StackHandle, capsys: pytest.CaptureFixture[str]) -> None:
    """--latency-ms with a fault other than slow-store: exit 2, nothing injected."""
    before = read_manifest_bytes(fault_stack, "demo", "home")
    assert stack_cli(fault_stack, "inject", "stale-manifest", "--latency-ms", "20") == 2
    assert "slow-store" in capsys.readouterr().err
    assert read_manifest_bytes(fault_stack, "demo", "home") == before
