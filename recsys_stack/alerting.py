"""``recsys-stack up --alerting``: Prometheus, Alertmanager, the alert receiver and synthetic traffic on loopback.

What it adds to a stack, all under ``ROOT/alerting/`` and all stopped by ``recsys-stack down``:

- **traffic** (``python -m recsys_stack.traffic``): the stack has no users, and the suite's alerts are ratios of
  requests, so a small process asks every tenant/surface for recommendations a few times a second.
- **Prometheus** (Debian's ``prometheus`` binary) scraping the service's ``/metrics`` every second and evaluating
  ``rules.yaml``: the rules of ``observability/alerts.yaml`` *derived at start* for local use. Each rule keeps its
  name, expression, labels and annotations; only its ``for:`` and its range windows (``[5m]``) are shortened
  (``LOCAL_FOR``, ``LOCAL_WINDOW``), so that an alert fires seconds after a fault instead of a quarter of an hour.
  Nothing is copied into git: the file is written afresh by every ``up``.
- **Alertmanager** (``prometheus-alertmanager``) routing every alert to the receiver's ``/alertmanager`` with
  ``http_config.authorization`` (a bearer token), a short group wait and interval. Its configuration holds the
  token and is the only file that does (mode 0600).
- **the receiver** (``recsys-checks alerts serve``), started with the token and the stack's client environment
  (what ``recsys-stack env`` prints) in its environment, never on its command line; or, with ``--alerts-webhook
  URL``, no receiver: Alertmanager delivers to that URL instead (a receiver of your own).

Every port is a free one on 127.0.0.1, recorded in ``stack.json`` (``alerting``), and every process is waited for
with a deadline.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parents[1]
ALERT_RULES = REPO / "observability" / "alerts.yaml"

# The local timings: every `for:` becomes LOCAL_FOR, every range window LOCAL_WINDOW; Prometheus scrapes and
# evaluates every INTERVAL; Alertmanager waits GROUP_WAIT before the first notification of a group and
# GROUP_INTERVAL between two of the same group.
LOCAL_FOR = "2s"
LOCAL_WINDOW = "10s"
INTERVAL = "1s"
GROUP_WAIT = "1s"
GROUP_INTERVAL = "1s"
REPEAT_INTERVAL = "1h"
READY_TIMEOUT_SECONDS = 60.0
RECEIVER_PROBE_TIMEOUT_SECONDS = 60.0

TOKEN_ENV = "RECSYS_ALERTS_TOKEN"
RECEIVER_PATH = "/alertmanager"
# `recsys-checks alerts serve` as a module, so that the receiver of this checkout runs, not one elsewhere on PATH.
RECEIVER_ARGV = (sys.executable, "-m", "recsys_checks.cli", "alerts", "serve")


def receiver_params(root: Path) -> list[str]:
    """The runbook parameters a deployment gives its receiver, for this stack: where the pipeline's checkpoints
    and job logs are, and the commands that re-run a publish or heal the stack (shown in a dry run's plan). The
    runner fills in ``{tenant}`` and ``{surface}``; none of them is a secret."""
    publish = f"recsys-stack publish --root {root} --tenant {{tenant}} --surface {{surface}}"
    return [
        f"checkpoint={root}/checkpoints/{{tenant}}/{{surface}}.json",
        f"job_log={root}/runs/{{tenant}}/{{surface}}",
        f"stale-manifest:rerun_command={publish}",
        f"stale-artifacts:rerun_command={publish}",
        f"service-not-ready:recovery_command=recsys-stack heal --root {root}",
    ]

# A range window, or a string literal (whose text is left alone, even if it looks like a window).
_RANGE_OR_STRING = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)|\[\s*\d+(?:ms|s|m|h|d|w|y)\s*\]""")


def _with_window(expr: str, window: str) -> str:
    return _RANGE_OR_STRING.sub(lambda m: m.group(1) or f"[{window}]", expr)


def seconds(duration: str) -> float:
    """Seconds of a Prometheus duration of one unit (``2s``, ``500ms``, ``1h``)."""
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", duration)
    if not match:
        raise ValueError(f"{duration!r} is not a duration like 2s or 1m")
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return int(match.group(1)) * unit


class AlertingError(Exception):
    """The alerting part cannot start; the message names the missing piece and the way to get it."""


def alerting_dir(root: Path) -> Path:
    return Path(root) / "alerting"


