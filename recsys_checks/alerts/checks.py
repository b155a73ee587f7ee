"""The receiver's only contact with the rest of recsys_checks.

Everything the receiver learns about the deployment it learns by running ``recsys-checks`` as a subprocess with
``--json``: the specs (``runbook list`` and ``runbook show ID``), the fleet (``freshness``), a surface
(``recs probe``) and the diagnosis (``runbook run ID -p tenant=... -p surface=...``, never ``--execute``). That keeps
it independent of the package's module layout, and a runbook run killed with the receiver leaves what the runner
leaves (its ``.incomplete`` marker), never a half-written record of ours.

The in-process imports of recsys_checks are these, and only these (the project's one secret rule, its one rule
for a safe tenant or surface name, and the figure of the fleet's ages with the drawing of it):
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsys_checks.cli.runbook_command import runbook_run_args  # noqa: F401  (the one `runbook run` command line)
from recsys_checks.core.credentials import mask as mask_credentials
from recsys_checks.core.credentials import mask_tree
from recsys_checks.core.errors import BadPayload, ChecksError, ConfigError  # noqa: F401  (the receiver's errors)
from recsys_checks.core.files import write_atomic  # noqa: F401  (the one atomic write, for incidents)
from recsys_checks.core.jsonio import loads  # noqa: F401  (JSON nested too deeply is a ValueError, not a crash)
from recsys_checks.judge.figures import freshness_figure  # noqa: F401  (the fleet's ages, for a staleness triage)
from recsys_checks.judge.registry.artifact import KINDS  # noqa: F401  (the artifact kinds, to narrow an artifact-load alert)
from recsys_checks.judge.registry.manifest import DEFAULT_MAX_AGE  # noqa: F401  (the freshness limit it is drawn against)
from recsys_checks.reach.settings import safe_segment  # noqa: F401  (re-exported: the one rule for a tenant/surface name)


def draw_svg(figure: dict[str, Any]) -> str:
    """A figure's picture as SVG (recsys_checks.runbooks.pictures)."""
    from recsys_checks.runbooks import pictures

    return pictures.svg(figure)


TOKEN_ENV = "RECSYS_ALERTS_TOKEN"
NOTIFY_ENV = "RECSYS_ALERTS_NOTIFY_URL"
# Never handed to a child: the receiver's own secrets are nothing a check needs.
OWN_SECRETS = (TOKEN_ENV, NOTIFY_ENV)

MAX_STDOUT = 64 * 1024 * 1024  # a fleet scan of a large registry is a few MiB; a runbook record is cut to 100 rows
MAX_STDERR = 64 * 1024
SPEC_TIMEOUT = 60.0
KILL_GRACE = 3.0
# The receiver's ids for "the check could not look": freshness and probe exit 2, or a timeout, or garbage output.
UNREAD = "unread"


def mask(text: str, extra: tuple[str | None, ...] = ()) -> str:
    """``text`` with every credential of the environment (the project's rule) and each of ``extra`` masked."""
    own = tuple(os.environ.get(name) for name in OWN_SECRETS)
    return mask_credentials(text, extra=(*own, *extra))


def mask_doc(doc: Any) -> Any:
    """A copy of a JSON-like document with every credential masked in every string, keys too: done before the
    document is encoded (JSON, HTML), so that no escaped form of a credential is ever written."""
    own = tuple(os.environ.get(name) for name in OWN_SECRETS)
    return mask_tree(doc, extra=own)


def default_command() -> list[str]:
    """The recsys-checks beside this interpreter, else the one on PATH, else this package as a module."""
    beside = Path(sys.executable).parent / "recsys-checks"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("recsys-checks")
    return [found] if found else [sys.executable, "-m", "recsys_checks.cli"]


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every subprocess: the receiver's, without its token and notify URL."""
    return {k: v for k, v in (os.environ if env is None else env).items() if k not in OWN_SECRETS}


@dataclass
class Completed:
    """One finished (or stopped) subprocess."""

    argv: list[str]
    returncode: int | None
    stdout: bytes
    stderr: str
    seconds: float
    timed_out: bool = False
    too_large: bool = False

    def last_line(self) -> str:
        lines = [line for line in self.stderr.strip().splitlines() if line.strip()]
        return lines[-1].strip()[:500] if lines else ""

    def why_unread(self, what: str, timeout: float) -> str:
        if self.timed_out:
            return f"{what} did not finish within {timeout:g} s and was stopped"
        if self.too_large:
            return f"{what} printed more than {MAX_STDOUT} bytes and was stopped"
        return f"{what} exited {self.returncode}" + (f": {self.last_line()}" if self.last_line() else "")


