"""Soak of the safety contract: many kill -9 trials and many concurrent writers, on both stores.

Run with ``make soak`` (``--kills N`` trials per store, ``--writers N`` concurrent processes per store). Each kill
trial starts a rollback in a child process and kills it (SIGKILL) either at an aimed point (just before or just
after the manifest swap) or after a random delay, then checks that the manifest is whole (it parses as manifest v1),
that a later run settles every intent so that no audit record is missing (a manifest that moved has an ``applied``
record naming it), and that the next rollback works. The writers race one rollback each against the same manifest
and must produce exactly one winner and one ``applied`` record; every other writer ends with a conflict, or with a
no-op when it asked for the very version the winner installed. Prints the figures the reliability page quotes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recsys_checks.judge import auditlog
from recsys_checks.judge.registry import manifest
from recsys_checks.levers import audit, rollback
from recsys_checks.reach.settings import Target
from recsys_checks.reach.store import TargetStores

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import crashkit  # noqa: E402  (the crash tests' kill -9 harness)

SUITE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "suite_registry"
PLACEHOLDER = "file:///SUITE_ROOT/"
BUCKET = "recsys-artifacts"
POP = ["f3431fd670000831a461e2bdbfc4d2a23f9c9171f2fa45eb4561162d9a8eb4f1",
       "52cd5c4c76e604dbf998802834507be5454ddab3effc2db095ab02df8190fbd8",
       "65be44c05fed4c507e272c6a45b15b907257c16d16c4ff0f4abb4ed7cbea26b9"]

# The child's kill at an aimed point is the crash tests' harness (tests/crashkit.py); "random" arms nothing and is
# killed from outside after a random delay.
CHILD = r"""
import json, os, time
from recsys_checks.levers import rollback
from recsys_checks.reach.settings import Target
from recsys_checks.core.errors import Conflict

target = Target(**json.loads(sys.argv[1]))
point, version, go = sys.argv[2], sys.argv[3], sys.argv[4]
if point in crashkit.POINTS:
    crashkit.arm(point)
plan = rollback.plan_rollback(target, "demo", "home", to=version, reason="soak")
print("ready", flush=True)
while go != "-" and not os.path.exists(go):
    time.sleep(0.005)
try:
    print(rollback.apply_rollback(target, plan, execute=True, actor="soak").status, flush=True)
except Conflict:
    print("conflict", flush=True)
