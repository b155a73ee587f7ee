"""`recsys-stack reset` leaves nothing behind: a stack dirtied in every way a fault (or a runbook) can, then reset,
is indistinguishable from the same stack just after `up`, and matches a stack started afresh.

The drills and the runbook tests reset one stack per store between scenarios (``fresh_stack``) instead of starting
a new one each time; this is what makes that safe. What is compared (``fingerprint``): every file under the root
(bytes, mode, modification time) but the logs, every object of the bucket (and that there is no other bucket, no
older version and no unfinished upload), each tenant's config and rules and the whole admin audit log, what the
service serves (readiness, recommendations of every surface, with its caches cold and then warm) and counts
(``/metrics`` before and after), which processes run and what ``stack.json`` says.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import httpx
import pytest
from checks_integration.checkskit import Checks
from stackfixture import StackHandle, read_handle, running_stack

from recsys_stack.faults import FAULTS
from recsys_stack.objstore import audit_prefix, hold_key
from recsys_stack.seed import TENANTS

pytestmark = [pytest.mark.stack, pytest.mark.slow]

KEPT = {"logs", "stack.json", "secrets.env", "snapshot"}
# Every fault, in an order in which each can still act (a publish needs a readable manifest and the job's limits, a
# cache invalidation the admin database), on the surfaces the fault tests use; those that take something away last.
ORDER = (
    ("stale-manifest", "demo", "home"), ("stale-data", "demo", "search"), ("stale-cache", "demo", "home"),
    ("bad-publish", "demo", "search"), ("shrunk-publish", "acme", "home"), ("partial-publish", "acme", "search"),
    ("validation-failed", "acme", "home"), ("foreign-artifact", "acme", "search"), ("rules-hide-most", "demo", "home"),
    ("bad-rules", "acme", "home"), ("bad-config", "acme", "home"), ("weights-overflow", "demo", "home"),
    ("eval-srm", "demo", "home"), ("eval-low-join", "demo", "search"), ("eval-impossible-lift", "acme", "home"),
    ("eval-schema-break", "acme", "search"), ("eval-clean", "demo", "home"), ("limit-exceeded", "demo", "home"),
    ("missing-blob", "acme", "home"), ("corrupt-manifest", "demo", "search"),
    ("pin-unknown", "acme", "home"), ("rules-wrapped", "demo", "home"), ("max-k-low", "acme", "search"),
    ("stale-and-blocked", "acme", "search"), ("cooc-unreadable", "demo", "home"),
    ("popularity-unreadable", "acme", "home"),
    ("slow-store", "demo", "home"), ("store-down", "demo", "home"), ("not-ready", "demo", "home"),
)
S3_ONLY = {"slow-store"}
FILE_ONLY = {"cooc-unreadable", "popularity-unreadable"}
# Faults whose dirt is the pipeline job's configuration and limits (pipeline.json, the same file limit-exceeded
# dirties above) or a store folder's mode bits (which `reset` rebuilds with the store); each needs a publish that
# fails its own way, which the earlier dirt (a lowered event limit, a corrupt manifest) would pre-empt.
SAME_DIRT_AS_LIMIT_EXCEEDED = {"config-error", "signal-db-refused", "implicit-limit", "backfill-over-limit",
                               "store-not-writable"}


def test_the_dirt_covers_every_fault() -> None:
    assert sorted([name for name, _, _ in ORDER] + sorted(SAME_DIRT_AS_LIMIT_EXCEEDED)) == sorted(FAULTS)


def _call(handle: StackHandle, method: str, path: str, tenant: str = "demo", headers: dict | None = None,
          **kwargs) -> httpx.Response:
    sent = {"X-API-Key": handle.api_key, "X-Org-Id": tenant, "X-Request-Id": "reset-test", **(headers or {})}
    with httpx.Client(base_url=handle.base_url, timeout=15.0, trust_env=False) as client:
        return client.request(method, path, headers=sent, **kwargs)


def _files(root: Path) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in KEPT:
            continue
        st = path.lstat()
        if path.is_symlink():
            out[str(rel)] = ("link", os.readlink(path))
        elif path.is_dir():
            out[str(rel)] = ("dir", st.st_mode)
        else:
            out[str(rel)] = ("file", st.st_mode, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def _bucket(handle: StackHandle) -> dict:
    checks = Checks(handle)
    with checks.s3() as s3:
        bucket = handle.info["bucket"]
        versions = s3.list_object_versions(Bucket=bucket)
        objects = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])
                objects[obj["Key"]] = (obj["ETag"], obj["Size"], body["ContentType"],
                                       hashlib.sha256(body["Body"].read()).hexdigest())
        return {
            "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"]),
            "objects": objects,
            "versions": len(versions.get("Versions", [])), "delete_markers": len(versions.get("DeleteMarkers", [])),
            "uploads": len(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])),
        }


def _metrics(handle: StackHandle) -> list[str]:
    """The service's counts: its own series (not the process collector's), without what measures time (latency
    sums and buckets, the manifest's age, the series' creation times)."""
    series = []
    for line in _call(handle, "GET", "/metrics").text.splitlines():
        name = line.split("{")[0].split(" ")[0]
        if name.startswith("recsys_") and not name.endswith(("_created", "_bucket", "_sum", "_age_seconds")):
            series.append(line)
    return series


def _served(handle: StackHandle) -> dict:
    out = {}
    for tenant, surfaces in TENANTS.items():
        for kind in ("config", "rules"):
            resp = _call(handle, "GET", f"/v1/admin/tenants/{tenant}/{kind}", tenant)
            out[f"{tenant} {kind}"] = (resp.status_code, resp.headers.get("ETag"), resp.json())
        for surface in surfaces:
            resp = _call(handle, "POST", "/v1/recommend", tenant,
                         json={"surface": surface, "k": 20, "user": {"user_id": "reset-probe"}})
            out[f"{tenant}/{surface} recommend"] = (resp.status_code, resp.json())
    return out


def _audit(handle: StackHandle) -> dict:
    out = {}
    for tenant in TENANTS:
        entries, params = [], {"limit": 200}
        while True:
            page = _call(handle, "GET", f"/v1/admin/tenants/{tenant}/audit", tenant, params=params).json()
            entries += page.get("entries") or []
            if not page.get("entries") or page.get("next_before") is None and page.get("next_before_id") is None:
                break
            params = {"limit": 200, "before": page.get("next_before"), "before_id": page.get("next_before_id")}
        out[tenant] = entries
    return out


def fingerprint(handle: StackHandle) -> dict:
    """Everything of the stack a runbook, a check or a test could see (see the module docstring)."""
    info = json.loads((handle.root / "stack.json").read_text())
    alive = {name for name, pid in (info.get("processes") or {}).items() if _alive(int(pid))}
    fp = {
        "stack.json": {k: v for k, v in info.items() if k not in ("processes", "identities", "ready_at")},
        "processes": sorted(alive),
        "metrics cold": _metrics(handle),
        "readyz": _call(handle, "GET", "/readyz").status_code,
        "health": _call(handle, "GET", "/health/detailed").json(),
        "served cold": _served(handle),
        "served warm": _served(handle),
        "metrics warm": _metrics(handle),
        "audit": _audit(handle),
        "files": _files(handle.root),
    }
    if info["store"] == "s3":
        fp["bucket"] = _bucket(handle)
    return fp


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def dirty(handle: StackHandle) -> list[str]:
    """Break ``handle``'s stack in every way there is; returns what was done (for the failure message)."""
    done = []
    checks = Checks(handle)
    store = handle.info["store"]
    # What a runbook's levers leave: a hold marker and its audit record in the registry, a rollback and its record.
    checks("hold", "set", "--tenant", "acme", "--surface", "search", "--reason", "reset test", "--execute", expect=0)
    checks("manifest", "rollback", "--tenant", "acme", "--surface", "search", "--previous", "--invalidate-cache", "--execute",
           "--reason", "reset test", expect=0)
    done.append("hold set, manifest rolled back")
    # Admin documents: new versions and audit entries.
    for kind in ("config", "rules"):
        resp = _call(handle, "GET", f"/v1/admin/tenants/acme/{kind}", "acme")
        doc = resp.json()[kind]
        doc = {**doc, "weights": {"pop": 0.5, "cooc": 0.0, "emb": 0.0}} if kind == "config" else doc[:1]
        put = _call(handle, "PUT", f"/v1/admin/tenants/acme/{kind}", "acme", json=doc,
                    headers={"If-Match": resp.headers["ETag"].strip('"')})
        assert put.status_code == 200, put.text
    done.append("acme config and rules changed")
    # Things no fault does, but a test or an operator could: stray objects, another bucket, an unfinished upload.
    if store == "s3":
        with checks.s3() as s3:
            bucket = handle.info["bucket"]
            s3.put_object(Bucket=bucket, Key=hold_key("demo", "home"), Body=b'{"held": true}')
            s3.put_object(Bucket=bucket, Key=f"{audit_prefix('demo', 'home')}/stray.json", Body=b"{}")
            s3.create_multipart_upload(Bucket=bucket, Key="objectstore/unfinished.json")
            s3.create_bucket(Bucket="stray-bucket")
            s3.put_object(Bucket="stray-bucket", Key="x", Body=b"x")
        done.append("stray S3 objects, an upload and a bucket")
    else:
        objects = handle.root / "store"
        (objects / hold_key("demo", "home")).write_text('{"held": true}')
        (objects / audit_prefix("demo", "home") / "stray.json").parent.mkdir(parents=True, exist_ok=True)
        (objects / audit_prefix("demo", "home") / "stray.json").write_text("{}")
        done.append("stray file store objects")
    (handle.root / "recsys-audit" / "demo").mkdir(parents=True)
    (handle.root / "recsys-audit" / "demo" / "record.json").write_text("{}")
    (handle.root / "stray.txt").write_text("left behind")
    (handle.root / "events" / "stray.jsonl").write_text("{}\n")
    done.append("stray files under the root")
    # Every fault the store takes; caches warmed first, so that a fault's change also sits behind a cached value.
    for name, tenant, surface in ORDER:
        if name in S3_ONLY and store != "s3" or name in FILE_ONLY and store != "file":
            continue
        _call(handle, "POST", "/v1/recommend", tenant, json={"surface": surface, "user": {"user_id": "warm"}})
        proc = handle.cli("inject", name, "--tenant", tenant, "--surface", surface, check=False)
        assert proc.returncode == 0, f"inject {name}: {proc.stderr}"
        done.append(f"inject {name} {tenant}/{surface}")
    return done


