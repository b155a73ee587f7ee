"""Evaluation logs for drills: exposures, outcomes and assignments of an A/B test, clean or broken on purpose.

The files follow the suite's contracts (exposure, outcome, assignment v1 JSONL). Every figure is deterministic
(a seeded generator and exact proportions), so that a test can state what the checks must find:

- ``clean``: 50/50 split, every outcome and assignment joins, treatment CTR a little above control: ships.
- ``srm``: 60/40 split where 50/50 was intended (broken bucketing): sample ratio mismatch.
- ``low-join``: 3 of every 10 outcomes carry a request id no exposure has (request ids not propagated): low join rate.
- ``impossible-lift``: the treatment's outcomes are logged three times (a join that double counts): a lift far
  beyond plausible, and duplicated outcomes.
- ``schema-break``: a quarter of the exposures carry ``latencyMs`` instead of ``latency_ms`` (a renamed field):
  lines that break the contract.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

SCENARIOS = ("clean", "srm", "low-join", "impossible-lift", "schema-break")
EXPERIMENT_ID = "exp-home-ranker"
VARIANTS = ("control", "treatment")
ITEMS_PER_LIST = 10
START = datetime(2026, 1, 1, tzinfo=UTC)


def _ts(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def generate(directory: str | Path, scenario: str = "clean", *, requests: int = 2000, seed: int = 7,
             tenant: str = "demo", surface: str = "home") -> dict[str, Path]:
    """Write ``exposures.jsonl``, ``outcomes.jsonl`` and ``assignments.jsonl`` under ``directory``.

    Returns the three paths by kind. ``requests`` is the number of exposures (lists served).
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: use one of {', '.join(SCENARIOS)}")
    if requests < 20:
        raise ValueError("requests must be at least 20")
    rng = random.Random(seed)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {k: folder / f"{k}s.jsonl" for k in ("exposure", "outcome", "assignment")}
    # Exact shares: of every 10 requests, 5 (clean) or 4 (srm) go to the treatment.
    treatment_share = 0.4 if scenario == "srm" else 0.5
    clicked_share = {"control": 0.10, "treatment": 0.11}
    counts = {v: 0 for v in VARIANTS}
    clicks = {v: 0 for v in VARIANTS}
    written = 0
    with open(paths["exposure"], "w", encoding="utf-8") as exp, open(paths["outcome"], "w", encoding="utf-8") as out, \
            open(paths["assignment"], "w", encoding="utf-8") as asg:
        for i in range(requests):
            rid = f"{tenant}-{surface}-{i:07d}"
            user = f"u{rng.randrange(requests // 2):06d}"
            variant = "treatment" if i % 10 < treatment_share * 10 else "control"
            counts[variant] += 1
            at = i * 2.0
            items = [{"item_id": f"sku-{rng.randrange(500):04d}", "rank": r + 1} for r in range(ITEMS_PER_LIST)]
            exposure = {"request_id": rid, "user_id": user, "ts": _ts(at), "items": items,
                        "context": {"surface": surface, "device": "mobile" if i % 3 else "desktop"},
                        "latency_ms": round(20 + rng.random() * 100, 1), "error": False}
            if scenario == "schema-break" and i % 4 == 3:
                exposure["latencyMs"] = exposure.pop("latency_ms")
            exp.write(json.dumps(exposure, separators=(",", ":")) + "\n")
            asg.write(json.dumps({"experiment_id": EXPERIMENT_ID, "variant": variant, "request_id": rid,
                                  "user_id": user, "ts": _ts(at - 0.5),
                                  "context": {"device": exposure["context"]["device"]}},
                                 separators=(",", ":")) + "\n")
            # The n-th request of a variant is clicked when the running share crosses the next whole click.
            n = counts[variant]
            if int(n * clicked_share[variant]) == int((n - 1) * clicked_share[variant]):
                continue
            item = items[rng.randrange(3)]["item_id"]
            events = [{"request_id": rid, "user_id": user, "item_id": item, "event_type": "click", "ts": _ts(at + 5)}]
            clicks[variant] += 1
            if clicks[variant] % 5 == 0:  # one click in five converts
                events.append({"request_id": rid, "user_id": user, "item_id": item, "event_type": "conversion",
                               "ts": _ts(at + 60), "value": 19.9})
            repeat = 3 if scenario == "impossible-lift" and variant == "treatment" else 1
            for event in events * repeat:
                written += 1
                if scenario == "low-join" and written % 10 < 3:
                    event = {**event, "request_id": "lost-" + rid}
                out.write(json.dumps(event, separators=(",", ":")) + "\n")
    return paths
