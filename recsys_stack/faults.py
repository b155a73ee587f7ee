"""Faults that break the running stack the way production breaks, each answered by one runbook.

A fault acts only through the stack's real interfaces (the object store, the publisher, the admin API, the
service's processes and files), so what a runbook sees afterwards is what it would see in production.
``heal`` undoes the infrastructure faults; the others are undone by the runbook that answers them (or by a publish).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

from . import processes
from .objstore import write_file_atomic
from .processes import StackError
from .publisher import reset_job_limits, set_job_config, set_job_limits

FAULT_ACTOR = "fault-injector"
DEFAULT_LATENCY_MS = 20
STALE_AGE = timedelta(hours=72)
MISSING_VERSION = "0" * 64
# Responses a re-sent day gains from its late events (each shows ten items): enough to change the day's versions.
LATE_RESPONSES = 12


@dataclass
class FaultContext:
    """What a fault needs: the stack's description, its secrets and its object store."""

    root: Path
    info: dict
    secrets: dict[str, str] = field(repr=False)
    _store: object = field(default=None, repr=False)
    latency_ms: int = DEFAULT_LATENCY_MS  # slow-store only

    @classmethod
    def load(cls, root: Path) -> FaultContext:
        root = Path(root).resolve()
        info = processes.require_stack(root)
        if not processes.running_processes(info, root).get("service"):
            raise StackError(f"the stack in {root} is not running: start it with `recsys-stack up --detach --root {root}`")
        return cls(root=root, info=info, secrets=processes.read_secrets(root))

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    @property
    def store(self):
        if self._store is None:
            self._store = processes.open_store(self.info, self.secrets)
        return self._store

    def manifest_key(self, tenant: str, surface: str) -> str:
        from .objstore import manifest_key

        return manifest_key(tenant, surface)

    def blob_uri(self, tenant: str, surface: str, kind: str, version: str) -> str:
        return f"{self.info['objectstore_uri']}/{tenant}/{surface}/{kind}/{version}.json"

    def read_manifest(self, tenant: str, surface: str) -> tuple[dict, str]:
        data, etag = self.store.get_with_etag(self.manifest_key(tenant, surface))
        return json.loads(data), etag

    def write_manifest(self, manifest: dict, etag: str | None) -> None:
        from .formats import manifest_bytes

        key = self.manifest_key(manifest["tenant"], manifest["surface"])
        self.store.put(key, manifest_bytes(manifest), if_match=etag)

    def request(self, method: str, path: str, *, tenant: str, body=None, headers=None) -> httpx.Response:
        hdrs = {"X-API-Key": self.secrets.get("RECSYS_API_KEY", ""), "X-Org-Id": tenant}
        hdrs.update(headers or {})
        with httpx.Client(base_url=self.info["base_url"], timeout=15.0, trust_env=False) as client:
            return client.request(method, path, json=body, headers=hdrs)

    def invalidate(self, tenant: str, surface: str | None, targets: tuple[str, ...] = ("popularity",)) -> None:
        body: dict = {"targets": list(targets)}
        if surface:
            body["surface"] = surface
        resp = self.request("POST", f"/v1/admin/tenants/{tenant}/cache/invalidate", tenant=tenant, body=body)
        if resp.status_code != 200:
            raise StackError(
                f"cache invalidation for {tenant}/{surface or '*'} failed: HTTP {resp.status_code} {resp.text[:200]}",
                exit_code=1,
            )

    def invalidate_all(self) -> None:
        for tenant, surfaces in self.info.get("tenants", {}).items():
            for surface in surfaces:
                self.invalidate(tenant, surface)

    def recommend(self, tenant: str, surface: str, k: int = 10) -> httpx.Response:
        body = {"surface": surface, "k": k, "user": {"user_id": "fault-probe"}}
        return self.request("POST", "/v1/recommend", tenant=tenant, body=body)

    def put_admin(self, tenant: str, kind: str, doc) -> str:
        resp = self.request("GET", f"/v1/admin/tenants/{tenant}/{kind}", tenant=tenant)
        headers = {"If-Match": resp.headers["ETag"].strip('"')} if resp.status_code == 200 and "ETag" in resp.headers else {}
        resp = self.request("PUT", f"/v1/admin/tenants/{tenant}/{kind}", tenant=tenant, body=doc, headers=headers)
        if resp.status_code != 200:
            raise StackError(f"PUT {kind} for {tenant} failed: HTTP {resp.status_code} {resp.text[:200]}", exit_code=1)
        return resp.json().get(f"{kind}_version", "")

    def publish(self, tenant: str, surface: str, **kwargs) -> dict:
        from .publisher import job_limits, publish, scheduled_day

        day = kwargs.pop("day", None) or scheduled_day(self.store, self.root, tenant, surface)
        for name, value in job_limits(self.root).items():  # the job's configured limits, unless overridden
            if kwargs.get(name) is None:
                kwargs[name] = value
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        return publish(self.store, self.root, tenant=tenant, surface=surface, day=day, **kwargs)

    def publish_resent(self, tenant: str, surface: str, **kwargs) -> dict:
        """Re-run the scheduled day after its upstream re-sent it with late events: new data for a window that has
        ended, hence new versions, as a deployment that is up to date gets them (its next day has not ended)."""
        from .events import DEFAULT_VOLUME, ITEMS_PER_RESPONSE, events_path
        from .publisher import scheduled_day

        day = scheduled_day(self.store, self.root, tenant, surface)
        path = events_path(self.root, tenant, surface, day)
        shown = sum(1 for line in path.read_bytes().splitlines() if line.strip()) if path.is_file() else 0
        volume = max(shown // ITEMS_PER_RESPONSE, DEFAULT_VOLUME) + LATE_RESPONSES
        return self.publish(tenant, surface, day=day, volume=volume, **kwargs)

    def publish_failing(self, tenant: str, surface: str, expected: str, **kwargs) -> str:
        """Run a publish that must fail with error kind ``expected``; returns its ``run failed: ...`` line."""
        from .publisher import PublishError

        publish = self.publish_resent if kwargs.pop("resent", False) else self.publish
        try:
            publish(tenant, surface, **kwargs)
        except PublishError as exc:
            if exc.kind != expected:
                raise StackError(
                    f"could not inject the fault: the publish for {tenant}/{surface} failed for another reason "
                    f"({exc}); fix that first (`recsys-stack status`, `recsys-stack heal`)",
                    exit_code=1,
                ) from None
            return str(exc)
        raise StackError(f"the publish for {tenant}/{surface} was meant to fail but succeeded", exit_code=1)


# ---------------------------------------------------------------------------------------------------------------
# the faults; each returns one line saying what it did


def _stale_manifest(ctx: FaultContext, tenant: str, surface: str) -> str:
    manifest, etag = ctx.read_manifest(tenant, surface)
    stamp = datetime.now(UTC).replace(microsecond=0) - STALE_AGE
    manifest["updated_at"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    ctx.write_manifest(manifest, etag)
    ctx.invalidate(tenant, surface)
    return f"manifest of {tenant}/{surface} now says updated_at {manifest['updated_at']} (72 h ago, pipeline stopped)"


def _stale_data(ctx: FaultContext, tenant: str, surface: str) -> str:
    # What a re-run of an old day does in the suite: the versions it builds are already recorded, so it writes no
    # record, only the manifest, which then names old data under a fresh updated_at.
    from .objstore import records_prefix

    manifest, etag = ctx.read_manifest(tenant, surface)
    moved = []
    for kind in sorted(manifest.get("current") or {}):
        records = []
        for key in ctx.store.list(records_prefix(tenant, surface, kind)):
            record = json.loads(ctx.store.get(key))
            records.append((record["Window"]["End"], record["URI"]))
        if len(records) < 2:
            continue
        end, uri = min(records)
        if uri != manifest["current"][kind]:
            manifest["current"][kind] = uri
            moved.append(f"{kind} (window ending {end})")
    if not moved:
        raise StackError(f"{tenant}/{surface} has no older versions to point at", exit_code=1)
    manifest["updated_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ctx.write_manifest(manifest, etag)
    ctx.invalidate(tenant, surface)
    return (f"manifest of {tenant}/{surface} now names its oldest versions of {', '.join(moved)} under a fresh "
            "updated_at, as a re-run of an old day leaves it")


def _stale_cache(ctx: FaultContext, tenant: str, surface: str) -> str:
    # Drop, then warm: the cached entries are loaded now, so the old version stays served for a full TTL rather
    # than only for what was left of an entry loaded earlier.
    ctx.invalidate(tenant, surface)
    resp = ctx.recommend(tenant, surface)
    if resp.status_code != 200:
        raise StackError(f"warming the cache of {tenant}/{surface} failed: HTTP {resp.status_code}", exit_code=1)
    run = ctx.publish_resent(tenant, surface, now=datetime.now(UTC))
    return (
        f"published {tenant}/{surface} day {run.get('day', '?')} again with its late events, without invalidating: "
        "the service keeps serving "
        f"the previous version until its cached manifest expires (manifest TTL {ctx.info.get('manifest_ttl_seconds')} s)"
    )


def _bad_publish(ctx: FaultContext, tenant: str, surface: str) -> str:
    run = ctx.publish(tenant, surface, now=datetime.now(UTC), override={"popularity": []})
    ctx.invalidate(tenant, surface)
    return f"published {tenant}/{surface} day {run.get('day', '?')} with an empty popularity artifact and swapped it in"


def _shrunk_publish(ctx: FaultContext, tenant: str, surface: str) -> str:
    manifest, _ = ctx.read_manifest(tenant, surface)
    blob = json.loads(ctx.store.get(ctx.store.key_for_uri(manifest["current"]["popularity"])))
    kept = blob["items"][:SHRUNK_ITEMS]
    run = ctx.publish(tenant, surface, now=datetime.now(UTC), override={"popularity": kept})
    ctx.invalidate(tenant, surface)
    return (f"published {tenant}/{surface} day {run.get('day', '?')} with a popularity artifact of {len(kept)} items "
            f"where the version before it had {len(blob['items'])}, and swapped it in: valid, served, but most of "
            "the catalog is gone")


def _missing_blob(ctx: FaultContext, tenant: str, surface: str) -> str:
    manifest, etag = ctx.read_manifest(tenant, surface)
    uri = ctx.blob_uri(tenant, surface, "popularity", MISSING_VERSION)
    manifest["current"]["popularity"] = uri
    ctx.write_manifest(manifest, etag)
    ctx.invalidate(tenant, surface)
    return f"manifest of {tenant}/{surface} now points popularity at {uri}, which does not exist"


def _corrupt_manifest(ctx: FaultContext, tenant: str, surface: str) -> str:
    _, etag = ctx.read_manifest(tenant, surface)
    ctx.store.put(ctx.manifest_key(tenant, surface), b'{"v": 1, "tenant": "' + tenant.encode() + b'", "curr', if_match=etag)
    ctx.invalidate(tenant, surface)
    return f"manifest of {tenant}/{surface} overwritten with truncated JSON"


def _before_the_run_of(ctx: FaultContext, tenant: str, surface: str) -> date:
    """The day this morning's scheduled run covers (yesterday), with the surface put back where it stood before that
    run when the stack has already published the day (the seed does): the manifest on the versions of the day before,
    stamped when that day was published, and the checkpoint on it. A run that fails then leaves what a deployment
    has after its morning run failed: the newest day unpublished, serving the day before."""
    from .objstore import records_prefix
    from .publisher import read_checkpoint, scheduled_day, write_checkpoint
    from .seed import publish_time

    day = scheduled_day(ctx.store, ctx.root, tenant, surface)
    done = read_checkpoint(ctx.root, tenant, surface)
    if done is None or done < day:
        return day
    before, end = day - timedelta(days=1), f"{day.isoformat()}T00:00:00Z"  # `before`'s window ends as `day` starts
    manifest, etag = ctx.read_manifest(tenant, surface)
    for kind in sorted(manifest.get("current") or {}):
        records = [json.loads(ctx.store.get(key)) for key in ctx.store.list(records_prefix(tenant, surface, kind))]
        built = sorted((r["BuiltAt"], r["URI"]) for r in records if r.get("Window", {}).get("End") == end)
        if not built:
            raise StackError(f"{tenant}/{surface} has no {kind} version of {before} to serve while the run of {day} "
                             "fails", exit_code=1)
        manifest["current"][kind] = built[-1][1]
    stamp = min(publish_time(before), datetime.now(UTC)).replace(microsecond=0)
    manifest["updated_at"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    ctx.write_manifest(manifest, etag)
    write_checkpoint(ctx.root, tenant, surface, before)
    ctx.invalidate(tenant, surface)
    return day


def _partial_publish(ctx: FaultContext, tenant: str, surface: str) -> str:
    _before_the_run_of(ctx, tenant, surface)
    line = ctx.publish_failing(tenant, surface, "dependency", now=datetime.now(UTC), fail_at="record", resent=True)
    return f"publish of {tenant}/{surface} stopped after writing the blob (orphan blob, manifest unchanged): {line}"


# The days whose raw events the validation-failed fault broke (`heal` writes them afresh).
BAD_EVENTS = "bad-events.json"

# What a build that lost most of its input keeps: a valid popularity artifact of a handful of items.
SHRUNK_ITEMS = 5


def _validation_failed(ctx: FaultContext, tenant: str, surface: str) -> str:
    # Bad input as the suite meets it: the day's raw events hold an exposure without an item id, which the ingest
    # refuses (`run failed: invalid exposure event: item_id must be set`) before anything is built.
    from .events import ensure_events

    day = _before_the_run_of(ctx, tenant, surface)
    path = ensure_events(ctx.root, tenant, surface, day)
    lines = path.read_bytes().splitlines(keepends=True)
    bad = json.loads(lines[len(lines) // 2])
    bad["item_id"] = ""
    lines[len(lines) // 2] = (json.dumps(bad, separators=(",", ":")) + "\n").encode()
    write_file_atomic(path, b"".join(lines))
    marker = ctx.root / BAD_EVENTS
    listed = json.loads(marker.read_text()) if marker.is_file() else []
    write_file_atomic(marker, json.dumps(sorted({*listed, f"{tenant}/{surface}/{day}"})).encode())
    line = ctx.publish_failing(tenant, surface, "bad_event", day=day, now=datetime.now(UTC))
    return (f"publish of {tenant}/{surface} day {day} refused its input, manifest unchanged: {line} (re-run with "
            "--rebuild-events once the upstream has re-sent the day)")


def _limit_exceeded(ctx: FaultContext, tenant: str, surface: str) -> str:
    line = _publish_over_limit(ctx, tenant, surface)
    return f"publish of {tenant}/{surface} exceeded its event limit, manifest unchanged: {line}"


def _publish_over_limit(ctx: FaultContext, tenant: str, surface: str) -> str:
    from .events import ensure_events

    day = _before_the_run_of(ctx, tenant, surface)
    path = ensure_events(ctx.root, tenant, surface, day)
    with open(path, "rb") as fh:
        count = sum(1 for line in fh if line.strip())
    # The job's configured limit is now below a day's volume: every run refuses the day rather than publish a
    # truncated artifact, until the limit is raised (`recsys-stack publish --max-events N`) or restored (`heal`).
    set_job_limits(ctx.root, max_events_per_run=max(1, count // 2))
    return ctx.publish_failing(tenant, surface, "limit_exceeded", day=day, now=datetime.now(UTC))


def _config_error(ctx: FaultContext, tenant: str, surface: str) -> str:
    # The deployment's configuration names an artifact kind the pipeline does not build: every run stops on its
    # setup (exit 2, before any day) until the configuration is fixed; a re-run fails the same way.
    _before_the_run_of(ctx, tenant, surface)
    set_job_config(ctx.root, kinds=["popularity", "cooc", "embeddings"])
    line = ctx.publish_failing(tenant, surface, "setup", now=datetime.now(UTC))
    return f"the job's configuration stops every run of {tenant}/{surface} before any day: {line}"


def _signal_db_refused(ctx: FaultContext, tenant: str, surface: str) -> str:
    # The job's signal database is down: a port on loopback that nothing listens on really refuses the connection.
    _before_the_run_of(ctx, tenant, surface)
    set_job_config(ctx.root, signal_store={"dsn": "postgres://recsys@127.0.0.1:1/recsys"})
    line = ctx.publish_failing(tenant, surface, "refused", now=datetime.now(UTC))
    return f"publish of {tenant}/{surface} could not reach its signal database, manifest unchanged: {line}"


# The store folders the store-not-writable fault made read-only (`heal` gives their write permission back).
NOT_WRITABLE = "not-writable.json"


def _store_not_writable(ctx: FaultContext, tenant: str, surface: str) -> str:
    from .objstore import BLOB_PREFIX

    root = getattr(ctx.store, "root", None)
    if root is None:
        raise StackError("store-not-writable needs the file store (`recsys-stack up --store file`)", exit_code=2)
    _before_the_run_of(ctx, tenant, surface)
    folder = Path(root) / BLOB_PREFIX / tenant / surface
    folder.mkdir(parents=True, exist_ok=True)
    write_file_atomic(ctx.root / NOT_WRITABLE, json.dumps([str(folder)]).encode())
    folder.chmod(0o555)
    line = ctx.publish_failing(tenant, surface, "io", now=datetime.now(UTC))
    return f"the store folder {folder} is read-only; every publish of {tenant}/{surface} fails: {line}"


def _backfill_over_limit(ctx: FaultContext, tenant: str, surface: str) -> str:
    from .publisher import PublishError, backfill, job_limits, scheduled_day

    set_job_limits(ctx.root, max_days_backfill=2)
    end = scheduled_day(ctx.store, ctx.root, tenant, surface)
    try:
        backfill(ctx.store, ctx.root, tenant=tenant, surface=surface, start=end - timedelta(days=2), end=end,
                 now=datetime.now(UTC), **job_limits(ctx.root))
    except PublishError as exc:
        return (f"a three-day backfill of {tenant}/{surface} with max_days_backfill 2 published two days, then "
                f"stopped; {end} did not run: {str(exc).splitlines()[-1]}")
    raise StackError("the backfill was meant to fail but succeeded", exit_code=1)


def _implicit_limit(ctx: FaultContext, tenant: str, surface: str) -> str:
    _before_the_run_of(ctx, tenant, surface)
    set_job_limits(ctx.root, max_users_per_run=3)
    line = ctx.publish_failing(tenant, surface, "limit_exceeded", now=datetime.now(UTC))
    return f"the implicit stage of {tenant}/{surface} stopped counting users at its limit, manifest unchanged: {line}"


def _bad_rules(ctx: FaultContext, tenant: str, surface: str) -> str:
    from .catalog import CATEGORIES

    rules = [
        {"action": "block", "target_type": "category", "target_key": c, "priority": 100, "enabled": True}
        for c in sorted(CATEGORIES)
    ]
    version = ctx.put_admin(tenant, "rules", rules)
    # The service caches rules like the manifest; without this the fault would show only after the TTL.
    ctx.invalidate(tenant, None, ("rules",))
    return f"rules of {tenant} now block every category ({len(rules)} rules, version {version[:12]}…)"


def _bad_config(ctx: FaultContext, tenant: str, surface: str) -> str:
    config = _current_config(ctx, tenant)
    config["weights"] = {"pop": 0.0, "cooc": 0.0, "emb": 0.0}
    version = ctx.put_admin(tenant, "config", config)
    ctx.invalidate(tenant, None, ("config",))
    return f"config of {tenant} now has every weight at 0 (version {version[:12]}…): no signal, empty recommendations"


def _foreign_artifact(ctx: FaultContext, tenant: str, surface: str) -> str:
    from .seed import TENANTS

    other = next(t for t in TENANTS if t != tenant)
    manifest, etag = ctx.read_manifest(tenant, surface)
    theirs, _ = ctx.read_manifest(other, surface)
    manifest["current"]["popularity"] = theirs["current"]["popularity"]
    ctx.write_manifest(manifest, etag)
    ctx.invalidate(tenant, surface)
    return (f"manifest of {tenant}/{surface} now names {other}/{surface}'s popularity artifact, valid but another "
            "tenant's: recommend answers 422")


def _rules_hide_most(ctx: FaultContext, tenant: str, surface: str) -> str:
    manifest, _ = ctx.read_manifest(tenant, surface)
    blob = json.loads(ctx.store.get(ctx.store.key_for_uri(manifest["current"]["popularity"])))
    ids = [i["item_id"] for i in blob["items"]]
    hidden = ids[: max(1, len(ids) * 95 // 100)]
    resp = ctx.request("GET", f"/v1/admin/tenants/{tenant}/rules", tenant=tenant)
    rules = list(resp.json().get("rules") or []) if resp.status_code == 200 else []
    rules.append({"action": "block", "target_type": "item", "item_ids": hidden, "surface": surface,
                  "priority": 10, "enabled": True})
    version = ctx.put_admin(tenant, "rules", rules)
    ctx.invalidate(tenant, None, ("rules",))
    return (f"rules of {tenant} now block {len(hidden)} of the {len(ids)} items of {tenant}/{surface} "
            f"(version {version[:12]}…): a few items are still served")


def _weights_overflow(ctx: FaultContext, tenant: str, surface: str) -> str:
    config = _current_config(ctx, tenant)
    config["weights"] = {"pop": 1e308, "cooc": 1e308, "emb": 1e308}
    version = ctx.put_admin(tenant, "config", config)
    ctx.invalidate(tenant, None, ("config",))
    return f"config of {tenant} now has every weight at 1e308 (version {version[:12]}…): scores overflow"


def _store_down(ctx: FaultContext, tenant: str, surface: str) -> str:
    if ctx.info["store"] == "s3":
        pid = processes.running_processes(ctx.info, ctx.root).get("s3")
        if not pid:
            raise StackError("the S3 server of this stack is not running; restart with `recsys-stack up`", exit_code=1)
        os.kill(pid, signal.SIGSTOP)
        what = f"S3 server (pid {pid}) frozen with SIGSTOP"
    else:
        store, aside = ctx.root / "store", ctx.root / "store.down"
        if aside.exists():
            what = "file store already down"
        else:
            store.rename(aside)
            store.write_text("the object store is down (recsys-stack inject store-down); `recsys-stack heal`\n")
            what = f"file store moved to {aside} and replaced by a regular file"
    ctx.invalidate_all()
    return what


# Processes started here that outlive the command (stopped by `heal` or `down`, not by us): kept referenced, so that
# Python does not report a child "still running" when their Popen objects would be collected.
_DETACHED: list = []


def _slow_store(ctx: FaultContext, tenant: str, surface: str) -> str:
    if ctx.info["store"] != "s3":
        raise StackError("slow-store applies to the S3 store only: start the stack with "
                         f"`recsys-stack up --store s3 --root {ctx.root}`")
    info = processes.require_stack(ctx.root)  # fresh: a slow-store already injected changed it
    upstream = info.get("s3_upstream_endpoint") or info["s3_endpoint"]
    _stop_proxy(info, ctx.root)
    port = processes.free_port()
    log = ctx.root / "logs" / "s3-proxy.log"
    upstream_port = int(upstream.rsplit(":", 1)[1])
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AWS_"))}
    proc = processes.spawn(
        [sys.executable, "-m", "recsys_stack.latencyproxy", "--port", str(port), "--upstream-port",
         str(upstream_port), "--latency-ms", str(ctx.latency_ms)], log, base_env, stack_id=info["stack_id"],
    )
    _DETACHED.append(proc)  # a process of the stack that outlives this command (heal and down stop it)
    info.setdefault("processes", {})["s3-proxy"] = proc.pid
    info["s3_upstream_endpoint"] = upstream
    info["s3_endpoint"] = f"http://127.0.0.1:{port}"
    info["slow_store_latency_ms"] = ctx.latency_ms
    processes.write_stack(ctx.root, info)
    try:
        processes._wait_tcp(port, proc, "the latency proxy", log, processes.READY_TIMEOUT_SECONDS)
    except StackError:
        _heal_slow_store(ctx.root)
        raise
    ctx.info = info
    return (f"S3 endpoint is now {info['s3_endpoint']}, a proxy (pid {proc.pid}) that holds every request "
            f"{ctx.latency_ms} ms before passing it to {upstream}; stack.json names it as the S3 endpoint: point "
            "RECSYS_ARTIFACT_S3_ENDPOINT at it (the service keeps its direct connection)")


def _stop_proxy(info: Mapping, root: Path) -> str | None:
    pid = processes.running_processes(info, root).get("s3-proxy")
    if pid:
        processes.stop_pid(int(pid))
        return f"latency proxy (pid {pid}) stopped"
    return None


def _heal_slow_store(root: Path) -> list[str]:
    info = processes.read_stack(root) or {}
    if not info.get("s3_upstream_endpoint") and not (info.get("processes") or {}).get("s3-proxy"):
        return []
    done = [d for d in [_stop_proxy(info, root)] if d]
    if info.get("s3_upstream_endpoint"):
        info["s3_endpoint"] = info.pop("s3_upstream_endpoint")
        done.append(f"S3 endpoint {info['s3_endpoint']} answers directly again")
    info.pop("slow_store_latency_ms", None)
    (info.get("processes") or {}).pop("s3-proxy", None)
    processes.write_stack(root, info)
    return done


def _not_ready(ctx: FaultContext, tenant: str, surface: str) -> str:
    db, aside = ctx.root / "admin.db", ctx.root / "admin.db.down"
    if aside.exists():
        return "admin database already unavailable"
    db.rename(aside)
    db.mkdir()
    return f"admin database moved to {aside} and replaced by a directory: the service's dependency check fails"


def eval_dir(root: Path, tenant: str, surface: str) -> Path:
    """Where the evaluation faults write their dataset: ``ROOT/eval/<tenant>/<surface>/``."""
    return Path(root) / "eval" / tenant / surface


# Where the unreadable-blob faults keep the blobs they replaced by a directory (`heal` puts them back).
ASIDE = Path("faults") / "aside"


def _unreadable_blob(kind: str) -> Callable[[FaultContext, str, str], str]:
    """Replace the current ``kind`` blob by a directory of the same name (the original is kept aside under
    ``ROOT/faults/aside/``): the manifest is untouched, and the service cannot read what it names."""

    def inject_unreadable(ctx: FaultContext, tenant: str, surface: str) -> str:
        if ctx.info["store"] != "file":
            raise StackError(f"{kind}-unreadable needs the file store (a directory in place of a blob); this stack "
                             "uses S3")
        manifest, _ = ctx.read_manifest(tenant, surface)
        uri = (manifest.get("current") or {}).get(kind)
        if not uri:
            raise StackError(f"{tenant}/{surface} publishes no {kind} artifact", exit_code=1)
        path = ctx.store.root.joinpath(*ctx.store.key_for_uri(uri).split("/"))
        aside = ctx.root / ASIDE / f"{tenant}-{surface}-{kind}-{path.name}"
        aside.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            path.replace(aside)
            index = ctx.root / ASIDE / "index.json"
            kept = json.loads(index.read_text()) if index.is_file() else {}
            kept[str(aside)] = str(path)
            write_file_atomic(index, json.dumps(kept, indent=2).encode())
        path.mkdir(exist_ok=True)
        ctx.invalidate(tenant, surface)
        shapes = "requests with anchors (item pages)" if kind == "cooc" else "every request"
        return (f"the current {kind} blob of {tenant}/{surface} is now a directory ({path.name}; the file is kept in "
                f"{aside.parent}): {shapes} answer 500")

    inject_unreadable.__name__ = f"_{kind}_unreadable"
    return inject_unreadable


def _current_config(ctx: FaultContext, tenant: str) -> dict:
    """The tenant's config as a dict (none, or one that is not an object, counts as empty)."""
    resp = ctx.request("GET", f"/v1/admin/tenants/{tenant}/config", tenant=tenant)
    config = resp.json().get("config") if resp.status_code == 200 else None
    return dict(config) if isinstance(config, dict) else {}


def _current_rules(ctx: FaultContext, tenant: str) -> list:
    """The tenant's rules as a list (a document that is not one, e.g. a wrapped PUT, counts as none)."""
    resp = ctx.request("GET", f"/v1/admin/tenants/{tenant}/rules", tenant=tenant)
    rules = resp.json().get("rules") if resp.status_code == 200 else None
    return list(rules) if isinstance(rules, list) else []


def _pin_unknown(ctx: FaultContext, tenant: str, surface: str) -> str:
    rules = _current_rules(ctx, tenant)
    typos = ["sku-00O3", "sku-0012x"]  # a letter O for a zero, a stray letter: items that do not exist
    rules.append({"action": "pin", "target_type": "item", "item_ids": typos, "surface": surface, "priority": 50,
                  "enabled": True})
    version = ctx.put_admin(tenant, "rules", rules)
    ctx.invalidate(tenant, None, ("rules",))
    return (f"rules of {tenant} now pin {', '.join(typos)} on {surface} (version {version[:12]}…): the first two "
            "results of every answer are items that do not exist")


def _rules_wrapped(ctx: FaultContext, tenant: str, surface: str) -> str:
    rules = _current_rules(ctx, tenant)
    version = ctx.put_admin(tenant, "rules", {"rules": rules})
    ctx.invalidate(tenant, None, ("rules",))
    return (f"rules of {tenant} PUT wrapped as {{\"rules\": [...]}} (version {version[:12]}…): the service stores "
            f"the object and applies none of its {len(rules)} rules")


def _max_k_low(ctx: FaultContext, tenant: str, surface: str) -> str:
    config = _current_config(ctx, tenant)
    config["limits"] = {**(config.get("limits") or {}), "max_k": 2}
    version = ctx.put_admin(tenant, "config", config)
    ctx.invalidate(tenant, None, ("config",))
    return f"config of {tenant} now has limits.max_k 2 (version {version[:12]}…): every answer holds at most 2 items"


def _stale_and_blocked(ctx: FaultContext, tenant: str, surface: str) -> str:
    manifest, etag = ctx.read_manifest(tenant, surface)
    blob = json.loads(ctx.store.get(ctx.store.key_for_uri(manifest["current"]["popularity"])))
    ids = [i["item_id"] for i in blob["items"]]
    stamp = datetime.now(UTC).replace(microsecond=0) - STALE_AND_BLOCKED_AGE
    manifest["updated_at"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    ctx.write_manifest(manifest, etag)
    rules = _current_rules(ctx, tenant)
    if ids:
        rules.append({"action": "block", "target_type": "item", "item_ids": ids, "surface": surface, "priority": 20,
                      "enabled": True})
    else:  # an artifact without items: block what any artifact could hold, every category
        from .catalog import CATEGORIES

        rules += [{"action": "block", "target_type": "category", "target_key": c, "surface": surface,
                   "priority": 20, "enabled": True} for c in sorted(CATEGORIES)]
    version = ctx.put_admin(tenant, "rules", rules)
    ctx.invalidate(tenant, surface, ("rules", "popularity"))
    return (f"manifest of {tenant}/{surface} now says updated_at {manifest['updated_at']} (50 h ago) and rules of "
            f"{tenant} block all {len(ids)} items (version {version[:12]}…): empty, and stale")


STALE_AND_BLOCKED_AGE = timedelta(hours=50)


def _eval_data(scenario: str) -> Callable[[FaultContext, str, str], str]:
    def inject_eval(ctx: FaultContext, tenant: str, surface: str) -> str:
        from .evalgen import EXPERIMENT_ID, generate

        paths = generate(eval_dir(ctx.root, tenant, surface), scenario, tenant=tenant, surface=surface)
        return (f"wrote a {scenario} evaluation dataset for {tenant}/{surface}: check it with `recsys-checks eval "
                f"quality --exposures {paths['exposure']} --outcomes {paths['outcome']} --assignments "
                f"{paths['assignment']} --experiment-id {EXPERIMENT_ID}`")

    inject_eval.__name__ = f"_eval_{scenario.replace('-', '_')}"
    return inject_eval


@dataclass(frozen=True)
class Fault:
    """One fault: its name, what it breaks, the runbook that answers it and how to inject it."""

    name: str
    breaks: str
    runbook: str
    inject: Callable[[FaultContext, str, str], str] = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "breaks": self.breaks, "runbook": self.runbook}


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault("stale-manifest", "manifest updated_at is 72 h old, as if the pipeline stopped", "stale-manifest",
              _stale_manifest),
        Fault("stale-data", "the manifest names days-old versions under a fresh updated_at (a re-run of an old "
              "day)", "stale-manifest", _stale_data),
        Fault("stale-cache", "yesterday is published again with its late events but the service cache keeps "
              "serving the old version",
              "stale-manifest", _stale_cache),
        Fault("bad-publish", "a valid but empty popularity artifact is published and swapped in",
              "rollback-manifest", _bad_publish),
        Fault("shrunk-publish", "a valid popularity artifact of 5 items, where the version before it had many, is "
              "published and swapped in", "rollback-manifest", _shrunk_publish),
        Fault("missing-blob", "the manifest points popularity at a blob that does not exist", "empty-recs",
              _missing_blob),
        Fault("corrupt-manifest", "the manifest is not valid JSON (recommend answers 422)", "rollback-manifest",
              _corrupt_manifest),
        Fault("partial-publish", "a publish fails after its blob, before the swap (orphan blob, failed run)",
              "pipeline-failed", _partial_publish),
        Fault("validation-failed", "the day's raw events hold an exposure without an item id (run failed: invalid "
              "exposure event: item_id must be set)", "validation-failed",
              _validation_failed),
        Fault("limit-exceeded", "a day's events exceed the job's max_events_per_run (run failed: event limit "
              "exceeded: N > M)", "limit-exceeded",
              _limit_exceeded),
        Fault("config-error", "the job's configuration names an artifact kind it does not support (config error: "
              "unsupported artifact kind: embeddings, exit 2 before any day)", "pipeline-failed", _config_error),
        Fault("signal-db-refused", "the job's signal database refuses connections (run failed: failed to connect "
              "to ...: connection refused)", "pipeline-failed", _signal_db_refused),
        Fault("store-not-writable", "the store folder of the surface is read-only (run failed: open ...: permission "
              "denied)", "pipeline-failed", _store_not_writable),
        Fault("backfill-over-limit", "a three-day backfill with max_days_backfill 2: two days published, then run "
              "failed: backfill exceeds max days: 3 > 2", "limit-exceeded", _backfill_over_limit),
        Fault("implicit-limit", "the implicit stage's max_users_per_run below the day's users (run failed: "
              "limit_exceeded: distinct user limit exceeded: 3 >= 3)", "limit-exceeded", _implicit_limit),
        Fault("bad-rules", "rules that block every category: recommendations are empty", "rollback-config-rules",
              _bad_rules),
        Fault("bad-config", "config with every weight at 0: SIGNAL_UNAVAILABLE, empty recommendations",
              "rollback-config-rules", _bad_config),
        Fault("foreign-artifact", "the manifest names another tenant's valid popularity artifact (recommend "
              "answers 422)", "rollback-manifest", _foreign_artifact),
        Fault("rules-hide-most", "a block rule hides 95 % of the catalog: a few items are still served",
              "rollback-config-rules", _rules_hide_most),
        Fault("weights-overflow", "config weights of 1e308: the service cannot rank and answers 500",
              "rollback-config-rules", _weights_overflow),
        Fault("store-down", "the object store is unreachable: recommend answers 500", "service-not-ready",
              _store_down),
        Fault("not-ready", "the admin database is unavailable: /readyz answers 503", "service-not-ready",
              _not_ready),
        Fault("eval-srm", "evaluation data with a 60/40 split where 50/50 was intended (sample ratio mismatch)",
              "eval-report-suspect", _eval_data("srm")),
        Fault("eval-low-join", "evaluation data where 30 % of outcomes match no exposure (low join rate)",
              "eval-report-suspect", _eval_data("low-join")),
        Fault("eval-impossible-lift", "evaluation data whose treatment outcomes are counted three times "
              "(impossible lift)", "eval-report-suspect", _eval_data("impossible-lift")),
        Fault("eval-schema-break", "evaluation data where a quarter of exposures rename latency_ms (schema break)",
              "eval-report-suspect", _eval_data("schema-break")),
        Fault("eval-clean", "nothing: a clean evaluation dataset that the suite's rules ship (the baseline)",
              "eval-report-suspect", _eval_data("clean")),
        Fault("cooc-unreadable", "the current cooc blob is a directory: requests with anchors (item pages) answer "
              "500, plain requests are fine (file store only)", "service-not-ready", _unreadable_blob("cooc")),
        Fault("popularity-unreadable", "the current popularity blob is a directory: every request answers 500 "
              "(file store only)", "rollback-manifest", _unreadable_blob("popularity")),
        Fault("pin-unknown", "a pin rule with two mistyped item ids: the first two results of every answer do not "
              "exist", "rollback-config-rules", _pin_unknown),
        Fault("rules-wrapped", "the rules PUT wrapped as {\"rules\": [...]}: the service applies none of them (a "
              "blocked item comes back)", "rollback-config-rules", _rules_wrapped),
        Fault("max-k-low", "config limits.max_k lowered to 2: every answer holds 2 items", "rollback-config-rules",
              _max_k_low),
        Fault("stale-and-blocked", "the manifest 50 h old and a rule blocking every item: empty, and stale",
              "empty-recs", _stale_and_blocked),
        Fault("slow-store", "every request to the S3 endpoint waits a fixed latency (20 ms unless --latency-ms)",
              "stale-manifest", _slow_store),
    )
}


def get_fault(name: str) -> Fault:
    try:
        return FAULTS[name]
    except KeyError:
        raise StackError(f"unknown fault {name!r}; valid faults: {', '.join(FAULTS)}") from None


def inject(root: Path, name: str, tenant: str = "demo", surface: str = "home", *, latency_ms: int | None = None) -> str:
    """Inject fault ``name`` into the stack running in ``root`` for one tenant/surface; returns what it did.

    ``latency_ms`` sets the delay of ``slow-store`` and is refused for any other fault.
    """
    fault = get_fault(name)
    if latency_ms is not None and name != "slow-store":
        raise StackError(f"--latency-ms applies to the slow-store fault only, not to {name}")
    if latency_ms is not None and latency_ms < 0:
        raise StackError(f"--latency-ms {latency_ms} is negative: give a delay of 0 or more milliseconds")
    ctx = FaultContext.load(root)
    if latency_ms is not None:
        ctx.latency_ms = latency_ms
    try:
        check_target(ctx.info, tenant, surface)
        return fault.inject(ctx, tenant, surface)
    finally:
        ctx.close()


def check_target(info: Mapping, tenant: str, surface: str) -> None:
    """Raise (exit 2) unless tenant/surface are safe segments the stack serves."""
    from .formats import safe_segment

    try:
        safe_segment(tenant, "tenant")
        safe_segment(surface, "surface")
    except ValueError as exc:
        raise StackError(str(exc)) from None
    tenants = info.get("tenants") or {}
    if tenant not in tenants:
        raise StackError(f"unknown tenant {tenant!r}: this stack serves {', '.join(tenants)}")
    if surface not in tenants[tenant]:
        raise StackError(f"unknown surface {surface!r} for {tenant}: this stack serves {', '.join(tenants[tenant])}")


def _put_blobs_back(root: Path) -> list[str]:
    """The blobs an unreadable-blob fault moved aside, back in place of the (empty) directory it left there."""
    index = root / ASIDE / "index.json"
    if not index.is_file():
        return []
    done, left = [], {}
    for aside, original in json.loads(index.read_text()).items():
        path = Path(original)
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()  # the empty directory the fault made: the stack's own
        if Path(aside).is_file() and not path.exists():
            Path(aside).replace(path)
            done.append(f"blob {path.name} put back")
        else:
            left[aside] = original
    if left:
        write_file_atomic(index, json.dumps(left, indent=2).encode())
    else:
        index.unlink()
    return done


def heal(root: Path) -> list[str]:
    """Undo store-down, not-ready, slow-store, a lowered job limit, broken raw events and blobs replaced by a
    directory; returns what was undone (empty: nothing was broken)."""
    root = Path(root).resolve()
    processes.require_stack(root)
    done = _heal_slow_store(root)
    info = processes.require_stack(root)
    store, aside = root / "store", root / "store.down"
    if aside.exists():
        if store.is_dir() and not store.is_symlink():
            shutil.rmtree(store)
        elif store.exists() or store.is_symlink():
            store.unlink()
        aside.rename(store)
        done.append("file store restored")
    pid = (info.get("processes") or {}).get("s3")
    if pid and processes.running_processes(info, root).get("s3") and _is_stopped(int(pid)):
        os.kill(int(pid), signal.SIGCONT)
        done.append(f"S3 server (pid {pid}) resumed")
    db, db_aside = root / "admin.db", root / "admin.db.down"
    if db_aside.exists():
        if db.is_dir() and not db.is_symlink():
            shutil.rmtree(db)
        elif db.exists():
            db.unlink()
        db_aside.rename(db)
        done.append("admin database restored")
    if reset_job_limits(root):
        done.append("pipeline job configuration and limits restored")
    done += _put_blobs_back(root)
    readonly = root / NOT_WRITABLE
    if readonly.is_file():
        for folder in json.loads(readonly.read_text()):
            Path(folder).chmod(0o755)
            done.append(f"write permission of {folder} given back")
        readonly.unlink()
    marker = root / BAD_EVENTS
    if marker.is_file():
        from datetime import date

        from .events import ensure_events

        for entry in json.loads(marker.read_text()):
            tenant, surface, day = entry.split("/")
            ensure_events(root, tenant, surface, date.fromisoformat(day), rebuild=True)
            done.append(f"raw events of {tenant}/{surface} on {day} written afresh")
        marker.unlink()
    return done


def _is_stopped(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # cannot tell: SIGCONT is harmless on a running process
    return stat.rsplit(")", 1)[-1].split()[0] in ("T", "t")
