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


@pytest.mark.slow
def test_a_reports_credentials_and_dsns_never_reach_an_output(tmp_path):
    """A recsys-eval report whose effective_config carries the object store's AccessKey and SecretKey and a dataset
    DSN with a password (and repeats them in a warning), through a real eval-report-suspect run: none reaches the run
    record, the executed notebook or the CLI's output."""
    import suite_reports as sr

    config = sr.experiment_config(ControlVariant="A", Decision={"CandidateVariant": "B", "SRMGate": True})
    doc = sr.experiment_report([sr.variant("A", 1000, 120, 24), sr.variant("B", 1200, 150, 30)],
                               [sr.guardrail("A"), sr.guardrail("B")], sr.srm({"A": 1000, "B": 1200}, 2e-5, True),
                               config)
    doc["warnings"] = [f"dataset {sr.DSN} slow", f"key {sr.ACCESS_KEY}"]
    report = sr.write(tmp_path, doc, sr.decision_file("hold", "srm detected", "A", "B", [("ctr", 0.005, 0.0)],
                                                      srm_detected=True))
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("RECSYS_")}
    env.update({"RECSYS_BASE_URL": "http://127.0.0.1:9",
                "RECSYS_ARTIFACT_MANIFEST_TEMPLATE": f"file://{tmp_path}/registry/current/{{tenant}}/{{surface}}/"
                                                     "manifest.json"})
    proc = subprocess.run([sys.executable, "-m", "recsys_checks.cli", "runbook", "run", "eval-report-suspect",
                           "-p", "tenant=demo", "-p", "surface=home", "-p", f"report={report}",
                           "--out", str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=300)
    assert "srm" in proc.stdout, proc
    texts = [p.read_text() for p in (tmp_path / "run").iterdir() if p.is_file()] + [proc.stdout, proc.stderr]
    assert len(texts) > 2
    for secret in (sr.ACCESS_KEY, sr.SECRET_KEY, sr.DSN, "Pw-canary-7731"):
        assert not any(secret in t for t in texts), f"{secret[:6]}... reached an output"
    assert any("***" in t for t in texts)