class Processes:
    """The subprocesses running now, each in its own session, so that each can be stopped with its children."""

    def __init__(self) -> None:
        self.running: set[asyncio.subprocess.Process] = set()

    def stop_all(self) -> None:
        for proc in list(self.running):
            _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def _read_capped(stream: asyncio.StreamReader, cap: int, over: asyncio.Event | None = None) -> tuple[bytes, bool]:
    """What ``stream`` gives up to ``cap`` bytes, and whether it gave more. Past the cap: with ``over``, it is set and
    reading stops (the caller stops the writer); without, the rest is read and dropped (the last ``cap`` bytes are
    kept, where a command's last line is)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return b"".join(chunks), size > cap
        size += len(chunk)
        chunks.append(chunk)
        if size <= cap:
            continue
        if over is not None:
            over.set()
            return b"".join(chunks)[:cap], True
        kept = b"".join(chunks)[-cap:]
        chunks = [kept]


async def run_command(argv: list[str], *, env: Mapping[str, str], timeout: float, processes: Processes,
                      max_stdout: int = MAX_STDOUT) -> Completed:
    """Run ``argv`` with no stdin, its output capped and its time bounded; stopped (with its children) at once when
    its output passes the cap, or when its time is up."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(env),
        start_new_session=True,
    )
    processes.running.add(proc)
    over = asyncio.Event()
    out, err, too_large, timed_out = b"", b"", False, False
    try:
        assert proc.stdout is not None and proc.stderr is not None
        readers = asyncio.gather(_read_capped(proc.stdout, max_stdout, over), _read_capped(proc.stderr, MAX_STDERR))
        # Stopped by a timeout or by the receiver's shutdown, the readers end cancelled: nothing to report.
        readers.add_done_callback(lambda f: f.cancelled() or f.exception())
        watch = asyncio.ensure_future(over.wait())
        done, _ = await asyncio.wait({readers, watch}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        watch.cancel()
        too_large, timed_out = over.is_set(), not done
        if readers.done() and not readers.cancelled():
            (out, _), (err, _) = readers.result()
        else:
            readers.cancel()
        await _stop(proc, early=too_large or timed_out)
    finally:
        if proc.returncode is None:
            _signal_group(proc.pid, signal.SIGKILL)
        processes.running.discard(proc)
    return Completed(argv, proc.returncode, out, err.decode("utf-8", "replace"), time.monotonic() - started,
                     timed_out=timed_out, too_large=too_large)


async def _stop(proc: asyncio.subprocess.Process, *, early: bool) -> None:
    """Let a finished command exit (SIGTERM first when stopped early), then kill what it left in its session (a
    notebook kernel)."""
    if early:
        _signal_group(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), KILL_GRACE)
    except TimeoutError:
        pass
    _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


# ------------------------------------------------------------------------------------------------- what the CLI says


@dataclass(frozen=True)
class Spec:
    """What the receiver needs of a runbook spec."""

    id: str
    title: str
    alerts: tuple[str, ...]
    parameters: frozenset[str]


