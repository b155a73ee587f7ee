"""The one secret rule: the credential chain, RECSYS_SECRET_VARIABLES, the encodings, the threshold."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import quote

import pytest
import specskit

from recsys_checks.core.credentials import MIN_SECRET, find, forms, mask, secret_variables

TOKEN = "FwoGZXIvYXdzEJr//////////wEaDLp3+token/with=odd&chars"
KEY = "k" * 20 + "-api-key"


def _encodings(value: str) -> list[str]:
    raw = value.encode()
    return [value, base64.b64encode(raw).decode(), base64.b64encode(raw).decode().rstrip("="),
            base64.urlsafe_b64encode(raw).decode(), quote(value, safe=""), binascii.hexlify(raw).decode(),
            binascii.hexlify(raw).decode().upper()]


@pytest.mark.parametrize("name", ["AWS_SESSION_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
                                  "RECSYS_API_KEY", "RECSYS_ARTIFACT_S3_SECRET_KEY", "AWS_SECURITY_TOKEN"])
def test_the_credential_chain_is_secret(name):
    assert name in secret_variables({})


def test_variables_named_in_recsys_secret_variables_are_secret_too():
    env = {"RECSYS_SECRET_VARIABLES": "VAULT_TOKEN, bad name ,DB_DSN", "VAULT_TOKEN": TOKEN, "DB_DSN": KEY}
    assert {"VAULT_TOKEN", "DB_DSN"} <= set(secret_variables(env)) and "bad name" not in secret_variables(env)
    assert sorted(find(f"x {TOKEN} y {KEY}", env)) == ["DB_DSN", "VAULT_TOKEN"]


@pytest.mark.parametrize("index", range(7))
def test_every_encoding_of_a_secret_is_found_and_masked(index):
    env = {"AWS_SESSION_TOKEN": TOKEN, "RECSYS_API_KEY": KEY}
    for value, name in ((TOKEN, "AWS_SESSION_TOKEN"), (KEY, "RECSYS_API_KEY")):
        leaked = f"header: Authorization {_encodings(value)[index]}; done"
        assert find(leaked, env) == [name]
        masked = mask(leaked, env)
        assert find(masked, env) == [] and masked.startswith("header: Authorization ***")


def test_text_without_a_secret_is_left_alone():
    env = {"AWS_SESSION_TOKEN": TOKEN}
    text = "demo/home rolled back by alice (plan 96b991438939)"
    assert find(text, env) == [] and mask(text, env) == text


def test_short_values_are_not_secrets():
    env = {"RECSYS_API_KEY": "soak"}
    assert len("soak") < MIN_SECRET and find("soak test", env) == [] and mask("soak test", env) == "soak test"
    assert all(len(f) >= MIN_SECRET for f in forms("abcdefgh"))


def test_extra_values_are_masked_with_their_encodings():
    assert mask(f"a {base64.b64encode(KEY.encode()).decode()} b", {}, extra=[KEY]) == "a *** b"


def test_every_user_of_the_rule_masks_the_credential_chain(monkeypatch, tmp_path):
    """The runner, the CLI's messages and the run record's leak check all use the one rule."""
    from recsys_checks.reach.settings import Target
    from recsys_checks.runbooks.run import RunbookRun

    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    encoded = base64.b64encode(TOKEN.encode()).decode()
    run = RunbookRun("empty-recs", target=Target.from_env({}), record_path=tmp_path / "r.json")
    assert TOKEN not in run.redact(f"token {TOKEN}") and encoded not in run.redact(f"b64 {encoded}")
    assert mask(f"x {quote(TOKEN, safe='')}") == "x ***"
    assert find(f"leak {encoded}") == ["AWS_SESSION_TOKEN"]


def test_the_rule_has_one_home():
    """No module but core/credentials.py spells out a masking or finding rule of its own: the old wrappers are gone
    and no other module names a length threshold for secrets."""
    import pathlib
    import re

    import recsys_checks

    root = pathlib.Path(recsys_checks.__file__).parent
    others = [p for p in root.rglob("*.py") if p.name != "credentials.py"]
    spelled = [str(p.relative_to(root)) for p in others
               if re.search(r"def (redact_environment|find_secrets|find_secret|mask_secret)\b|MIN_MASKED|MIN_SECRET\s*=", p.read_text())]
    assert spelled == []


def test_a_notebook_run_from_jupyter_refuses_a_secret_parameter_as_the_cli_does(monkeypatch, tmp_path):
    """RunbookRun, as a notebook opened in Jupyter builds it, applies the runner's parameter checks."""
    from recsys_checks.core.errors import BadInput
    from recsys_checks.reach.settings import Target
    from recsys_checks.runbooks.run import RunbookRun

    monkeypatch.setenv("RECSYS_API_KEY", KEY)
    with pytest.raises(BadInput, match="reason contains the value of RECSYS_API_KEY"):
        RunbookRun("empty-recs", target=Target.from_env({}), record_path=tmp_path / "r.json", reason=f"key {KEY}")
    with pytest.raises(BadInput, match="looks like a credential"):
        RunbookRun("empty-recs", target=Target.from_env({}), record_path=tmp_path / "r.json", api_key="x")
    assert not (tmp_path / "r.json").exists()


def test_a_parameter_or_a_reason_carrying_a_credential_is_refused(monkeypatch):
    from recsys_checks.core.errors import BadInput
    from recsys_checks.core.results import Plan
    from recsys_checks.runbooks.runner import check_parameters

    monkeypatch.setenv("RECSYS_API_KEY", KEY)
    encoded = base64.b64encode(KEY.encode()).decode()
    with pytest.raises(BadInput, match="RECSYS_API_KEY"):
        check_parameters(specskit.spec("empty-recs"), {"tenant": "demo", "surface": "home", "reason": encoded}, False)
    with pytest.raises(BadInput, match="reason contains the value of RECSYS_API_KEY"):
        Plan("manifest.rollback", "m", "e", [], reason=f"key was {KEY}")
    assert Plan("manifest.rollback", "m", "e", [], reason="bad publish").reason == "bad publish"
