"""Secrets in a configuration document (a recsys-eval report's effective_config): masked by the name of their key,
in URLs' user information, and wherever else the same value appears."""

from __future__ import annotations

import pytest

from recsys_checks.core.credentials import MASK, mask_document, mask_tree, secret_key


@pytest.mark.parametrize("name", ["AccessKey", "SecretKey", "access_key", "secret_key", "DSN", "dsn", "Password",
                                  "db-password", "Token", "APIKey", "SessionToken", "ConnectionString"])
def test_credential_keys_are_named_by_their_key(name):
    assert secret_key(name)


@pytest.mark.parametrize("name", ["Bucket", "Endpoint", "Region", "ExperimentID", "ControlVariant", "Path", "Query",
                                  "ManifestURI", "UseSSL", "PrimaryThresholds"])
def test_ordinary_keys_are_not(name):
    assert not secret_key(name)


def test_a_document_is_masked_by_key_by_url_and_everywhere_the_value_recurs():
    doc = {"eval": {"S3": {"AccessKey": "AK1", "SecretKey": "very-secret-value", "Bucket": "b"}},
           "dataset": {"Exposures": {"DSN": "postgres://u:pw@h/db", "Path": ""}, "Outcomes": {"DSN": ""}},
           "uri": "s3://user:hunter22@minio/x", "list": [{"token": "t0k3n-abcdefgh"}]}
    masked, found = mask_document(doc, env={})
    assert masked["eval"]["S3"] == {"AccessKey": MASK, "SecretKey": MASK, "Bucket": "b"}
    assert masked["dataset"]["Exposures"] == {"DSN": MASK, "Path": ""}
    assert masked["dataset"]["Outcomes"]["DSN"] == ""  # nothing configured: nothing to hide
    assert masked["uri"] == "s3://user:***@minio/x" and masked["list"] == [{"token": MASK}]
    assert {"AK1", "very-secret-value", "postgres://u:pw@h/db", "hunter22", "t0k3n-abcdefgh"} <= found
    elsewhere = mask_tree({"warning": "auth failed for very-secret-value", "n": 3}, env={}, extra=found)
    assert elsewhere == {"warning": f"auth failed for {MASK}", "n": 3}
    assert mask_tree("AK1 stays: shorter than the threshold", env={}, extra=found).startswith("AK1")