# ---------------------------------------------------------------------------------------------------------------
# configuration derived at start


def derive_rules(source: Path = ALERT_RULES, *, for_: str = LOCAL_FOR, window: str = LOCAL_WINDOW) -> dict:
    """The rule groups of ``source`` for local use: every ``for:`` set to ``for_`` and every range window of an
    expression (``[5m]``) set to ``window``; names, labels, annotations and thresholds unchanged."""
    try:
        doc = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise AlertingError(f"cannot read the alert rules {source}: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("groups"), list):
        raise AlertingError(f"{source} is not a Prometheus rule file (no `groups:` list)")
    groups = []
    for group in doc["groups"]:
        rules = []
        for rule in group.get("rules") or []:
            rule = dict(rule)
            if "expr" in rule:
                rule["expr"] = _with_window(str(rule["expr"]), window)
            if "alert" in rule:
                rule["for"] = for_
            rules.append(rule)
        groups.append({**{k: v for k, v in group.items() if k != "rules"}, "interval": INTERVAL, "rules": rules})
    return {"groups": groups}


def prometheus_config(service_url: str, alertmanager_port: int, rules: Path) -> dict:
    host = service_url.split("://", 1)[-1].rstrip("/")
    return {
        "global": {"scrape_interval": INTERVAL, "scrape_timeout": INTERVAL, "evaluation_interval": INTERVAL},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]},
        "scrape_configs": [
            {"job_name": "recsys", "metrics_path": "/metrics", "static_configs": [{"targets": [host]}]},
        ],
    }


def alertmanager_config(webhook_url: str, token: str) -> dict:
    return {
        "route": {
            "receiver": "recsys-alerts",
            # One notification per alert and label set: the receiver triages each alert on its own.
            "group_by": ["..."],
            "group_wait": GROUP_WAIT,
            "group_interval": GROUP_INTERVAL,
            "repeat_interval": REPEAT_INTERVAL,
        },
        "receivers": [
            {
                "name": "recsys-alerts",
                "webhook_configs": [
                    {
                        "url": webhook_url,
                        "send_resolved": True,
                        "http_config": {"authorization": {"type": "Bearer", "credentials": token}},
                    }
                ],
            }
        ],
    }


# ---------------------------------------------------------------------------------------------------------------
# binaries and the receiver


