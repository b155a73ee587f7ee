"""`make demo`: start the local stack, ask it for a real recommendation, stop it again.

    python scripts/demo.py [--store file|s3]

The stack runs in a temporary directory and is always stopped, even when something fails; the script exits
non-zero if any step failed or a process of the stack is still running afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

TENANT, SURFACE = "demo", "home"


def stack(*args: str) -> None:
    """Run one `recsys-stack` command, showing it as a person would type it."""
    print(f"$ recsys-stack {' '.join(args)}", flush=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "AWS_"))}
    subprocess.run([sys.executable, "-m", "recsys_stack.cli", *args], check=True, env=env)


def read_secrets(root: Path) -> dict[str, str]:
    lines = (root / "secrets.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def recommend(base_url: str, api_key: str) -> dict:
    """POST /v1/recommend for demo/home, as any client of the service would."""
    body = {"surface": SURFACE, "k": 10, "user": {"user_id": "demo-user"}}
    headers = {"X-Org-Id": TENANT, "X-API-Key": api_key, "X-Request-Id": "make-demo"}
    print(f"\nPOST {base_url}/v1/recommend  (tenant {TENANT})  {json.dumps(body)}", flush=True)
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        resp = client.post(f"{base_url}/v1/recommend", json=body, headers=headers)
    resp.raise_for_status()
    return resp.json()


def show(result: dict) -> None:
    items = result.get("items") or []
    print(f"\n{'rank':>4}  {'item_id':<10} {'score':>8}")
    for item in items:
        print(f"{item['rank']:>4}  {item['item_id']:<10} {item['score']:>8}")
    meta = result.get("meta", {})
    print(f"\nconfig_version: {meta.get('config_version')}")
    print(f"rules_version:  {meta.get('rules_version')}")
    for warning in result.get("warnings") or []:
        print(f"warning: {warning.get('code')}: {warning.get('detail')}")
    if not items:
        raise RuntimeError("the service answered with no items")


def recorded_processes(root: Path) -> dict[str, int]:
    """The processes stack.json says the stack is running."""
    try:
        return json.loads((root / "stack.json").read_text()).get("processes") or {}
    except FileNotFoundError:
        return {}


def leftover_processes(started: dict[str, int]) -> dict[str, int]:
    """Those of ``started`` that are still alive."""
    left = {}
    for name, pid in started.items():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] if Path("/proc").exists() else "?"
        if state not in ("Z", "X"):
            left[name] = pid
    return left


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("file", "s3"), default="file")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="recsys-stack-demo-"))
    ok = False
    try:
        stack("up", "--detach", "--store", args.store, "--root", str(root))
        info = json.loads((root / "stack.json").read_text())
        show(recommend(info["base_url"], read_secrets(root)["RECSYS_API_KEY"]))
        ok = True
    except Exception as exc:  # noqa: BLE001 - the demo reports and still stops the stack
        print(f"\ndemo failed: {exc}", file=sys.stderr)
    finally:
        print(flush=True)
        started = recorded_processes(root)
        try:
            stack("down", "--root", str(root))
        except subprocess.CalledProcessError as exc:
            print(f"stopping the stack failed: {exc}", file=sys.stderr)
            ok = False
        left = leftover_processes(started)
        if left:
            print(f"processes still running after down: {left}", file=sys.stderr)
            ok = False
    if ok:
        shutil.rmtree(root, ignore_errors=True)
        print("demo ok: the stack served a recommendation and is stopped")
        return 0
    print(f"demo failed; logs kept in {root / 'logs'}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
