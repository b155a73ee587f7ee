"""The seeded state of a stack, kept under ``ROOT/snapshot/`` by ``up`` and put back by ``recsys-stack reset``.

A snapshot is a copy of every state entry of the root (everything but ``logs/``, ``stack.json``, ``secrets.env``
and the snapshot itself: the file store, the admin database, raw events, checkpoints, run logs, evaluation data)
and, for the S3 store, every object of the bucket, with ``snapshot.json`` saying when and on which UTC day it was
seeded. Restoring removes every state entry first, so whatever a fault or a runbook added is gone as well.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .formats import rfc3339

REGION = "us-east-1"
SNAPSHOT = "snapshot"
# What reset keeps under ROOT: the stack's description, its secrets and logs, and the snapshot.
KEPT = frozenset({"logs", "stack.json", "secrets.env", SNAPSHOT})


def snapshot_dir(root: Path) -> Path:
    return Path(root) / SNAPSHOT


def snapshot_meta(root: Path) -> dict | None:
    try:
        return json.loads((snapshot_dir(root) / "snapshot.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _copy(src: Path, dst: Path) -> None:
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True, copy_function=shutil.copy2)
        shutil.copystat(src, dst)
    else:
        shutil.copy2(src, dst, follow_symlinks=False)


def _state_entries(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).iterdir() if p.name not in KEPT)


def take_snapshot(root: Path, info: Mapping, secret_values: Mapping[str, str], now: datetime | None = None) -> dict:
    """Copy the stack's state (root entries and, for S3, the bucket) to ``ROOT/snapshot/``; returns its metadata.

    Call it while nothing writes to the state: ``up`` does, after seeding and before the service starts.
    """
    root = Path(root)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    target = snapshot_dir(root)
    _remove(target)
    (target / "root").mkdir(parents=True)
    for entry in _state_entries(root):
        _copy(entry, target / "root" / entry.name)
    objects = 0
    if info.get("store") == "s3":
        with S3Bucket(info, secret_values) as s3:
            for key, data in s3.objects():
                path = target / "s3" / key
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                objects += 1
    meta = {"taken_at": rfc3339(now.replace(microsecond=0)), "day": now.date().isoformat(),
            "store": info.get("store"), "objects": objects}
    (target / "snapshot.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


class S3Bucket:
    """The stack's S3 server through boto3, with what a reset needs beyond the object store's API."""

    def __init__(self, info: Mapping, secret_values: Mapping[str, str]) -> None:
        import boto3

        from .objstore import BUCKET, s3_client_config

        self.bucket = info.get("bucket", BUCKET)
        self.client: Any = boto3.session.Session().client(
            "s3", endpoint_url=info["s3_endpoint"], region_name=REGION,
            aws_access_key_id=secret_values.get("RECSYS_ARTIFACT_S3_ACCESS_KEY"),
            aws_secret_access_key=secret_values.get("RECSYS_ARTIFACT_S3_SECRET_KEY"),
            config=s3_client_config(2.0, 10.0),
        )

    def __enter__(self) -> S3Bucket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def objects(self):
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for obj in page.get("Contents", []):
                yield obj["Key"], self.client.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read()

    def empty(self, bucket: str) -> None:
        """Every version, delete marker and unfinished multipart upload of ``bucket`` gone."""
        for page in self.client.get_paginator("list_object_versions").paginate(Bucket=bucket):
            doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                      for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            for start in range(0, len(doomed), 1000):
                self.client.delete_objects(Bucket=bucket, Delete={"Objects": doomed[start:start + 1000], "Quiet": True})
        for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for upload in page.get("Uploads", []):
                self.client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])

    def restore(self, objects: Path | None) -> int:
        """The bucket (and only it) holding exactly the objects under ``objects`` (none: empty); returns how
        many."""
        for bucket in self.client.list_buckets().get("Buckets", []):
            if bucket["Name"] != self.bucket:
                self.empty(bucket["Name"])
                self.client.delete_bucket(Bucket=bucket["Name"])
        self.empty(self.bucket)
        count = 0
        if objects is not None and objects.is_dir():
            for path in sorted(p for p in objects.rglob("*") if p.is_file()):
                self.client.put_object(Bucket=self.bucket, Key=path.relative_to(objects).as_posix(),
                                       Body=path.read_bytes(), ContentType="application/json")
                count += 1
        return count


def restore_snapshot(root: Path, info: Mapping, secret_values: Mapping[str, str]) -> None:
    """Every state entry of ``root`` and, for S3, the bucket as the snapshot has them. Nothing may write to the
    state meanwhile (``reset`` stops the service first)."""
    root = Path(root)
    for entry in _state_entries(root):
        _remove(entry)
    for entry in sorted((snapshot_dir(root) / "root").iterdir()):
        _copy(entry, root / entry.name)
    if info.get("store") == "s3":
        with S3Bucket(info, secret_values) as s3:
            s3.restore(snapshot_dir(root) / "s3")


def clear_state(root: Path, info: Mapping, secret_values: Mapping[str, str]) -> None:
    """Every state entry of ``root`` removed and, for S3, the bucket emptied (and no other kept): ready to seed."""
    for entry in _state_entries(Path(root)):
        _remove(entry)
    if info.get("store") == "s3":
        with S3Bucket(info, secret_values) as s3:
            s3.restore(None)

