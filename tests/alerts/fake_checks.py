"""A stand-in for ``recsys-checks`` that the receiver drives in the unit tests (``--checks-command``).

It answers the commands the receiver runs, from a state file the test writes (``FAKE_CHECKS_STATE``, read on every
call, so a test can change the fleet between alerts), and appends every call to ``FAKE_CHECKS_LOG``:

- ``runbook list --json`` / ``runbook show ID --json``: from ``FAKE_CHECKS_SPECS`` (the real CLI's answers, saved
  once per session);
- ``freshness --json [--deep] [--tenant T]``: the ``fleet`` rows (``condition`` healthy, stale, invalid, missing or
  unreachable), or exit 2 when ``freshness`` is ``"unread"``, or no rows and exit 1 ("no surfaces found") when it is
  ``"empty"``;
- ``recs probe --tenant T --surface S --json``: each surface's ``probe`` (ok, fail, unread, stale: served vs published);
- ``runbook run ID -p ... --out DIR --json``: sleeps ``run_sleep`` seconds, then writes a notebook and a run record
  in DIR with ``verdict`` and ``cause`` (and a planned fix with ``plan_hash`` when ``plan`` is set), and prints it.
  ``print`` is printed to stdout and written into the notebook as it is (a canary for the receiver's masking).
  With ``flood``, it prints without end instead (an output past the receiver's cap).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def state() -> dict:
    return json.loads(Path(os.environ["FAKE_CHECKS_STATE"]).read_text())


def log(argv: list[str]) -> None:
    path = os.environ.get("FAKE_CHECKS_LOG")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(argv) + "\n").encode())
        finally:
            os.close(fd)


def opt(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def row(r: dict) -> dict:
    ok = r.get("condition", "healthy") == "healthy"
    return {"tenant": r["tenant"], "surface": r["surface"], "condition": r.get("condition", "healthy"),
            "status": "ok" if ok else "fail",
            "summary": r.get("summary") or f"{r['tenant']}/{r['surface']} is {r.get('condition', 'healthy')}",
            "age_seconds": r.get("age_seconds", 10)}


def main(argv: list[str]) -> int:
    log(argv)
    st = state()
    if argv[:2] == ["runbook", "list"]:
        print(json.dumps({"runbooks": [{"id": i} for i in json.loads(Path(os.environ["FAKE_CHECKS_SPECS"])
                                                                      .read_text())]}))
        return 0
    if argv[:2] == ["runbook", "show"]:
        print(json.dumps(json.loads(Path(os.environ["FAKE_CHECKS_SPECS"]).read_text())[argv[2]]))
        return 0
    if argv[0] == "freshness":
        time.sleep(st.get("freshness_sleep", 0))
        if st.get("freshness") == "empty":
            print(json.dumps({"check": "freshness", "status": "fail", "summary": "no surfaces found under "
                              "s3://recsys-artifacts/registry/current/ for the registry", "data": {"rows": []}}))
            return 1
        if st.get("freshness") == "unread":
            sys.stderr.write("recsys-checks: error: the registry could not be listed: timed out\n")
            return 2
        tenant = opt(argv, "--tenant")
        rows = [row(r) for r in st.get("fleet", []) if tenant in (None, r["tenant"])]
        failing = [r for r in rows if r["status"] == "fail"]
        print(json.dumps({"check": "freshness", "status": "fail" if failing else "ok", "summary": "fake scan",
                          "data": {"rows": rows}, "unread": None}))
        return 1 if failing else 0
    if argv[:2] == ["recs", "probe"]:
        t, s = opt(argv, "--tenant"), opt(argv, "--surface")
        r = next((r for r in st.get("fleet", []) if (r["tenant"], r["surface"]) == (t, s)), {})
        probe = r.get("probe", "ok")
        if probe == "unread":
            sys.stderr.write(f"recsys-checks: error: {t}/{s}: the service did not answer within 10 s\n")
            return 2
        results = [{"check": "recs.probe", "status": "fail" if probe == "fail" else "ok",
                    "summary": f"{t}/{s} is empty: {r.get('why', 'no items')}" if probe == "fail" else "10 items",
                    "data": {"cause": "empty" if probe == "fail" else None}},
                   {"check": "recs.served_vs_published", "status": "fail" if probe == "stale" else "ok",
                    "summary": "the service serves an older version" if probe == "stale" else "as published",
                    "data": {}}]
        print(json.dumps({"status": "ok", "results": results}))
        return 1 if probe in ("fail", "stale") else 0
    if argv[:2] == ["runbook", "run"]:
        assert "--execute" not in argv
        runbook = argv[2]
        params = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-p")
        out = Path(opt(argv, "--out"))
        time.sleep(st.get("run_sleep", 0))
        if st.get("flood"):
            line = b"x" * 65535 + b"\n"
            while True:
                sys.stdout.buffer.write(line)
        out.mkdir(parents=True, exist_ok=False)
        leak = st.get("print", "")
        if leak:
            print(leak, file=sys.stderr)
        verdict = st.get("verdict", "action-required")
        steps = []
        if st.get("plan"):
            steps.append({"step": "fix", "role": "act", "status": "planned", "summary": f"would fix (plan {st['plan']})",
                          "result": {"actions": [{"plan": {"plan_hash": st["plan"] + "0" * 52}}]}})
        record = {"format": 1, "runbook": runbook, "parameters": params, "execute": False, "verdict": verdict,
                  "cause": st.get("cause"), "next_action": f"dry run: would fix {leak}", "steps": steps,
                  "target": {"deployment": st.get("deployment"), "protected": bool(st.get("protected"))}}
        notebook = {"cells": [{"cell_type": "markdown", "id": "leak", "metadata": {}, "source": f"# {runbook}\n\n{leak}"}],
                    "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        (out / f"{runbook}.ipynb").write_text(json.dumps(notebook))
        (out / f"{runbook}.result.json").write_text(json.dumps(record))
        print(json.dumps(record))
        return 0 if verdict in ("healthy", "mitigated") else 1
    sys.stderr.write(f"fake recsys-checks: unknown command {argv}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