def find_binary(*names: str) -> str | None:
    """The first of ``names`` beside this Python (the virtualenv's bin/, where `make test-tools` puts them), then
    on PATH."""
    here = Path(sys.executable).parent
    for name in names:
        candidate = here / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def binaries() -> dict[str, str]:
    """The Prometheus and Alertmanager binaries, or an AlertingError naming what is missing and how to get it."""
    found = {"prometheus": find_binary("prometheus"),
             "alertmanager": find_binary("prometheus-alertmanager", "alertmanager")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise AlertingError(
            f"--alerting needs {' and '.join(missing)}, not found beside {sys.executable} nor on PATH: "
            "`make test-tools` unpacks Debian's prometheus and prometheus-alertmanager into .venv/bin"
        )
    if not Path(DEBIAN_TEMPLATES, "default.tmpl").is_file() and _is_debian_build(str(found["alertmanager"])):
        raise AlertingError(
            f"Debian's Alertmanager ({found['alertmanager']}) reads its templates from {DEBIAN_TEMPLATES}/, which has "
            "no default.tmpl: `make test-tools` (as root) unpacks them from the prometheus-alertmanager package"
        )
    return {k: str(v) for k, v in found.items()}


# Debian's build of Alertmanager loads its notification templates from this fixed folder (upstream embeds them).
DEBIAN_TEMPLATES = "/usr/share/prometheus/alertmanager"


def _is_debian_build(binary: str) -> bool:
    try:
        proc = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    return "debian" in (proc.stdout + proc.stderr).lower()


def receiver_available(env: Mapping[str, str], timeout: float = RECEIVER_PROBE_TIMEOUT_SECONDS) -> str | None:
    """None when ``recsys-checks alerts serve`` exists; otherwise why not, in one line."""
    try:
        proc = subprocess.run([*RECEIVER_ARGV, "--help"], capture_output=True, text=True, timeout=timeout,
                              env=dict(env), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`recsys-checks alerts serve --help` could not run ({type(exc).__name__}: {exc})"
    if proc.returncode == 0 and "--listen" in proc.stdout:
        return None
    said = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
    return f"`recsys-checks alerts serve --help` exited {proc.returncode}" + (f": {said[-1][:200]}" if said else "")


def check_token(token: str) -> None:
    if not re.fullmatch(r"[\x21-\x7e]{16,}", token):
        raise AlertingError(f"{TOKEN_ENV} must be at least 16 printable ASCII characters without whitespace or a "
                            "newline (its value is not shown)")


def check_webhook(url: str) -> None:
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise AlertingError(f"--alerts-webhook {url!r} is not an http(s) URL")


def preflight(webhook: str | None, env: Mapping[str, str], token: str | None = None) -> None:
    """Refuse in one line, before anything starts: a missing binary, a bad token or webhook, no receiver."""
    binaries()
    if token is not None:
        check_token(token)
    if webhook is not None:
        check_webhook(webhook)
        return
    why = receiver_available({**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"})
    if why is not None:
        raise AlertingError(
            "--alerting starts the alert receiver `recsys-checks alerts serve`, which this recsys-checks does not "
            f"have ({why}); update recsys-checks, or deliver to a receiver of your own with --alerts-webhook URL"
        )


# ---------------------------------------------------------------------------------------------------------------
# starting


def _write(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def wait_http(url: str, proc: subprocess.Popen, what: str, log: Path, timeout: float = READY_TIMEOUT_SECONDS,
              headers: Mapping[str, str] | None = None, tail: Callable[[Path], str] | None = None) -> None:
    """Poll ``url`` until it answers 200; AlertingError (with the log's tail) when the process exits or on timeout."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AlertingError(f"{what} exited with code {proc.returncode} while starting; see {log}"
                                    + (f":\n{tail(log)}" if tail else ""))
            try:
                resp = client.get(url, headers=dict(headers or {}))
                if resp.status_code == 200:
                    return
                last = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.1)
    raise AlertingError(f"{what} was not ready at {url} within {timeout:.0f}s (last answer: {last}); see {log}"
                        + (f":\n{tail(log)}" if tail else ""))


def start(
    root: Path,
    info: dict,
    procs: dict[str, subprocess.Popen],
    *,
    client_env: Mapping[str, str],
    base_env: Mapping[str, str],
    token: str | None,
    webhook: str | None,
    rules_source: Path = ALERT_RULES,
    spawn: Callable[[list[str], Path, Mapping[str, str]], subprocess.Popen],
    free_port: Callable[[], int],
    record: Callable[[], None],
    tail: Callable[[Path], str],
    log=print,
) -> None:
    """Start traffic, the receiver (unless ``webhook``), Alertmanager and Prometheus for a running service.

    ``info`` (stack.json) gets ``alerting`` and the process ids, ``record()`` writes it after every start so that
    ``down`` finds whatever was started even when a later step fails.
    """
    bins = binaries()
    token = token or secrets.token_urlsafe(32)
    check_token(token)
    receiver_env = {**base_env, **client_env, TOKEN_ENV: token,
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{base_env.get('PATH', '')}"}
    rules_source = Path(rules_source)
    folder = alerting_dir(root)
    folder.mkdir(exist_ok=True)
    rules = folder / "rules.yaml"
    header = (f"# Derived from {rules_source} by `recsys-stack up --alerting` at start, for local use: every for: is "
              f"{LOCAL_FOR}, every range window {LOCAL_WINDOW}.\n# Do not edit; the next `up` writes it again.\n")
    _write(rules, header + yaml.safe_dump(derive_rules(rules_source), sort_keys=False, width=120), 0o644)

    ports = {name: free_port() for name in ("prometheus", "alertmanager", "receiver")}
    receiver_url = webhook or f"http://127.0.0.1:{ports['receiver']}"
    webhook_url = webhook or f"{receiver_url}{RECEIVER_PATH}"
    alerting: dict[str, Any] = {
        "prometheus_url": f"http://127.0.0.1:{ports['prometheus']}",
        "alertmanager_url": f"http://127.0.0.1:{ports['alertmanager']}",
        "webhook_url": webhook_url,
        "receiver_url": None if webhook else receiver_url,
        "incidents_dir": None if webhook else str(folder / "incidents"),
        "rules": str(rules),
        "rules_source": str(rules_source),
        "for": LOCAL_FOR,
        "window": LOCAL_WINDOW,
        "interval": INTERVAL,
        "group_wait": GROUP_WAIT,
        "group_interval": GROUP_INTERVAL,
    }
    info["alerting"] = alerting
    record()
    logs = Path(root) / "logs"

    # traffic first: by the time Prometheus scrapes, the service has loaded every manifest.
    traffic_log = logs / "traffic.log"
    procs["traffic"] = spawn([sys.executable, "-m", "recsys_stack.traffic", "--root", str(root)], traffic_log,
                             {**base_env, "PYTHONUNBUFFERED": "1"})
    info["processes"]["traffic"] = procs["traffic"].pid
    record()
    log(f"started traffic pid {procs['traffic'].pid} (recommend requests to every surface)")

    if webhook is None:
        out = folder / "incidents"
        out.mkdir(exist_ok=True)
        receiver_log = logs / "receiver.log"
        argv = [*RECEIVER_ARGV, "--listen", f"127.0.0.1:{ports['receiver']}", "--out", str(out)]
        for param in receiver_params(Path(root)):
            argv += ["-p", param]
        procs["receiver"] = spawn(argv, receiver_log, receiver_env)
        info["processes"]["receiver"] = procs["receiver"].pid
        record()
        log(f"started the alert receiver pid {procs['receiver'].pid} at {receiver_url}")
        wait_http(f"{receiver_url}/healthz", procs["receiver"], "the alert receiver", receiver_log, tail=tail)

    am_config = folder / "alertmanager.yml"
    _write(am_config, yaml.safe_dump(alertmanager_config(webhook_url, token), sort_keys=False), 0o600)
    am_data = folder / "alertmanager-data"
    am_data.mkdir(exist_ok=True)
    am_log = logs / "alertmanager.log"
    procs["alertmanager"] = spawn(
        [bins["alertmanager"], f"--config.file={am_config}", f"--storage.path={am_data}",
         f"--web.listen-address=127.0.0.1:{ports['alertmanager']}", "--cluster.listen-address=",
         "--log.level=info"],
        am_log, base_env,
    )
    info["processes"]["alertmanager"] = procs["alertmanager"].pid
    record()
    log(f"started Alertmanager pid {procs['alertmanager'].pid} at {alerting['alertmanager_url']}")
    wait_http(f"{alerting['alertmanager_url']}/-/ready", procs["alertmanager"], "Alertmanager", am_log, tail=tail)

    prom_config = folder / "prometheus.yml"
    _write(prom_config, yaml.safe_dump(prometheus_config(info["base_url"], ports["alertmanager"], rules),
                                       sort_keys=False), 0o644)
    prom_data = folder / "prometheus-data"
    prom_data.mkdir(exist_ok=True)
    prom_log = logs / "prometheus.log"
    procs["prometheus"] = spawn(
        [bins["prometheus"], f"--config.file={prom_config}", f"--storage.tsdb.path={prom_data}",
         f"--web.listen-address=127.0.0.1:{ports['prometheus']}", "--storage.tsdb.retention.time=1d",
         "--log.level=info"],
        prom_log, base_env,
    )
    info["processes"]["prometheus"] = procs["prometheus"].pid
    record()
    log(f"started Prometheus pid {procs['prometheus'].pid} at {alerting['prometheus_url']} "
        f"(rules {rules}, for {LOCAL_FOR}, windows {LOCAL_WINDOW})")
    wait_http(f"{alerting['prometheus_url']}/-/ready", procs["prometheus"], "Prometheus", prom_log, tail=tail)
    _wait_scraped(alerting["prometheus_url"], procs["prometheus"], prom_log, tail)


def _wait_scraped(prometheus_url: str, proc: subprocess.Popen, log: Path, tail,
                  timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Until Prometheus has scraped the service once (its target is up): only then is an alert able to fire."""
    deadline = time.monotonic() + timeout
    last = "no scrape yet"
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AlertingError(f"Prometheus exited with code {proc.returncode}; see {log}:\n{tail(log)}")
            try:
                resp = client.get(f"{prometheus_url}/api/v1/query", params={"query": 'up{job="recsys"}'})
                result = resp.json().get("data", {}).get("result") or []
                if result and result[0]["value"][1] == "1":
                    return
                last = f"up = {result[0]['value'][1]}" if result else "no scrape yet"
            except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
                last = type(exc).__name__
            time.sleep(0.2)
    raise AlertingError(f"Prometheus did not scrape the service within {timeout:.0f}s ({last}); see {log}")

