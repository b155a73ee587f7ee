"""Synthetic traffic for ``recsys-stack up --alerting``: recommend requests to every tenant/surface of the stack.

The suite's alerts are ratios of requests (empty answers, server errors) and the manifest-age gauge covers the
manifests the service has loaded, so a stack without users would never alert. This process asks each surface for
recommendations in turn, ``--interval`` seconds apart per surface, as users would, and nothing else: it changes no
state. Its one line per minute says how many answers were empty, failed or refused.

    python -m recsys_stack.traffic --root ROOT [--interval 0.25]

It stops by itself when the service has not answered for ``--give-up`` seconds (a stack stopped without ``down``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from .processes import read_secrets, require_stack

USER_IDS = tuple(f"traffic-{n:03d}" for n in range(20))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys_stack.traffic", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between two requests to a surface")
    parser.add_argument("--give-up", type=float, default=120.0,
                        help="stop after this many seconds without an answer from the service")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    info = require_stack(args.root.resolve())
    key = read_secrets(Path(info["root"])).get("RECSYS_API_KEY", "")
    targets = [(t, s) for t, surfaces in (info.get("tenants") or {}).items() for s in surfaces]
    if not targets:
        print("traffic: the stack serves no surface", flush=True)
        return 1
    pause = max(args.interval / len(targets), 0.01)
    counts: Counter = Counter()
    last_answer = last_report = time.monotonic()
    n = 0
    with httpx.Client(base_url=info["base_url"], timeout=5.0, trust_env=False) as client:
        while True:
            tenant, surface = targets[n % len(targets)]
            body = {"surface": surface, "k": 10, "user": {"user_id": USER_IDS[n % len(USER_IDS)]}}
            n += 1
            try:
                resp = client.post("/v1/recommend", json=body, headers={"X-API-Key": key, "X-Org-Id": tenant})
            except httpx.HTTPError as exc:
                counts[f"no answer ({type(exc).__name__})"] += 1
                if time.monotonic() - last_answer > args.give_up:
                    print(f"traffic: no answer from {info['base_url']} for {args.give_up:.0f} s; stopping", flush=True)
                    return 0
            else:
                last_answer = time.monotonic()
                if resp.status_code == 200:
                    counts["empty" if not (resp.json().get("items") or []) else "ok"] += 1
                else:
                    counts[f"HTTP {resp.status_code}"] += 1
            now = time.monotonic()
            if now - last_report >= 60:
                print("traffic: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), flush=True)
                counts.clear()
                last_report = now
            time.sleep(pause)


if __name__ == "__main__":
    sys.exit(main())
