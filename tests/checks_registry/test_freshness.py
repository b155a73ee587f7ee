"""Fleet freshness: every (tenant, surface) under the registry, classified."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from recsys_checks.core.errors import Unreachable
from recsys_checks.judge.registry.freshness import check_freshness

FRESH = datetime(2026, 1, 4, 9, 0, tzinfo=UTC)
STALE = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)


def test_fleet_is_quiet_when_every_surface_is_fresh(registry):
    """One fresh valid surface: ok, one healthy row."""
    res = check_freshness(registry.target, now=FRESH)
    assert res.status == "ok", res.summary
    assert [(r["tenant"], r["surface"], r["condition"]) for r in res.data["rows"]] == [("demo", "home", "healthy")]


def test_fleet_fires_on_a_stale_surface(registry):
    """Two days later the same surface is stale."""
    res = check_freshness(registry.target, now=STALE)
    assert res.status == "fail"
    assert res.data["counts"]["stale"] == 1 and "stale: demo/home" in res.summary


def test_fleet_classifies_missing_and_invalid(registry):
    """A surface dir without manifest and a tenant without surfaces are missing; a garbled manifest is invalid."""
    registry.write("registry/current/demo/search/manifest.json.bak", b"{}")  # surface directory, no manifest
    registry.write("registry/current/demo/promo/manifest.json", b"{garbage")
    if registry.root is not None:
        (registry.root / "registry/current/acme").mkdir()  # tenant without surfaces (a file store has directories)
    seen = []
    res = check_freshness(registry.target, now=FRESH, progress=lambda done, total, label: seen.append((done, total, label)))
    cond = {(r["tenant"], r["surface"]): r["condition"] for r in res.data["rows"]}
    assert cond[("demo", "home")] == "healthy"
    assert cond[("demo", "search")] == "missing"
    assert cond[("demo", "promo")] == "invalid"
    if registry.root is not None:
        assert cond[("acme", None)] == "missing"
    assert res.status == "fail"
    assert [d for d, _, _ in seen] == list(range(1, len(res.data["rows"]) + 1))
    assert {t for _, t, _ in seen} == {len(res.data["rows"])}
    assert "demo/promo: invalid" in {label for _, _, label in seen}


def test_fleet_tenant_without_surfaces_is_missing(registry):
    """Asking for a tenant that has no surfaces reports it missing rather than passing."""
    res = check_freshness(registry.target, tenant="acme", now=FRESH)
    assert res.status == "fail"
    assert res.data["rows"][0]["condition"] == "missing" and res.data["rows"][0]["tenant"] == "acme"


def test_fleet_filters_by_tenant(registry):
    """With a tenant only its surfaces are checked."""
    doc = json.loads(registry.read("registry/current/demo/home/manifest.json"))
    doc["tenant"] = "acme"
    registry.write("registry/current/acme/home/manifest.json", json.dumps(doc).encode())
    res = check_freshness(registry.target, tenant="demo", now=FRESH)
    assert [r["tenant"] for r in res.data["rows"]] == ["demo"] and res.status == "ok"
    all_rows = check_freshness(registry.target, now=FRESH).data["rows"]
    assert {r["tenant"] for r in all_rows} == {"acme", "demo"}


@pytest.mark.parametrize("where", ["empty", "absent"])
def test_a_fleet_that_lists_no_surface_is_inconclusive_not_nothing_found(tmp_path, where):
    """An empty registry, or a template naming a folder that is not there: inconclusive, exit 2, the template named."""
    from recsys_checks.core.results import exit_code
    from recsys_checks.reach.settings import Target

    if where == "empty":
        (tmp_path / "registry" / "current").mkdir(parents=True)
    target = Target(manifest_template=(tmp_path / "registry").as_uri() + "/current/{tenant}/{surface}/manifest.json")
    res = check_freshness(target)
    assert res.status == "fail" and res.data["outcome"] == "inconclusive" and exit_code([res]) == 2
    assert res.unread and "RECSYS_ARTIFACT_MANIFEST_TEMPLATE" in res.unread
    assert res.summary.startswith("inconclusive") and "no surfaces found" not in res.summary


def test_a_tenant_the_registry_does_not_hold_is_inconclusive(registry):
    """Asked for one tenant that has nothing under the registry: its row says missing, the scan could not look."""
    res = check_freshness(registry.target, tenant="nobody", now=FRESH)
    assert [r["condition"] for r in res.data["rows"]] == ["missing"]
    assert res.data["outcome"] == "inconclusive" and res.unread and res.data["exit_code"] == 2


def test_the_outcome_names_what_the_scan_found(registry):
    """A complete scan says healthy or unhealthy in data.outcome, with no unread."""
    fresh, stale = check_freshness(registry.target, now=FRESH), check_freshness(registry.target, now=STALE)
    assert (fresh.data["outcome"], stale.data["outcome"]) == ("healthy", "unhealthy")
    assert fresh.unread is None and stale.unread is None


@pytest.mark.stack
def test_fleet_against_an_unreachable_store_is_inconclusive(closed_port):
    """A closed endpoint: the scan could not look (inconclusive, exit 2), never an empty fleet."""
    from recsys_checks.core.results import exit_code
    from recsys_checks.reach.settings import Target

    target = Target(manifest_template="s3://recsys-artifacts/registry/current/{tenant}/{surface}/manifest.json",
                    s3_endpoint=f"http://127.0.0.1:{closed_port}", s3_access_key="k", s3_secret_key="s", timeout=1.0)
    res = check_freshness(target)
    assert res.data["outcome"] == "inconclusive" and exit_code([res]) == 2
    assert res.unread and "unreachable" in res.unread
    assert [(r["surface"], r["condition"]) for r in res.data["rows"]] == [(None, "unreachable")]
    assert res.data["rows"][0]["summary"].startswith("the fleet was not read")


# --- shallow and deep -------------------------------------------------------------------------------------------

HOME = "registry/current/demo/home/manifest.json"


def _home(registry) -> dict:
    return json.loads(registry.read(HOME))


def _freshen_record(registry, tenant: str, surface: str, uri: str) -> None:
    """Rewrite the record of the version ``uri`` names so that its window is yesterday's (today's data)."""
    version = uri.rsplit("/", 1)[1].removesuffix(".json")
    key = f"registry/records/{tenant}/{surface}/popularity/{version}.json"
    record = json.loads(registry.read(key))
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    record["Window"] = {"Start": (end - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "End": end.strftime("%Y-%m-%dT%H:%M:%SZ")}
    registry.write(key, json.dumps(record, indent=2).encode())


def _put_surface(registry, tenant: str, surface: str, doc: dict | bytes) -> None:
    data = doc if isinstance(doc, bytes) else json.dumps(doc, indent=2).encode()
    registry.write(f"registry/current/{tenant}/{surface}/manifest.json", data)


def test_shallow_is_the_default_and_says_so(registry):
    """Without deep the result names the shallow mode, in data and in the summary."""
    res = check_freshness(registry.target, now=FRESH)
    assert res.status == "ok" and res.data["mode"] == "shallow" and "shallow" in res.summary


def test_shallow_finds_torn_mismatched_and_badly_pointing_manifests(registry):
    """Truncated JSON, a manifest naming another surface, an unknown kind, a pointer without a key: all invalid."""
    home = _home(registry)
    _put_surface(registry, "demo", "torn", registry.read(HOME)[:57])
    _put_surface(registry, "demo", "elsewhere", home)  # says demo/home
    _put_surface(registry, "demo", "oddkind", {**home, "surface": "oddkind", "current": {
        **home["current"], "embeddings": home["current"]["popularity"]}})
    _put_surface(registry, "demo", "nokey", {**home, "surface": "nokey", "current": {
        **home["current"], "cooc": "s3://recsys-artifacts/"}})
    _put_surface(registry, "demo", "nopop", {**home, "surface": "nopop", "current": {"cooc": home["current"]["cooc"]}})
    res = check_freshness(registry.target, now=FRESH)
    rows = {r["surface"]: r for r in res.data["rows"]}
    assert rows["home"]["condition"] == "healthy"
    for surface, words in (("torn", "not valid JSON"), ("elsewhere", "demo/home, not demo/elsewhere"),
                           ("nokey", "does not name an object key"), ("nopop", "no popularity")):
        assert rows[surface]["condition"] == "invalid", rows[surface]
        assert words in rows[surface]["summary"], rows[surface]["summary"]
    # A kind the suite does not have is a deviation the service tolerates: said, never "invalid".
    assert rows["oddkind"]["condition"] == "healthy" and rows["oddkind"]["status"] == "warn"
    assert "kind 'embeddings', which is not a kind of the suite's" in rows["oddkind"]["summary"]
    assert "clients are not affected" in rows["oddkind"]["summary"]
    assert res.status == "fail" and res.data["counts"]["invalid"] == 4


def test_shallow_finds_a_surface_without_manifest_and_a_stale_one(registry):
    """A surface whose only object is not a manifest is missing; an old updated_at is stale; both fail."""
    registry.write("registry/current/demo/search/hold.json", b"{}")
    res = check_freshness(registry.target, now=STALE)
    cond = {r["surface"]: r["condition"] for r in res.data["rows"]}
    assert cond == {"home": "stale", "search": "missing"}
    assert "stale: demo/home" in res.summary and "missing: demo/search" in res.summary


def test_shallow_never_reads_a_blob_deep_does(registry, versions):
    """A blob lost by the store: shallow stays healthy (no blob is read), deep finds the surface invalid."""
    registry.remove(f"objectstore/demo/home/popularity/{versions.pop_day3_current}.json")
    assert check_freshness(registry.target, now=FRESH).status == "ok"
    deep = check_freshness(registry.target, now=FRESH, deep=True)
    row = deep.data["rows"][0]
    assert deep.status == "fail" and deep.data["mode"] == "deep" and row["condition"] == "invalid"
    assert "missing" in row["summary"]


def test_deep_finds_a_blob_whose_hash_does_not_recompute(registry, versions):
    """A blob edited in place (valid JSON, one count changed): deep reports the version mismatch, shallow cannot."""
    rel = f"objectstore/demo/home/popularity/{versions.pop_day3_current}.json"
    doc = json.loads(registry.read(rel))
    doc["items"][0]["count"] += 1
    registry.write(rel, json.dumps(doc, indent=2).encode())
    assert check_freshness(registry.target, now=FRESH).status == "ok"
    deep = check_freshness(registry.target, now=FRESH, deep=True)
    row = deep.data["rows"][0]
    assert deep.status == "fail" and row["condition"] == "invalid"
    assert "version" in row["summary"] or "hash" in row["summary"], row["summary"]


def test_one_worker_and_many_give_the_same_rows_in_path_order(registry):
    """Concurrency changes nothing in the answer: same rows, same order (tenant, then surface, as paths sort)."""
    home = _home(registry)
    for surface in ("b", "a-x", "a", "c"):
        _put_surface(registry, "demo", surface, {**home, "surface": surface})
    one = check_freshness(registry.target, now=FRESH, workers=1).data["rows"]
    many = check_freshness(registry.target, now=FRESH, workers=8).data["rows"]
    assert one == many
    assert [r["surface"] for r in one] == ["a-x", "a", "b", "c", "home"]


def test_the_summary_names_a_few_surfaces_and_counts_the_rest(registry):
    """Twelve stale surfaces: ten named, the rest counted, every row still there."""
    home = _home(registry)
    for i in range(11):
        _put_surface(registry, "demo", f"s{i:02d}", {**home, "surface": f"s{i:02d}"})
    res = check_freshness(registry.target, now=STALE)
    assert res.data["counts"]["stale"] == 12 and len(res.data["rows"]) == 12
    assert "(+2 more)" in res.summary and res.summary.count("demo/") == 10


class _DeadStore:
    """Answers the listing, then fails every read as a store that stopped answering would."""

    def get(self, uri: str):
        raise Unreachable(f"object store unreachable while reading {uri}")


def test_a_store_that_stops_answering_ends_the_scan():
    """Three surfaces in a row unreachable: the scan raises Unreachable instead of waiting on every surface."""
    from recsys_checks.judge.registry.freshness import scan
    from recsys_checks.reach.settings import Target

    target = Target(manifest_template="file:///nowhere/registry/current/{tenant}/{surface}/manifest.json")
    entries = [("demo", f"s{i}", None) for i in range(100)]
    with pytest.raises(Unreachable, match="failed 3 surfaces in a row"):
        list(scan(target, _DeadStore(), entries, now=FRESH))  # type: ignore[arg-type]
    one = list(scan(target, _DeadStore(), entries[:1], now=FRESH))  # type: ignore[arg-type]
    assert one[0]["condition"] == "unreachable"


def test_a_scan_that_stops_part_way_keeps_its_rows_and_is_inconclusive(registry):
    """Rows read before the store stopped answering stay in the result; the result says the scan did not finish."""
    from recsys_checks.judge.registry.freshness import Tally, scan

    class Stopping(_DeadStore):
        def get(self, uri: str):
            if "/dead" in uri:
                raise Unreachable(f"object store unreachable while reading {uri}")
            raise NotImplementedError  # never reached: the first row is decided by the listing

    target = registry.target
    missing = registry.target.manifest_uri("demo", "gone")
    entries = [("demo", "gone", {"tenant": "demo", "surface": "gone", "condition": "missing", "status": "fail",
                                 "summary": f"no manifest at {missing}", "manifest_uri": missing})]
    entries += [("demo", f"dead{i}", None) for i in range(5)]
    tally = Tally()
    rows = list(tally.rows(scan(target, Stopping(), entries, now=FRESH, workers=1)))  # type: ignore[arg-type]
    res = tally.result(target, None, timedelta(hours=26), False, rows)
    assert [r["surface"] for r in rows] == ["gone", "dead0", "dead1", None]
    assert rows[-1]["condition"] == "unreachable" and "the rest of the fleet was not read" in rows[-1]["summary"]
    assert res.data["outcome"] == "inconclusive" and res.data["exit_code"] == 2
    assert "stopped after 3 surface(s)" in res.unread and "missing: demo/gone" in res.summary


# --- the command streams -------------------------------------------------------------------------------------------


def _cli(registry, *args: str) -> list[str]:
    return ["freshness", "--manifest-template", registry.target.manifest_template, *args]


def test_the_command_streams_json_jsonl_and_text_with_the_same_rows(file_registry, capsys):
    """--json is one document with every row, --jsonl one line per row then the result, text a table and verdict."""
    from recsys_checks.cli.commands import main

    home = {**_home(file_registry), "updated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    _put_surface(file_registry, "demo", "home", home)
    _freshen_record(file_registry, "demo", "home", home["current"]["popularity"])
    _put_surface(file_registry, "demo", "old", {**home, "surface": "old", "updated_at": "2020-01-01T00:00:00Z"})
    assert main(_cli(file_registry, "--json")) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["check"] == "freshness" and doc["status"] == "fail" and doc["data"]["mode"] == "shallow"
    assert [(r["surface"], r["condition"]) for r in doc["data"]["rows"]] == [("home", "healthy"), ("old", "stale")]
    assert doc["data"]["counts"]["stale"] == 1

    assert main(_cli(file_registry, "--jsonl")) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    def same(row: dict) -> dict:  # a second may pass between the runs: ages can differ by one
        return {k: v for k, v in row.items() if k not in ("age_seconds", "summary")}

    assert [same(r) for r in lines[:-1]] == [same(r) for r in doc["data"]["rows"]]
    assert lines[-1]["check"] == "freshness" and "rows" not in lines[-1]["data"]

    assert main(_cli(file_registry)) == 1
    text = capsys.readouterr().out
    assert "demo/old is stale" in text and text.splitlines()[-4].startswith("FAIL freshness")


def test_json_and_jsonl_together_are_refused(file_registry, capsys):
    """Both output formats at once: exit 2, one line, nothing on stdout."""
    from recsys_checks.cli.commands import main

    assert main(_cli(file_registry, "--json", "--jsonl")) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1 and "--jsonl" in out.err


@pytest.mark.parametrize("workers", ["0", "-3", "many"])
def test_workers_must_be_a_positive_whole_number(file_registry, capsys, workers):
    """--workers 0, negative or not a number: exit 2 before anything is read."""
    from recsys_checks.cli.commands import main

    with pytest.raises(SystemExit) as exc:
        main(_cli(file_registry, "--workers", workers))
    assert exc.value.code == 2 and capsys.readouterr().out == ""


@pytest.mark.parametrize("uri, problem", [
    ("file:///store/objectstore/demo/home/popularity/ab12.json", None),
    ("file://localhost/store/objectstore/demo/home/popularity/ab12.json", None),
    ("file:///store/objectstore/demo/home/popularity/", "does not name a blob file"),
    ("file:///store/objectstore/../etc/passwd", "does not name a blob file"),
    ("file:///store/./objectstore/x.json", "does not name a blob file"),
    ("file:///store/x\x00.json", "NUL"),
    ("file://otherhost/store/x.json", "not a local file URI"),
    ("file://relative/x.json", "not a local file URI"),
])
def test_file_pointers_are_checked_without_reading_them(uri, problem):
    """A pointer to a file must name a file by an absolute, plain path; a directory, '..', '.', NUL or another
    host is invalid (the plain file:/// form and the general parse give the same answers)."""
    from recsys_checks.judge.registry.freshness import _pointer_problem

    found = _pointer_problem("popularity", uri)
    assert (found is None) if problem is None else (problem in found), found


def test_a_damaged_manifest_is_invalid_in_the_fleet_scan_as_in_status(registry):
    """Manifests above the byte limit are invalid in both modes, as `manifest status` says, not unreachable: three
    in a row must not read as a store that stopped answering and end the scan before the healthy surfaces."""
    from dataclasses import replace

    target = replace(registry.target, max_bytes=4096)
    big = b" " * 5000 + registry.read(HOME)
    for name in ("a1", "a2", "a3"):  # listed before demo/home
        _put_surface(registry, "demo", name, big)
    for deep in (False, True):
        res = check_freshness(target, now=FRESH, deep=deep)
        rows = {r["surface"]: r for r in res.data["rows"]}
        assert [rows[n]["condition"] for n in ("a1", "a2", "a3")] == ["invalid"] * 3, res.summary
        assert rows["home"]["condition"] == "healthy" and res.data["counts"]["unreachable"] == 0
        assert "above the 4096-byte limit" in rows["a1"]["summary"]
        assert "roll back with `recsys-checks manifest rollback --tenant demo --surface a1 --previous`" \
            in rows["a1"]["summary"]


@pytest.mark.parametrize("fmt", [[], ["--json"], ["--jsonl"]])
def test_streamed_rows_never_show_a_credential_of_the_environment(file_registry, capsys, monkeypatch, fmt):
    """A surface whose name is the API key (as a peer could echo it into a row) is shown masked in every format,
    as every other output of the command is; the other rows are shown as they are."""
    from recsys_checks.cli.commands import main

    secret = "k3y-0f-the-service-9f8e7d6c"
    monkeypatch.setenv("RECSYS_API_KEY", secret)
    home = {**_home(file_registry), "updated_at": "2020-01-01T00:00:00Z"}
    _put_surface(file_registry, "demo", secret, {**home, "surface": secret})
    assert main(_cli(file_registry, *fmt)) == 1
    out = capsys.readouterr().out
    assert secret not in out
    assert "demo/***" in out and "demo/home" in out
