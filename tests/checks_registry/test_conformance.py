"""python -m recsys_checks.cli.conformance: conditional writes honoured, ignored, or the store unreachable; no
credential printed."""

from __future__ import annotations

import os

from recsys_checks.cli import conformance
from recsys_checks.core.errors import Unreachable
from recsys_checks.reach.settings import Target
from recsys_checks.reach.store import FileStore


def _env(monkeypatch, target: Target) -> None:
    for name in list(os.environ):
        if name.startswith(("RECSYS_", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RECSYS_ARTIFACT_MANIFEST_TEMPLATE", target.manifest_template)
    if target.s3_endpoint:
        monkeypatch.setenv("RECSYS_ARTIFACT_S3_ENDPOINT", target.s3_endpoint)
        monkeypatch.setenv("RECSYS_ARTIFACT_S3_ACCESS_KEY", target.s3_access_key or "")
        monkeypatch.setenv("RECSYS_ARTIFACT_S3_SECRET_KEY", target.s3_secret_key or "")


def test_both_stores_honour_conditional_writes(registry, monkeypatch, capsys):
    """The file store and the S3 server on loopback refuse both conflicting writes; one probe object is left."""
    _env(monkeypatch, registry.target)
    assert conformance.main([]) == 0
    out = capsys.readouterr().out
    assert out.count("refused") == 2 and out.rstrip().endswith("conditional writes: honoured")
    assert f"{registry.base}registry/probes/conditional-writes/" in out


def test_a_store_that_ignores_conditions_fails(file_registry, monkeypatch, capsys):
    """A store that accepts every write (as some S3-compatible servers do) is reported, exit 1."""
    _env(monkeypatch, file_registry.target)
    plain = FileStore.put

    def ignoring(self, uri, data, *, if_match=None, if_none_match=False):
        return plain(self, uri, data)

    monkeypatch.setattr(FileStore, "put", ignoring)
    assert conformance.main([]) == 1
    out = capsys.readouterr().out
    assert "FAIL create again with If-None-Match: *" in out
    assert "FAIL replace with a wrong If-Match" in out
    assert "NOT honoured" in out


def test_an_unreachable_store_is_exit_2(closed_port, monkeypatch, capsys):
    target = Target(manifest_template="s3://recsys-artifacts/registry/current/{tenant}/{surface}/manifest.json",
                    s3_endpoint=f"http://127.0.0.1:{closed_port}", s3_access_key="testing", s3_secret_key="testing")
    _env(monkeypatch, target)
    assert conformance.main([]) == 2
    assert "the store cannot be used" in capsys.readouterr().err


def test_a_credential_in_an_error_is_masked(closed_port, monkeypatch, capsys):
    """The store's error can carry the endpoint as configured: a secret value in it is printed as ***."""
    secret = "s3cr3t-access-key-value"
    target = Target(manifest_template="s3://recsys-artifacts/registry/current/{tenant}/{surface}/manifest.json",
                    s3_endpoint=f"http://127.0.0.1:{closed_port}", s3_access_key="testing",
                    s3_secret_key=secret)
    _env(monkeypatch, target)
    monkeypatch.setattr(conformance, "check", lambda target: (_ for _ in ()).throw(
        Unreachable(f"the store at {target.s3_endpoint} did not answer ({target.s3_secret_key})")))
    assert conformance.main([]) == 2
    err = capsys.readouterr().err
    assert secret not in err and "***" in err and "the store cannot be used" in err
