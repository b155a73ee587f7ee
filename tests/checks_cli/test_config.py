"""Targets from the environment: templates, derived locations, durations and safe names."""

from __future__ import annotations

from datetime import timedelta

import pytest

from recsys_checks.core.errors import BadInput
from recsys_checks.reach.settings import DEFAULT_MANIFEST_TEMPLATE, Target, parse_duration, safe_segment


def test_default_template_is_the_suites():
    """With nothing set, the manifest template is the suite's default bucket layout."""
    suite_default = "s3://recsys-artifacts/registry/current/{tenant}/{surface}/manifest.json"
    assert Target.from_env({}).manifest_template == suite_default == DEFAULT_MANIFEST_TEMPLATE


def test_records_prefix_is_derived_from_the_manifest_template():
    """records live beside current/: …/current/{t}/{s}/manifest.json → …/records/{t}/{s}/."""
    t = Target.from_env({"RECSYS_ARTIFACT_MANIFEST_TEMPLATE": "file:///srv/reg/current/{tenant}/{surface}/manifest.json"})
    assert t.manifest_uri("demo", "home") == "file:///srv/reg/current/demo/home/manifest.json"
    assert t.records_prefix("demo", "home") == "file:///srv/reg/records/demo/home/"
    assert t.registry_root() == "file:///srv/reg"


def test_records_template_is_required_when_it_cannot_be_derived():
    """A template not ending in current/{tenant}/{surface}/manifest.json needs an explicit records template."""
    t = Target.from_env({"RECSYS_ARTIFACT_MANIFEST_TEMPLATE": "s3://b/{tenant}-{surface}.json"})
    with pytest.raises(BadInput, match="RECSYS_ARTIFACT_RECORDS_TEMPLATE"):
        t.records_prefix("demo", "home")


def test_flags_override_the_environment():
    """A non-None override wins over the variable."""
    t = Target.from_env({"RECSYS_BASE_URL": "http://a:1"}, base_url="http://b:2")
    assert t.base_url == "http://b:2"


@pytest.mark.parametrize("template", ["/abs/{tenant}/{surface}", "s3://bucket/manifest.json", "http://x/{tenant}/{surface}"])
def test_bad_templates_are_refused(template):
    """Templates must be file:// or s3:// and contain both placeholders."""
    with pytest.raises(BadInput):
        Target.from_env({"RECSYS_ARTIFACT_MANIFEST_TEMPLATE": template})


@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "a/b", "a\\b", " demo", "demo\n", "de\x00mo"])
def test_unsafe_segments_are_refused(bad):
    """Names that could escape a path or hide in a log are rejected before any path is built."""
    with pytest.raises(BadInput):
        safe_segment(bad)
    with pytest.raises(BadInput):
        Target.from_env({}).manifest_uri("demo", bad)


def test_safe_segments_pass_through():
    """Ordinary tenant and surface names are accepted unchanged."""
    assert safe_segment("acme-eu_1") == "acme-eu_1"


@pytest.mark.parametrize("text,expected", [("26h", timedelta(hours=26)), ("7d", timedelta(days=7)), ("90s", timedelta(seconds=90)), ("15m", timedelta(minutes=15))])
def test_durations_parse(text, expected):
    """Durations take s, m, h and d units."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["26", "h", "0h", "-1d", "1w", ""])
def test_bad_durations_are_refused(text):
    """Missing units, zero, negative and unknown units are bad input."""
    with pytest.raises(BadInput):
        parse_duration(text)


@pytest.mark.parametrize("variable", ["RECSYS_API_KEY", "RECSYS_ARTIFACT_S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"])
def test_credentials_with_a_trailing_newline_are_refused_without_showing_them(variable):
    """A key exported with its file's newline is configuration error naming the variable, never the value."""
    with pytest.raises(BadInput, match="newline") as info:
        Target.from_env({variable: "k3y-value-123\n"})
    assert "k3y-value-123" not in str(info.value)


def test_an_s3_endpoint_without_a_scheme_is_refused():
    """RECSYS_ARTIFACT_S3_ENDPOINT must be an http(s) URL; boto3 would otherwise fail with a traceback."""
    with pytest.raises(BadInput, match="RECSYS_ARTIFACT_S3_ENDPOINT"):
        Target.from_env({"RECSYS_ARTIFACT_S3_ENDPOINT": "127.0.0.1:9000"})


def test_redact_masks_every_credential_of_the_target():
    """Target.redact replaces the API key and the S3 keys with ***."""
    t = Target(api_key="api-k3y-0123", s3_access_key="AKIAX0123", s3_secret_key="s3cr3t-0123")
    assert t.redact("a api-k3y-0123 b AKIAX0123 c s3cr3t-0123") == "a *** b *** c ***"


def test_redact_leaves_words_alone_for_a_too_short_secret():
    """A 'secret' shorter than 8 characters (a test key) is not masked: it would corrupt names and URIs."""
    assert Target(s3_access_key="soak", s3_secret_key="soak").redact("s3://b/soak-1/x") == "s3://b/soak-1/x"


def test_output_masks_a_credential_a_peer_echoed(monkeypatch, capsys):
    """Whatever a peer echoed into a result, the printed output masks the environment's credentials."""
    from recsys_checks.cli.output import emit
    from recsys_checks.core.results import CheckResult

    monkeypatch.setenv("RECSYS_API_KEY", "sk-echoed-0123456789")
    emit([CheckResult("health", "ok", "fine", {"body": "X-API-Key: sk-echoed-0123456789"})], as_json=True)
    out = capsys.readouterr().out
    assert "sk-echoed-0123456789" not in out and "***" in out
