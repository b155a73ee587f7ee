"""Incidents no fault of the local stack produces, made by hand on a running stack, against what a client sees.

Each case perturbs a healthy stack's registry, artifacts or admin documents (a pointer swapped across tenants,
rules hiding a random share of the catalog, a fresh ``updated_at`` over old versions, weights scaled out of range,
a manifest removed) or leaves it healthy. The truth is computed independently of ``recsys_checks``: a plain HTTP
request to the service and the raw objects of the store (does the surface serve k items of its own tenant, from
data whose window is fresh, with most of the catalog visible?). Every runbook for the symptom must then never say
``healthy`` while the truth is broken, and say ``healthy`` when it is not. The runbooks run in-process, step by step,
the way their notebooks run them (the drills cover papermill).

``make test`` runs the seeded set below; ``CORPUS_CASES=N`` runs N random cases (``make soak`` sets it).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from recsys_checks.reach.settings import Target
from recsys_checks.runbooks.run import RunbookRun
from recsys_checks.runbooks.spec import load_spec, resolve_function

K = 10
MAX_AGE = timedelta(hours=26)
MAX_WINDOW_AGE = MAX_AGE + timedelta(hours=6)
FRESH_NOW = lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731


@dataclass
class Stack:
    root: Path
    env: dict[str, str]

    def http(self, method: str, path: str, tenant: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-Key": self.env["RECSYS_API_KEY"], "X-Org-Id": tenant}
        with httpx.Client(base_url=self.env["RECSYS_BASE_URL"], timeout=15.0, trust_env=False) as client:
            return client.request(method, path, headers=headers, **kwargs)

    def path(self, key: str) -> Path:
        return self.root / "store" / key

    def manifest(self, tenant: str, surface: str) -> dict[str, Any]:
        return json.loads(self.path(f"registry/current/{tenant}/{surface}/manifest.json").read_text())

    def write_manifest(self, tenant: str, surface: str, doc: dict[str, Any]) -> None:
        self.path(f"registry/current/{tenant}/{surface}/manifest.json").write_text(json.dumps(doc, indent=2))

    def blob(self, uri: str) -> dict[str, Any]:
        return json.loads(Path(uri.removeprefix("file://")).read_text())

    def records(self, tenant: str, surface: str, kind: str) -> list[dict[str, Any]]:
        folder = self.path(f"registry/records/{tenant}/{surface}/{kind}")
        recs = [json.loads(p.read_text()) for p in folder.glob("*.json")]
        return sorted(recs, key=lambda r: r["Window"]["End"])

    def doc(self, tenant: str, kind: str) -> Any:
        return self.http("GET", f"/v1/admin/tenants/{tenant}/{kind}", tenant).json()[kind]

    def put(self, tenant: str, kind: str, doc: Any) -> None:
        assert self.http("PUT", f"/v1/admin/tenants/{tenant}/{kind}", tenant, json=doc).status_code == 200

    def flush(self, tenant: str, surface: str) -> None:
        self.http("POST", f"/v1/admin/tenants/{tenant}/cache/invalidate", tenant,
                  json={"targets": ["popularity", "config", "rules"], "surface": surface})


# --- the truth, from a client's request and the raw store --------------------------------------------------------


def truth(stack: Stack, tenant: str, surface: str) -> str | None:
    """Why the surface is broken for its clients, or ``None`` when it is healthy."""
    stack.flush(tenant, surface)
    answer = stack.http("POST", "/v1/recommend", tenant, json={"surface": surface, "k": K,
                                                                 "user": {"user_id": "corpus"}})
    if answer.status_code != 200:
        return f"the service answers {answer.status_code}"
    served = answer.json()["items"]
    try:
        manifest = stack.manifest(tenant, surface)
        blob = stack.blob(manifest["current"]["popularity"])
    except (OSError, KeyError, ValueError):
        return "no readable popularity artifact"
    for kind, uri in manifest["current"].items():
        try:
            other = stack.blob(uri)
        except (OSError, ValueError):
            return f"the {kind} artifact cannot be read"
        if (other.get("tenant"), other.get("surface")) != (tenant, surface):
            return f"the {kind} artifact is {other.get('tenant')}/{other.get('surface')}'s"
    items = {i["item_id"] for i in blob["items"]}
    end = datetime.fromisoformat(blob["window"]["end"].replace("Z", "+00:00"))
    if datetime.now(UTC) - end > MAX_WINDOW_AGE:
        return f"the data window ended {blob['window']['end']}"
    blocked = {i for r in stack.doc(tenant, "rules") if r.get("action") == "block" and r.get("enabled", True)
               and r.get("surface") in (None, "", surface)
               for i in r.get("item_ids") or []}
    visible = items - blocked
    if len(items & blocked) > len(items) / 2:
        return f"rules hide {len(items & blocked)} of {len(items)} items"
    if len(served) < min(K, len(visible)):
        return f"{len(served)} items served of {min(K, len(visible))}"
    return None


# --- perturbations -----------------------------------------------------------------------------------------------


def swap_tenant(stack: Stack, rng: random.Random) -> tuple[str, str]:
    m = stack.manifest("demo", "home")
    m["current"]["popularity"] = stack.manifest("acme", "home")["current"]["popularity"]
    stack.write_manifest("demo", "home", m)
    return "demo", "home"


def swap_surface(stack: Stack, rng: random.Random) -> tuple[str, str]:
    m = stack.manifest("demo", "search")
    m["current"]["cooc"] = stack.manifest("demo", "home")["current"]["cooc"]
    stack.write_manifest("demo", "search", m)
    return "demo", "search"


def hide_share(share: float) -> Callable[[Stack, random.Random], tuple[str, str]]:
    def perturb(stack: Stack, rng: random.Random) -> tuple[str, str]:
        items = [i["item_id"] for i in stack.blob(stack.manifest("demo", "home")["current"]["popularity"])["items"]]
        hidden = rng.sample(items, int(len(items) * share))
        rules = list(stack.doc("demo", "rules")) + [{"action": "block", "target_type": "item", "item_ids": hidden}]
        stack.put("demo", "rules", rules)
        return "demo", "home"
    perturb.__name__ = f"hide_{int(share * 100)}pct"
    return perturb


def old_versions_fresh_pointer(stack: Stack, rng: random.Random) -> tuple[str, str]:
    m = stack.manifest("demo", "search")
    for kind in m["current"]:
        m["current"][kind] = stack.records("demo", "search", kind)[0]["URI"]
    m["updated_at"] = FRESH_NOW()
    stack.write_manifest("demo", "search", m)
    return "demo", "search"


def scale_weights(factor: float) -> Callable[[Stack, random.Random], tuple[str, str]]:
    def perturb(stack: Stack, rng: random.Random) -> tuple[str, str]:
        config = stack.doc("acme", "config")
        config["weights"] = {k: float(v) * factor for k, v in config["weights"].items()}
        stack.put("acme", "config", config)
        return "acme", "home"
    perturb.__name__ = f"weights_x{factor:g}"
    return perturb


def remove_manifest(stack: Stack, rng: random.Random) -> tuple[str, str]:
    stack.path("registry/current/acme/search/manifest.json").unlink()
    return "acme", "search"


def nothing(stack: Stack, rng: random.Random) -> tuple[str, str]:
    return rng.choice([("demo", "home"), ("demo", "search"), ("acme", "home")])


# What a person opens for each symptom: every runbook for it is run.
SERVING = ("empty-recs", "rollback-manifest", "rollback-config-rules")
RUNBOOKS = {
    "swap_tenant": SERVING, "swap_surface": ("rollback-manifest",),
    "old_versions_fresh_pointer": ("stale-manifest", "stale-artifacts"),
    "remove_manifest": ("empty-recs", "rollback-manifest"),
}
PERTURBATIONS = [swap_tenant, swap_surface, hide_share(0.95), hide_share(0.6), hide_share(0.1),
                 old_versions_fresh_pointer, scale_weights(1e308), scale_weights(2.0), remove_manifest, nothing]


def runbooks_for(perturb: Callable[..., Any]) -> tuple[str, ...]:
    name = perturb.__name__
    if name.startswith("hide_"):
        return ("rollback-config-rules", "empty-recs")
    if name.startswith("weights_"):
        return ("empty-recs", "service-not-ready", "rollback-config-rules")
    if name == "nothing":
        return (*SERVING, "stale-manifest", "service-not-ready")
    return RUNBOOKS[name]


def run_in_process(runbook_id: str, tenant: str, surface: str, env: dict[str, str], out: Path) -> dict[str, Any]:
    """The runbook's steps in order, as its notebook runs them; its run record."""
    spec = load_spec(runbook_id)
    run = RunbookRun(runbook_id, tenant=tenant, surface=surface, spec=spec, target=Target.from_env(env),
                     record_path=out / f"{runbook_id}.result.json")
    for step in spec.steps:
        run.step(step.id, resolve_function(step.function), show=False)
    return run.run_record()