def _diff(a: dict, b: dict) -> str:
    lines = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
                inner = sorted(k for k in set(a[key]) | set(b[key]) if a[key].get(k) != b[key].get(k))
                lines.append(f"{key}: {inner[:20]}")
            else:
                lines.append(f"{key}: {str(a.get(key))[:300]} != {str(b.get(key))[:300]}")
    return "\n".join(lines)


# What is bound to differ between two stacks started apart: their root, ports, secrets, process ids, clocks and the
# random ids of their runs and publishes.
_VOLATILE = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z|\b\d{10,}\b|127\.0\.0\.1:\d+|api-key:[0-9a-f]{8}|\"(?:dev|ino)\": \d+|[0-9a-f]{12,}"
)


def _shape(fp: dict, root: Path) -> str:
    doc = {k: v for k, v in fp.items() if k not in ("files", "bucket")}
    doc["files"] = sorted(re.sub(r"[0-9a-f]{6,}|\d{8}T\d{6}Z?", "*", name) for name in fp["files"])
    if "bucket" in fp:
        doc["bucket"] = sorted(fp["bucket"]["objects"])
    return _VOLATILE.sub("*", json.dumps(doc, sort_keys=True).replace(str(root), "ROOT"))


@pytest.mark.parametrize("store", ["file", "s3"])
def test_a_reset_stack_is_the_stack_up_seeded_and_matches_one_started_afresh(store: str, tmp_path: Path) -> None:
    with running_stack(store, tmp_path / "stack") as handle:
        fresh = fingerprint(handle)
        # Nothing the fingerprint itself does may count: a second look at a stack is the same look.
        assert handle.cli("reset").returncode == 0
        assert fingerprint(read_handle(handle.root)) == fresh

        done = dirty(handle)
        assert _files(handle.root) != fresh["files"], "the dirt was not seen"  # (the S3 server is frozen now)
        assert handle.cli("reset").returncode == 0
        after = read_handle(handle.root)
        assert after.base_url == handle.base_url
        got = fingerprint(after)
        assert got == fresh, f"reset left something behind after {done}:\n{_diff(got, fresh)}"

        with running_stack(store, tmp_path / "new") as new:
            afresh = fingerprint(new)
        assert _shape(got, handle.root) == _shape(afresh, new.root)
