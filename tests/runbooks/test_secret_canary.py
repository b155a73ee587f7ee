"""A canary credential through a real runbook run: the AWS session token (part of the credential chain the S3
client reads) and the API key, as written and base64-encoded, printed by a command lever and offered as a reason.
None may reach the run record, the executed notebook or the CLI's output; as a reason it is refused (exit 2)."""

from __future__ import annotations

import base64
import secrets
import subprocess
import sys

import pytest

from handbook_site import drills


@pytest.mark.stack
@pytest.mark.slow
def test_the_credential_chain_and_its_encodings_never_reach_an_output(tmp_path, fresh_stack):
    token = "IQoJb3JpZ2luX2VjE" + secrets.token_urlsafe(24)
    with fresh_stack("file") as stack:
        env = {**drills.client_env(stack.env), "AWS_SESSION_TOKEN": token}
        drills.inject(stack.root, "stale-manifest")
        leak = ("sh -c 'echo token $AWS_SESSION_TOKEN; printf %s \"$AWS_SESSION_TOKEN\" | base64; "
                "printf %s \"$RECSYS_API_KEY\" | base64; "
                f"recsys-stack publish --root {stack.root} --tenant demo --surface home'")
        outcome = drills.run_runbook("stale-manifest", {"tenant": "demo", "surface": "home", "rerun_command": leak},
                                     env, tmp_path / "run", execute=True, phase="canary")
        assert outcome.verdict == "mitigated", outcome.describe()
        forms = [token, base64.b64encode(token.encode()).decode(), stack.api_key,
                 base64.b64encode(stack.api_key.encode()).decode()]
        texts = [p.read_text() for p in (tmp_path / "run").iterdir() if p.is_file()]
        texts += [outcome.stdout, outcome.stderr]
        for form in forms:
            assert not any(form in t for t in texts), "a credential reached an output"
        assert "***" in (tmp_path / "run" / "stale-manifest.result.json").read_text()  # the command's output, masked

        encoded = base64.b64encode(token.encode()).decode()
        refused = subprocess.run([sys.executable, "-m", "recsys_checks.cli", "runbook", "run", "stale-manifest",
                                  "-p", "tenant=demo", "-p", "surface=home", "--reason", f"rotated {encoded}",
                                  "--out", str(tmp_path / "refused")], env=env, capture_output=True, text=True,
                                 timeout=120)
        assert refused.returncode == 2 and "AWS_SESSION_TOKEN" in refused.stderr, refused
        assert encoded not in refused.stderr + refused.stdout and not (tmp_path / "refused").exists()
