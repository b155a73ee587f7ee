"""Running `recsys-checks` as a subprocess against a stack, and looking at the stack directly to check it.

The CLI gets the environment an operator would have (``RECSYS_*`` and the secrets of the stack, nothing inherited);
every output it writes is checked for secrets. The direct views (store snapshot, admin state) use boto3, httpx and
files, never ``recsys_checks``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import httpx
from stackfixture import StackHandle

CLI_TIMEOUT = 90
SECRET_NAMES = ("RECSYS_API_KEY", "RECSYS_ARTIFACT_S3_SECRET_KEY", "RECSYS_ARTIFACT_S3_ACCESS_KEY")


@dataclass
class Run:
    """One finished `recsys-checks` run: its arguments, exit code and output."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except ValueError as exc:
            raise AssertionError(f"recsys-checks {' '.join(self.args)} printed no JSON ({exc}):\n{self}") from None

    def results(self) -> list[dict[str, Any]]:
        """The results of the JSON output: one result is its own object, several come in an envelope's ``results``."""
        doc = self.json
        assert isinstance(doc, dict), f"--json printed something other than one object:\n{self}"
        return doc["results"] if "results" in doc and "check" not in doc else [doc]

    def by_check(self, name: str) -> dict[str, Any]:
        found = [r for r in self.results() if r.get("check") == name]
        assert found, f"no {name} result in:\n{self}"
        return found[0]

    def __str__(self) -> str:
        return (f"$ recsys-checks {' '.join(self.args)}\nexit {self.code}\nstdout:\n{self.stdout[-4000:]}\n"
                f"stderr:\n{self.stderr[-2000:]}")


@dataclass
class Checks:
    """Runs `recsys-checks` against one stack and keeps every output to check it for secrets."""

    stack: StackHandle
    runs: list[Run] = field(default_factory=list)

    @property
    def store(self) -> str:
        return self.stack.info["store"]

    @property
    def secrets(self) -> dict[str, str]:
        return {k: v for k, v in self.stack.env.items() if k in SECRET_NAMES and v}

    def env(self, **overrides: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AWS_"))}
        env.update(self.stack.env)
        env["NO_COLOR"] = "1"
        for key, value in overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def __call__(self, *args: str, expect: int | None = None, json_out: bool = True, **env: str | None) -> Run:
        """Run ``recsys-checks ARGS [--json]``; assert the exit code when ``expect`` is given, and no secret."""
        argv = (*args, "--json") if json_out else args
        proc = subprocess.run(
            [sys.executable, "-m", "recsys_checks.cli", *argv],
            capture_output=True, text=True, timeout=CLI_TIMEOUT, env=self.env(**env),
        )
        run = Run(argv, proc.returncode, proc.stdout, proc.stderr)
        self.runs.append(run)
        assert_no_secret(run, self.secrets)
        if expect is not None:
            assert run.code == expect, f"expected exit {expect}\n{run}"
        return run

    # --- direct views of the stack, independent of recsys_checks ------------------------------------------

    def admin(self, method: str, path: str, tenant: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-Key": self.stack.api_key, "X-Org-Id": tenant, **kwargs.pop("headers", {})}
        with httpx.Client(base_url=self.stack.base_url, timeout=15.0, trust_env=False) as client:
            return client.request(method, path, headers=headers, **kwargs)

    def admin_state(self, tenant: str) -> dict[str, Any]:
        """Current config and rules versions of a tenant and the number of its admin audit entries."""
        state: dict[str, Any] = {}
        for kind in ("config", "rules"):
            resp = self.admin("GET", f"/v1/admin/tenants/{tenant}/{kind}", tenant)
            assert resp.status_code == 200, resp.text
            state[kind] = resp.headers.get("ETag", "").strip('"') or resp.json().get(f"{kind}_version")
        count, params = 0, {"limit": 200}
        while True:
            page = self.admin("GET", f"/v1/admin/tenants/{tenant}/audit", tenant, params=params).json()
            entries = page.get("entries") or []
            count += len(entries)
            if not entries or page.get("next_before") is None and page.get("next_before_id") is None:
                break
            params = {"limit": 200, "before": page.get("next_before"), "before_id": page.get("next_before_id")}
        state["audit_entries"] = count
        return state

    def store_snapshot(self) -> dict[str, str]:
        """Every object of the store with its content hash (file) or ETag (s3)."""
        if self.store == "file":
            base = self.stack.root / "store"
            return {str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in sorted(base.rglob("*")) if p.is_file()}
        with self.s3() as s3:
            out: dict[str, str] = {}
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.stack.info["bucket"]):
                for obj in page.get("Contents", []):
                    out[obj["Key"]] = obj["ETag"]
            return out

    def read_object(self, key: str) -> bytes:
        """An object by key (``registry/current/...``) straight from the store."""
        if self.store == "file":
            return (self.stack.root / "store" / key).read_bytes()
        with self.s3() as s3:
            return s3.get_object(Bucket=self.stack.info["bucket"], Key=key)["Body"].read()

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.store_snapshot() if k.startswith(prefix))

    def manifest(self, tenant: str, surface: str) -> bytes:
        return self.read_object(f"registry/current/{tenant}/{surface}/manifest.json")

    def s3(self) -> _S3:
        return _S3(self.stack.env)


class _S3:
    """A boto3 S3 client for the stack's bucket, closed on exit."""

    def __init__(self, env: dict[str, str]) -> None:
        import boto3

        self.client = boto3.client(
            "s3", endpoint_url=env["RECSYS_ARTIFACT_S3_ENDPOINT"], region_name="us-east-1",
            aws_access_key_id=env["RECSYS_ARTIFACT_S3_ACCESS_KEY"],
            aws_secret_access_key=env["RECSYS_ARTIFACT_S3_SECRET_KEY"],
        )

    def __enter__(self) -> Any:
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()


def assert_no_secret(run: Run, secrets: dict[str, str]) -> None:
    for name, value in secrets.items():
        assert value not in run.stdout, f"{name} printed on stdout by recsys-checks {' '.join(run.args)}"
        assert value not in run.stderr, f"{name} printed on stderr by recsys-checks {' '.join(run.args)}"


def one_line(text: str) -> bool:
    """Exactly one non-empty line."""
    return len(text.strip().splitlines()) == 1