"""


def _files():
    for top in ("registry", "objectstore"):
        for path in sorted((SUITE / top).rglob("*")):
            if path.is_file():
                yield str(path.relative_to(SUITE)), path.read_bytes()


def file_target(root: Path) -> Target:
    base = "file://" + str(root) + "/"
    for rel, data in _files():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.replace(PLACEHOLDER.encode(), base.encode()))
    return Target(manifest_template=base + "registry/current/{tenant}/{surface}/manifest.json")


def s3_target(endpoint: str) -> Target:
    import boto3

    prefix = f"soak-{uuid.uuid4().hex[:8]}/"
    base = f"s3://{BUCKET}/{prefix}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="soak",
                          aws_secret_access_key="soak")
    try:
        client.create_bucket(Bucket=BUCKET)
    except Exception:  # noqa: BLE001 - exists already
        pass
    for rel, data in _files():
        client.put_object(Bucket=BUCKET, Key=prefix + rel, Body=data.replace(PLACEHOLDER.encode(), base.encode()))
    return Target(manifest_template=base + "registry/current/{tenant}/{surface}/manifest.json", s3_endpoint=endpoint,
                  s3_access_key="soak", s3_secret_key="soak")


def _current(target: Target, st: TargetStores) -> tuple[str, str]:
    raw, etag = st.get(target.manifest_uri("demo", "home"))
    return manifest.parse_manifest(raw).current["popularity"], etag  # raises if torn


def kill_trials(target: Target, n: int, rng: random.Random) -> dict[str, int]:
    fields = json.dumps(dataclasses.asdict(target))
    out = {"trials": 0, "torn": 0, "lost_records": 0, "next_run_failed": 0, "moved": 0}
    with TargetStores(target) as st:
        for i in range(n):
            before_uri, _ = _current(target, st)
            version = next(v for v in rng.sample(POP, 3) if not before_uri.endswith(v + ".json"))
            point = ["before-swap", "after-swap", "random"][i % 3]
            proc = subprocess.Popen(crashkit.child_argv(CHILD, fields, point, version, "-"),
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            if point == "random":
                assert proc.stdout is not None
                proc.stdout.readline()  # planned; now kill it somewhere in the apply
                time.sleep(rng.uniform(0.0, 0.15))
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=120)
            out["trials"] += 1
            try:
                after_uri, etag = _current(target, st)
            except Exception:  # noqa: BLE001 - a torn manifest is what this counts
                out["torn"] += 1
                continue
            later = datetime.now(UTC) + audit.SETTLE_GRACE + timedelta(seconds=1)
            audit.settle(st, target, "demo", "home", audit.judge_by_state(etag), now=later)
            if after_uri != before_uri:
                out["moved"] += 1
                applied = [r for r in auditlog.read(target, "demo", "home", stores=st)
                           if r.get("state") == "applied" and r["after"]["current"]["popularity"] == after_uri
                           and r["after"]["etag"].strip('"') == etag.strip('"')]
                if not applied:
                    out["lost_records"] += 1
                    print(f"  trial {i} ({point}): the manifest moved to {after_uri[-20:]} ({etag}) without an applied "
                          "record", file=sys.stderr)
                    for r in auditlog.read(target, "demo", "home", stores=st):
                        print("   ", r.get("state"), r.get("after"), file=sys.stderr)
            if audit.pending(st, target, "demo", "home"):
                out["lost_records"] += 1
                print(f"  trial {i} ({point}): an intent is still pending", file=sys.stderr)
            try:  # the next run works
                nxt = next(v for v in POP if not after_uri.endswith(v + ".json"))
                plan = rollback.plan_rollback(target, "demo", "home", to=nxt)
                if rollback.apply_rollback(target, plan, execute=True, actor="soak-next").status != "applied":
                    out["next_run_failed"] += 1
            except Exception:  # noqa: BLE001
                out["next_run_failed"] += 1
    return out


def race(target: Target, writers: int, tmp: Path) -> dict[str, int]:
    fields = json.dumps(dataclasses.asdict(target))
    go = tmp / f"go-{uuid.uuid4().hex}"
    with TargetStores(target) as st:
        current, _ = _current(target, st)
        before = {r["uri"] for r in auditlog.read(target, "demo", "home", stores=st)}
    choices = [v for v in POP if not current.endswith(v + ".json")]
    procs = [subprocess.Popen(crashkit.child_argv(CHILD, fields, "none", choices[i % len(choices)], str(go)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(writers)]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    go.touch()
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        outcomes.append(out.strip())
        if out.strip() not in ("applied", "conflict", "noop"):
            print(f"  writer exited {proc.returncode}: {(err.strip().splitlines() or ['?'])[-1][:300]}",
                  file=sys.stderr)
    with TargetStores(target) as st:
        new = [r for r in auditlog.read(target, "demo", "home", stores=st) if r["uri"] not in before]
    return {"writers": writers, "applied": outcomes.count("applied"), "conflicts": outcomes.count("conflict"),
            "noops": outcomes.count("noop"), "applied_records": sum(1 for r in new if r.get("state") == "applied")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=60, help="kill trials per store (default 60)")
    parser.add_argument("--writers", type=int, default=20, help="concurrent writers per store (default 20)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    tmp = Path(tempfile.mkdtemp(prefix="recsys-soak-"))
    ok = True
    try:
        for name, make in (("file", lambda: file_target(tmp / f"store-{uuid.uuid4().hex[:6]}")),
                           ("s3", lambda: s3_target(f"http://{host}:{port}"))):
            started = time.monotonic()
            kills = kill_trials(make(), args.kills, rng)
            racing = race(make(), args.writers, tmp)
            took = time.monotonic() - started
            print(f"{name:4}  kills: {kills['trials']} trials ({kills['moved']} moved the manifest), "
                  f"{kills['torn']} torn manifests, {kills['lost_records']} lost audit records, "
                  f"{kills['next_run_failed']} failed next runs")
            print(f"{name:4}  race: {racing['writers']} writers, {racing['applied']} applied, {racing['conflicts']} "
                  f"conflicts, {racing['noops']} no-ops (same target as the winner), {racing['applied_records']} "
                  f"applied audit record(s)  [{took:.0f}s]")
            ok = ok and kills["torn"] == kills["lost_records"] == kills["next_run_failed"] == 0
            ok = ok and racing["applied"] == racing["applied_records"] == 1
            ok = ok and racing["conflicts"] + racing["noops"] == racing["writers"] - 1
    finally:
        server.stop()
        if server._server is not None:
            server._server.server_close()
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
