"""Fixtures for the registry checks: the hand-written suite registry copied into a file store or an S3 bucket."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore.config import Config

from recsys_checks.reach.settings import Target

SUITE = Path(__file__).resolve().parent.parent / "fixtures" / "suite_registry"
PLACEHOLDER = "file:///SUITE_ROOT/"
BUCKET = "recsys-artifacts"

# The fixture's versions (computed once when the fixtures were written, independently of the project code).
POP_DAY1_STAGING = "65be44c05fed4c507e272c6a45b15b907257c16d16c4ff0f4abb4ed7cbea26b9"
POP_DAY2_EARLIER = "52cd5c4c76e604dbf998802834507be5454ddab3effc2db095ab02df8190fbd8"
POP_DAY2_LATER = "f3431fd670000831a461e2bdbfc4d2a23f9c9171f2fa45eb4561162d9a8eb4f1"
POP_DAY3_CURRENT = "5a4d07fa3b15e46772a3fb8a0ef1506d5be6e2e51198ee2549990e251b25a4a0"
POP_DAY4_EMPTY = "8071b4af95da0d38901a2ea29737c1f6b5ffeef82c5af12c14b6c0310fe39813"
COOC_DAY2 = "0e74e02316882c932d07495dbb6e40b351679f6901b519238a643716ac40bc17"
COOC_DAY3_CURRENT = "b9389f9049e1ba4e29acf1497953cc273e9c558fd4f9ae6f29e4c27ba9123e09"


@dataclass
class Registry:
    """A copy of the suite registry: its target, where its objects live, and helpers to read and change it."""

    target: Target
    base: str  # URI prefix that replaced file:///SUITE_ROOT/ (ends with "/")
    root: Path | None = None  # file store only
    s3: object | None = None  # boto3 client, S3 only
    prefix: str = ""  # key prefix inside the bucket, S3 only

    def uri(self, rel: str) -> str:
        return self.base + rel

    def blob_uri(self, kind: str, version: str) -> str:
        return self.uri(f"objectstore/demo/home/{kind}/{version}.json")

    def expected(self, name: str) -> bytes:
        """A hand-written expected file with the fixture URIs pointed at this copy."""
        return (SUITE / "expected" / name).read_bytes().replace(PLACEHOLDER.encode(), self.base.encode())

    def read(self, rel: str) -> bytes:
        if self.root is not None:
            return (self.root / rel).read_bytes()
        obj = self.s3.get_object(Bucket=BUCKET, Key=self.prefix + rel)  # type: ignore[attr-defined]
        with obj["Body"] as body:
            return body.read()

    def write(self, rel: str, data: bytes) -> None:
        if self.root is not None:
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        else:
            self.s3.put_object(Bucket=BUCKET, Key=self.prefix + rel, Body=data)  # type: ignore[attr-defined]

    def remove(self, rel: str) -> None:
        """Simulate an object lost by the store (the project never deletes)."""
        if self.root is not None:
            (self.root / rel).unlink()
        else:
            self.s3.delete_object(Bucket=BUCKET, Key=self.prefix + rel)  # type: ignore[attr-defined]

    def snapshot(self) -> dict[str, str]:
        """Every object of the store and the SHA-256 of its bytes."""
        if self.root is not None:
            return {
                str(p.relative_to(self.root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(self.root.rglob("*"))
                if p.is_file()
            }
        out = {}
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=self.prefix)  # type: ignore[attr-defined]
        for page in pages:
            for obj in page.get("Contents", []):
                out[obj["Key"][len(self.prefix):]] = hashlib.sha256(self.read(obj["Key"][len(self.prefix):])).hexdigest()
        return out


def _suite_files() -> Iterator[tuple[str, bytes]]:
    for top in ("registry", "objectstore"):
        for path in sorted((SUITE / top).rglob("*")):
            if path.is_file():
                yield str(path.relative_to(SUITE)), path.read_bytes()


@pytest.fixture
def file_registry(tmp_path: Path) -> Registry:
    """The suite registry copied into a file store under tmp, URIs rewritten to that location."""
    root = tmp_path / "store"
    base = root.as_uri() + "/"
    for rel, data in _suite_files():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.replace(PLACEHOLDER.encode(), base.encode()))
    target = Target(manifest_template=base + "registry/current/{tenant}/{surface}/manifest.json", timeout=2.0)
    return Registry(target=target, base=base, root=root)


@pytest.fixture
def s3_endpoint(moto_endpoint: str) -> str:
    """The session's S3 server with the bucket recsys-artifacts (created when another test reset the server)."""
    client = _client(moto_endpoint)
    try:
        try:
            client.create_bucket(Bucket=BUCKET)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        except client.exceptions.BucketAlreadyExists:
            pass
    finally:
        client.close()
    return moto_endpoint


def _client(endpoint: str):
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing", config=Config(s3={"addressing_style": "path"}),
    )


@pytest.fixture
def s3_registry(s3_endpoint: str) -> Iterator[Registry]:
    """The suite registry uploaded under a fresh key prefix of the bucket, URIs rewritten to s3://."""
    prefix = f"t-{uuid.uuid4().hex[:10]}/"
    base = f"s3://{BUCKET}/{prefix}"
    client = _client(s3_endpoint)
    try:
        for rel, data in _suite_files():
            client.put_object(Bucket=BUCKET, Key=prefix + rel, Body=data.replace(PLACEHOLDER.encode(), base.encode()))
        target = Target(
            manifest_template=base + "registry/current/{tenant}/{surface}/manifest.json",
            s3_endpoint=s3_endpoint, s3_access_key="testing", s3_secret_key="testing", timeout=2.0,
        )
        yield Registry(target=target, base=base, s3=client, prefix=prefix)
    finally:
        client.close()


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.stack)])
def registry(request: pytest.FixtureRequest) -> Registry:
    """The suite registry on each store (file, then S3 on loopback)."""
    if request.param == "file":
        return request.getfixturevalue("file_registry")
    return request.getfixturevalue("s3_registry")



@pytest.fixture
def versions() -> SimpleNamespace:
    """The fixture registry's versions by role (day 3 is current; day 4 is a recorded empty popularity)."""
    return SimpleNamespace(
        pop_day1_staging=POP_DAY1_STAGING, pop_day2_earlier=POP_DAY2_EARLIER, pop_day2_later=POP_DAY2_LATER,
        pop_day3_current=POP_DAY3_CURRENT, pop_day4_empty=POP_DAY4_EMPTY, cooc_day2=COOC_DAY2,
        cooc_day3_current=COOC_DAY3_CURRENT,
    )