@dataclass
class FleetScan:
    """``recsys-checks freshness --json``: every (tenant, surface) of the registry, or why it could not be read."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: str = ""
    unread: str | None = None  # the scan as a whole could not read the registry


@dataclass
class Probe:
    """``recsys-checks recs probe --json`` of one surface."""

    tenant: str
    surface: str
    outcome: str  # ok | fail | unread
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)  # check name -> {status, summary, cause}
    message: str = ""


@dataclass
class RunOutcome:
    """``recsys-checks runbook run ID ... --json --out DIR``: the run record, or why there is none."""

    record: dict[str, Any] | None
    returncode: int | None
    error: str = ""
    seconds: float = 0.0


class ChecksCli:
    """recsys-checks as subprocesses."""

    def __init__(self, command: list[str], *, triage_timeout: float, run_timeout: float,
                 env: Mapping[str, str] | None = None) -> None:
        self.command = list(command)
        self.triage_timeout = triage_timeout
        self.run_timeout = run_timeout
        self.env = child_env(env)
        self.processes = Processes()

    # Specs are read once, at start, through the CLI: it validates them with the same loader as `runbook run`, so a
    # spec the receiver matches on is one the runner can run, and nothing here depends on where the loader lives.
    def load_specs(self) -> dict[str, Spec]:
        listing = self._json_sync(["runbook", "list", "--json"])
        ids = [r.get("id") for r in listing.get("runbooks") or [] if isinstance(r, dict)]
        if not ids or not all(isinstance(i, str) for i in ids):
            raise RuntimeError("`recsys-checks runbook list --json` named no runbooks")
        with ThreadPoolExecutor(max_workers=4) as pool:
            shown = list(pool.map(lambda i: self._json_sync(["runbook", "show", i, "--json"]), ids))
        specs = {}
        for doc in shown:
            params = frozenset(p.get("name") for p in doc.get("parameters") or [] if isinstance(p, dict))
            specs[doc["id"]] = Spec(id=doc["id"], title=str(doc.get("title") or doc["id"]),
                                    alerts=tuple(a for a in doc.get("alerts") or [] if isinstance(a, str)),
                                    parameters=params)
        return specs

    def _json_sync(self, args: list[str]) -> dict[str, Any]:
        argv = [*self.command, *args]
        try:
            proc = subprocess.run(argv, capture_output=True, timeout=SPEC_TIMEOUT, env=self.env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"`{' '.join(argv)}` did not answer within {SPEC_TIMEOUT:g} s") from None
        except OSError as exc:
            raise RuntimeError(f"cannot run `{' '.join(argv)}`: {exc.strerror or exc}") from None
        if proc.returncode != 0:
            last = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or [""])[-1]
            raise RuntimeError(f"`{' '.join(args)}` exited {proc.returncode}: {last}")
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            raise RuntimeError(f"`{' '.join(args)}` did not print JSON") from None
        if not isinstance(doc, dict):
            raise RuntimeError(f"`{' '.join(args)}` did not print a JSON object")
        return doc

    async def _run(self, args: list[str], timeout: float) -> Completed:
        return await run_command([*self.command, *args], env=self.env, timeout=timeout, processes=self.processes)

    async def freshness(self, *, deep: bool = False, tenant: str | None = None) -> FleetScan:
        args = ["freshness", "--json"] + (["--deep"] if deep else []) + (["--tenant", tenant] if tenant else [])
        done = await self._run(args, self.triage_timeout)
        what = "the fleet freshness scan (`recsys-checks " + " ".join(args) + "`)"
        doc = _json_object(done.stdout) if not (done.timed_out or done.too_large) else None
        if doc is None or not isinstance((doc.get("data") or {}).get("rows"), list):
            return FleetScan(unread=done.why_unread(what, self.triage_timeout))
        scan = FleetScan(rows=[r for r in doc["data"]["rows"] if isinstance(r, dict)], summary=str(doc.get("summary") or ""))
        # A scan that listed no surface and did not succeed could not list the fleet, whatever it calls it (exit 1
        # "no surfaces found", exit 2, status inconclusive): unknown, never "nothing found".
        listed_nothing = not scan.rows and (done.returncode != 0 or doc.get("status") != "ok")
        if doc.get("unread") or doc.get("status") in ("inconclusive", "unread") or listed_nothing:
            scan.unread = str(doc.get("unread") or doc.get("summary") or done.why_unread(what, self.triage_timeout))
        return scan

    async def probe(self, tenant: str, surface: str) -> Probe:
        args = ["recs", "probe", "--tenant", tenant, "--surface", surface, "--json"]
        done = await self._run(args, self.triage_timeout)
        doc = _json_object(done.stdout) if not (done.timed_out or done.too_large) else None
        if doc is None:
            return Probe(tenant, surface, UNREAD, message=done.why_unread(f"the probe of {tenant}/{surface}",
                                                                          self.triage_timeout))
        results = doc.get("results") if isinstance(doc.get("results"), list) else [doc]
        checks = {}
        for r in results:
            if isinstance(r, dict) and isinstance(r.get("check"), str):
                checks[r["check"]] = {"status": r.get("status"), "summary": str(r.get("summary") or ""),
                                      "cause": (r.get("data") or {}).get("cause"), "unread": r.get("unread")}
        outcome = "ok" if done.returncode == 0 else "fail" if done.returncode == 1 else UNREAD
        message = "; ".join(c["summary"] for c in checks.values() if c["status"] != "ok") or done.last_line()
        return Probe(tenant, surface, outcome, checks, message)

    async def run_runbook(self, runbook: str, params: dict[str, str], out: Path) -> RunOutcome:
        """A dry run of ``runbook`` into ``out`` (which must not exist yet). Never ``--execute``."""
        args = runbook_run_args(runbook, params, out=out, json=True)
        assert "--execute" not in args
        done = await self._run(args, self.run_timeout)
        record_file = out / f"{runbook}.result.json"
        record = None
        if not (done.timed_out or done.too_large) and record_file.is_file():
            try:
                with record_file.open("rb") as fh:
                    record = _json_object(fh.read(MAX_STDOUT))
            except OSError:
                record = None
        if record is None and not (done.timed_out or done.too_large):
            record = _json_object(done.stdout)
            if record is not None and "verdict" not in record:
                record = None
        error = "" if record is not None else done.why_unread(f"`recsys-checks runbook run {runbook}`",
                                                               self.run_timeout)
        return RunOutcome(record, done.returncode, error, done.seconds)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