def _cases() -> list[tuple[int, Callable[..., Any]]]:
    n = int(os.environ.get("CORPUS_CASES") or 0)
    if n:
        rng = random.Random(int(os.environ.get("CORPUS_SEED") or 15))
        return [(seed, rng.choice(PERTURBATIONS)) for seed in range(n)]
    return list(enumerate(PERTURBATIONS))


COUNTS = {"broken called healthy": 0, "healthy called broken": 0, "unexplained": 0, "cases": 0}


@pytest.mark.stack
@pytest.mark.slow
def test_no_runbook_calls_a_broken_surface_healthy(tmp_path: Path, fresh_stack) -> None:
    wrong: list[str] = []
    for seed, perturb in _cases():
        with fresh_stack("file") as handle:
            stack = Stack(handle.root, handle.env)
            tenant, surface = perturb(stack, random.Random(seed))
            broken = truth(stack, tenant, surface)
            for runbook_id in runbooks_for(perturb):
                record = run_in_process(runbook_id, tenant, surface, handle.env, tmp_path / f"out-{seed}")
                verdict = record["verdict"]
                COUNTS["cases"] += 1
                COUNTS["unexplained"] += record["cause"] == "unexplained"
                if broken and verdict == "healthy":
                    COUNTS["broken called healthy"] += 1
                    wrong.append(f"{perturb.__name__} {tenant}/{surface}: {runbook_id} said healthy; truth: {broken}")
                if not broken and verdict != "healthy":
                    COUNTS["healthy called broken"] += 1
                    wrong.append(f"{perturb.__name__} {tenant}/{surface}: {runbook_id} said {verdict} "
                                 f"({record['cause']}: {record['next_action']}) on a healthy surface")
    print(f"\nincident corpus: {COUNTS}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.stack
@pytest.mark.slow
@pytest.mark.parametrize(("missing", "runbooks"), [
    # the key reads config and rules: the runbooks that judge them
    ("RECSYS_API_KEY", ("empty-recs", "rollback-config-rules")),
    ("RECSYS_ARTIFACT_MANIFEST_TEMPLATE", ("empty-recs", "rollback-config-rules", "rollback-manifest",
                                           "stale-manifest")),
    ("RECSYS_BASE_URL", ("empty-recs", "rollback-config-rules", "rollback-manifest", "stale-manifest",
                         "service-not-ready")),
])
def test_an_incomplete_environment_is_inconclusive_never_healthy(tmp_path: Path, missing: str,
                                                                 runbooks: tuple[str, ...], fresh_stack) -> None:
    with fresh_stack("file") as handle:
        env = {k: v for k, v in handle.env.items() if k != missing}
        for runbook_id in runbooks:
            record = run_in_process(runbook_id, "demo", "home", env, tmp_path / "out")
            assert record["verdict"] == "inconclusive", (runbook_id, missing, record["verdict"], record["next_action"])
            assert record["unread"], record
