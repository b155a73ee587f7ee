"""The receiver: Starlette on uvicorn, a bounded queue of incidents, a bounded number of workers.

``POST /alertmanager``   Alertmanager's webhook (version 4), bearer token ``RECSYS_ALERTS_TOKEN``
``GET /incidents``       the incidents (HTML; JSON with ``Accept: application/json``), one row per surface run
``GET /incidents/ID``    one incident: verdict and cause first, the plan and the command to apply it, the notebook
``GET /healthz``         the receiver itself
``GET /metrics``         Prometheus text: queue depth, runs by verdict, run seconds
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import os
import re
import shlex
import socket
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks import (
    NOTIFY_ENV,
    TOKEN_ENV,
    ChecksCli,
    ChecksError,
    ConfigError,
    RunOutcome,
    Spec,
    default_command,
    mask,
    runbook_run_args,
    safe_segment,
    write_atomic,
)
from .incident import NO_RUNBOOK, NOT_RUN, NOTHING_FOUND, QUEUE_FULL, QUEUED, RUNNING, Incident, Row, now_z
from .payload import Alert, normal_time
from .store import Store, lock, public_row
from .triage import Triager

MIN_TOKEN = 8  # the project's secret rule masks values of at least 8 characters; a shorter token could leak
RENDER_TIMEOUT = 120.0
ACCEPT_GRACE = 120.0  # at stop, how long deliveries still being written may take
RESERVED_PARAMS = ("tenant", "surface", "execute", "plan_id", "confirm", "reason")
RUN_SECONDS_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800)


@dataclass
class Settings:
    host: str
    port: int
    out: Path
    token: str
    workers: int = 2
    queue_size: int = 100
    max_surfaces: int = 3
    tenant_label: str = ""
    surface_label: str = ""
    params: list[tuple[str | None, str, str]] = field(default_factory=list)
    run_timeout: float = 900.0
    triage_timeout: float = 120.0
    max_probes: int = 200
    triage_ttl: float = 30.0
    max_body: int = 4 * 1024 * 1024
    external_url: str = ""
    notify_url: str = ""
    command: list[str] = field(default_factory=list)


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:9097")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ConfigError(f"--listen {value!r}: the host must be an IP address (127.0.0.1, ::1, 0.0.0.0) or "
                              "localhost") from None
    return host, int(port)


def parse_param(value: str) -> tuple[str | None, str, str]:
    name, sep, text = value.partition("=")
    runbook, colon, name = name.rpartition(":") if ":" in name else ("", "", name)
    name = name.strip()
    if not sep or not re.match(r"^[a-z][a-z0-9_]*$", name):
        raise ConfigError(f"-p {value!r}: expected [RUNBOOK:]NAME=VALUE, e.g. -p max_age=48h")
    if name in RESERVED_PARAMS:
        raise ConfigError(f"-p {value!r}: {name} is set by the receiver, per alert")
    return (runbook.strip() or None) if colon else None, name, text


def settings_from(args: Any, env: dict[str, str] | None = None) -> Settings:
    """The receiver's settings from the options of ``alerts serve`` (:mod:`recsys_checks.cli.receiver`) and the
    environment; ConfigError (exit 2) for one that stops it before it starts."""
    env = dict(os.environ if env is None else env)
    token = env.get(TOKEN_ENV, "")
    if not token:
        raise ConfigError(f"{TOKEN_ENV} is not set: the receiver accepts only requests with this bearer token (give "
                          f"Alertmanager the same value in http_config.authorization), e.g. "
                          f"export {TOKEN_ENV}=$(openssl rand -hex 32)")
    if len(token) < MIN_TOKEN or token != token.strip():
        raise ConfigError(f"{TOKEN_ENV} is shorter than {MIN_TOKEN} characters or has surrounding spaces: use a "
                          "long random value, e.g. $(openssl rand -hex 32)")
    host, port = parse_listen(args.listen)
    notify = env.get(NOTIFY_ENV, "")
    if notify and not re.match(r"^https?://[^\s/]+", notify):
        raise ConfigError(f"{NOTIFY_ENV} is not an http:// or https:// URL")
    external = args.external_url.rstrip("/")
    if external and not re.match(r"^https?://[^\s/]+", external):
        raise ConfigError(f"--external-url {args.external_url!r}: expected an http:// or https:// URL")
    if not external:
        shown = f"[{host}]" if ":" in host else host
        external = f"http://{shown}:{port}"
    if (args.tenant_label or args.surface_label) and args.tenant_label == args.surface_label:
        raise ConfigError("--tenant-label and --surface-label name the same label")
    return Settings(
        host=host, port=port, out=Path(args.out), token=token, workers=args.workers, queue_size=args.queue_size,
        max_surfaces=args.max_surfaces, tenant_label=args.tenant_label, surface_label=args.surface_label,
        params=[parse_param(p) for p in args.param], run_timeout=float(args.run_timeout),
        triage_timeout=float(args.triage_timeout), max_probes=args.max_probes, triage_ttl=args.triage_ttl,
        max_body=args.max_body, external_url=external, notify_url=notify,
        command=shlex.split(args.checks_command) if args.checks_command else default_command(),
    )


def log(message: str) -> None:
    sys.stderr.write(f"{now_z()} recsys-checks alerts: {mask(message)}\n")
    sys.stderr.flush()


class Metrics:
    def __init__(self, receiver: Receiver) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        g = Gauge("recsys_alerts_queue_depth", "incidents waiting for a worker", registry=r)
        g.set_function(lambda: receiver.queue.qsize() if receiver.queue is not None else 0)
        Gauge("recsys_alerts_queue_capacity", "--queue-size", registry=r).set(receiver.settings.queue_size)
        g = Gauge("recsys_alerts_runs_in_progress", "runbook runs running now", registry=r)
        g.set_function(lambda: receiver.runs_in_progress)
        self.alerts = Counter("recsys_alerts_received", "alerts received, by status", ["status"], registry=r)
        self.duplicates = Counter("recsys_alerts_duplicates", "alerts notified again (nothing new run)", registry=r)
        self.incidents = Counter("recsys_alerts_incidents", "incidents ended, by status", ["status"], registry=r)
        self.runs = Counter("recsys_alerts_runs", "runbook runs ended, by verdict", ["verdict"], registry=r)
        self.run_seconds = Histogram("recsys_alerts_run_seconds", "seconds of one runbook run",
                                     buckets=RUN_SECONDS_BUCKETS, registry=r)
        self.not_run = Counter("recsys_alerts_not_run", "incidents recorded not run, by reason", ["reason"],
                               registry=r)
        self.requests = Counter("recsys_alerts_webhook_requests", "webhook requests, by answer", ["code"], registry=r)
        self.notifications = Counter("recsys_alerts_notifications", "notifications, by outcome", ["outcome"],
                                     registry=r)


class Receiver:
    def __init__(self, settings: Settings, cli: ChecksCli, specs: dict[str, Spec], store: Store) -> None:
        self.settings = settings
        self.cli = cli
        self.specs = specs
        self.store = store
        self.by_alert: dict[str, list[str]] = {}
        for spec in sorted(specs.values(), key=lambda s: s.id):
            for name in spec.alerts:
                self.by_alert.setdefault(name, []).append(spec.id)
        self.triager = Triager(cli, max_probes=settings.max_probes, ttl=settings.triage_ttl)
        self.queue: asyncio.Queue[str] | None = None
        self.runs_in_progress = 0
        # One runbook at a time per surface: two alerts of one fault (an artifact-load alert and an empty-recs alert)
        # name the same surface, and two dry runs of it at once learn nothing more while each takes longer.
        self._surface_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.metrics = Metrics(self)
        self.workers: list[asyncio.Task] = []
        self.notifier: Any = None
        self.stopping = False
        self._warming = False
        # New incidents being written (by the alert's key), and the deliveries still writing after their answer.
        self.writing: dict[tuple[str, str], asyncio.Future] = {}
        self.accepting: set[asyncio.Task] = set()

    # ------------------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.queue = asyncio.Queue(self.settings.queue_size)
        self.workers = [asyncio.create_task(self._worker(), name=f"worker-{i}") for i in range(self.settings.workers)]
        if self.settings.notify_url:
            from .notify import Notifier

            self.notifier = Notifier(self.settings.notify_url, self._notified)
            self.notifier.start()

    async def stop(self) -> None:
        self.stopping = True
        if self.accepting:  # deliveries answered 503 while their incidents were written: let them finish writing
            await asyncio.wait(list(self.accepting), timeout=ACCEPT_GRACE)
        for task in self.workers:
            task.cancel()
        self.cli.processes.stop_all()
        for task in self.workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.notifier is not None:
            await self.notifier.stop()
        for incident in self.store.incidents.values():
            if incident.status == RUNNING:
                incident.interrupt("the receiver was stopped before this incident ran" if incident.phase == QUEUED
                                   else "the receiver was stopped while this incident ran; nothing of it is shown "
                                   "as finished")
                self.store.save_now(incident)
        self.store.close()

    # ------------------------------------------------------------------------------------------------ webhook

    def authorized(self, header: str) -> bool:
        scheme, _, given = header.partition(" ")
        expected = self.settings.token.encode()
        # Constant time whatever is given: compare_digest of the header's bytes with the expected ones.
        ok = hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), expected)
        return ok and scheme.lower() == "bearer"

    async def accept(self, alerts: list[Alert]) -> dict[str, Any]:
        """Record every alert of a checked payload; queue the new firing ones once they are on disk.

        A new incident is kept only once its ``alert.json`` and ``incident.json`` are written; one that could not be
        is not kept (``failed`` counts it, ``write_error`` says why), so that the answer is 5xx and Alertmanager
        sends it again. An alert whose incident is still being written for another delivery waits for that write,
        and counts as a duplicate once it is on disk (as failed when it could not be written)."""
        answer: dict[str, Any] = {"received": len(alerts), "new": [], "duplicates": 0, "resolved": 0,
                                  "not_run": 0, "requeued": 0, "failed": 0}
        fresh: dict[tuple[str, str], tuple[Incident, Alert]] = {}
        updates: list[Coroutine[Any, Any, str | None]] = []
        elsewhere: list[asyncio.Future] = []
        for alert in alerts:
            self.metrics.alerts.labels(alert.status).inc()
            if alert.key in fresh or alert.key in self.writing:
                if alert.key in fresh:
                    answer["duplicates"] += 1
                else:
                    elsewhere.append(self.writing[alert.key])
                continue
            incident = self.store.find(alert.key)
            if incident is None:
                fresh[alert.key] = (self._fresh_incident(alert, answer), alert)
            else:
                updates += self._known_alert(incident, alert, answer)
        problems = [e for e in await asyncio.gather(*updates) if e]
        written = await self._write_new(fresh, answer, problems)
        problems += [e for e in await asyncio.gather(*(self._admit(i, answer) for i in written)) if e]
        for error in await asyncio.gather(*(asyncio.shield(f) for f in elsewhere)):
            answer["failed" if error else "duplicates"] += 1
            problems += [error] if error else []
        if problems:
            answer["write_error"] = problems[0]
        return answer

    def _fresh_incident(self, alert: Alert, answer: dict[str, Any]) -> Incident:
        """A new incident as its first write keeps it: resolved unseen, no runbook (done), or queued."""
        incident = self._new_incident(alert)
        if alert.status == "resolved":
            answer["resolved"] += 1
            incident.resolved_unseen()
            incident.resolve(alert.ends_at)
        elif not incident.runbooks:
            incident.no_runbook()
            incident.finish()
        return incident

    def _known_alert(self, incident: Incident, alert: Alert,
                     answer: dict[str, Any]) -> list[Coroutine[Any, Any, str | None]]:
        """An alert of a kept incident: resolved, or notified again (run now when it was refused for a full queue
        and there is room). The saves to await."""
        if alert.status == "resolved":
            answer["resolved"] += 1
            return [self._resolve(incident)] if incident.resolve(alert.ends_at) else []
        answer["duplicates"] += 1
        self.metrics.duplicates.inc()
        incident.notified_again()
        if incident.refused_for_a_full_queue and not self.queue.full():
            incident.requeue()
            answer["requeued"] += 1
            return [self._enqueue(incident)]
        return []

    async def _resolve(self, incident: Incident) -> str | None:
        error = await self.store.save(incident)
        if error:  # not on disk: the redelivery resolves it again
            incident.unresolve()
        return error

    async def _write_new(self, fresh: dict[tuple[str, str], tuple[Incident, Alert]], answer: dict[str, Any],
                         problems: list[str]) -> list[Incident]:
        """Write each new incident's alert and incident files; the incidents written. Another delivery of the same
        alert meanwhile waits on ``writing``: the error of the write, or None once it is on disk."""
        loop = asyncio.get_running_loop()
        waits = {key: loop.create_future() for key in fresh}
        self.writing.update(waits)
        results: list[list[str | None]] = []
        try:
            results = await asyncio.gather(*(asyncio.gather(self.store.save_alert(i.id, a.raw), self.store.save(i))
                                             for i, a in fresh.values()))
        finally:
            for n, key in enumerate(fresh):
                self.writing.pop(key, None)
                error = next((e for e in results[n] if e), None) if results else "the write was stopped"
                waits[key].set_result(error)
        written = []
        for (incident, _), errors in zip(fresh.values(), results, strict=True):
            error = next((e for e in errors if e), None)
            if error:
                answer["failed"] += 1
                problems.append(error)
            else:
                written.append(incident)
        return written

    async def _admit(self, incident: Incident, answer: dict[str, Any]) -> str | None:
        """A written incident: kept, and queued (or recorded no-runbook, or queue full). Why its state could not
        be saved, if it could not (it is kept all the same: its alert is on disk)."""
        self.store.add(incident)
        if incident.resolved_at:  # resolved before it was seen firing
            self.metrics.incidents.labels(incident.status).inc()
            return None
        answer["new"].append(incident.id)
        if incident.status == NO_RUNBOOK:  # written done
            self.metrics.incidents.labels(NO_RUNBOOK).inc()
            await self._finish(incident, saved=True)
            return None
        if self.queue.full():
            incident.queue_full()
            self.metrics.not_run.labels(QUEUE_FULL).inc()
            answer["not_run"] += 1
            return await self.store.save(incident)
        return await self._enqueue(incident)

    def _enqueue(self, incident: Incident) -> Coroutine[Any, Any, str | None]:
        """Queue the incident now (the caller checked for room in this same turn of the loop); its save to await."""
        assert self.queue is not None
        self.queue.put_nowait(incident.id)
        if not self._warming:
            # nbconvert takes a second or two to import and load its templates: while the first incident triages
            # and runs, not after.
            self._warming = True
            asyncio.get_running_loop().run_in_executor(None, _warm_renderer)
        return self.store.save(incident)

    def _new_incident(self, alert: Alert) -> Incident:
        return Incident.new(fingerprint=alert.fingerprint, starts_at=alert.starts_at,
                            starts_at_normal=normal_time(alert.starts_at), alert=alert.name, labels=alert.labels,
                            summary=alert.annotations.get("summary", ""),
                            runbooks=list(self.by_alert.get(alert.name, [])))

    # ------------------------------------------------------------------------------------------------ workers

    async def _worker(self) -> None:
        assert self.queue is not None
        while True:
            iid = await self.queue.get()
            incident = self.store.incidents.get(iid)
            try:
                if incident is not None and incident.status == RUNNING:
                    await self.process(incident)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a defect of ours: recorded on the incident, the worker goes on
                why = f"internal error of the receiver ({type(exc).__name__}: {exc}); nothing was changed"
                log(f"{iid}: {why}")
                if incident is not None:
                    incident.failed_inside(why)
                    await self._finish(incident)
            finally:
                self.queue.task_done()

    def _targets_from_labels(self, incident: Incident) -> tuple[str | None, str | None, str | None]:
        """(tenant, surface, error) from the configured labels."""
        labels = incident.labels
        tenant = labels.get(self.settings.tenant_label) if self.settings.tenant_label else None
        surface = labels.get(self.settings.surface_label) if self.settings.surface_label else None
        try:
            if tenant:
                safe_segment(tenant, "tenant")
            if surface:
                safe_segment(surface, "surface")
        except ChecksError as exc:
            return None, None, f"label: {exc}"
        return tenant or None, surface or None, None

    async def process(self, incident: Incident) -> None:
        incident.triaging()
        await self.store.save(incident)
        tenant, surface, error = self._targets_from_labels(incident)
        if error:
            incident.settle_per_runbook(NOT_RUN, error)
            return await self._finish(incident)
        if tenant and surface:
            targets = [(tenant, surface)]
            incident.triaged({"kind": "labels", "summary": f"the alert names {tenant}/{surface} "
                              f"({self.settings.tenant_label}, {self.settings.surface_label}): no triage"})
        else:
            triage = await self.triager.triage(incident.alert, tenant=tenant,
                                               kind_label=incident.labels.get("kind") or None)
            incident.triaged(triage.as_dict())
            targets = [(s.tenant, s.surface) for s in triage.suspects]
            if not targets:
                if triage.unread or not triage.looked_at:
                    why = (f"inconclusive: the triage could not read everything, so nothing is known to be healthy: "
                           f"{triage.summary}")
                    status = NOT_RUN
                else:
                    why = f"nothing found: {triage.summary}"
                    status = NOTHING_FOUND
                incident.settle_per_runbook(status, why, times=(incident.triage_started_at, now_z()))
                return await self._finish(incident)
        limit = self.settings.max_surfaces
        rows = incident.plan_runs(targets[:limit], targets[limit:], limit, self._command)
        await self.store.save(incident)
        for row in rows:
            if row.status == RUNNING:
                await self._run(incident, row)
        await self._finish(incident)

    def _params(self, runbook: str, tenant: str, surface: str) -> dict[str, str]:
        params = {"tenant": tenant, "surface": surface}
        declared = self.specs[runbook].parameters
        for only, name, value in self.settings.params:
            if (only is None or only == runbook) and name in declared:
                params[name] = value
        return params

    def _command(self, runbook: str, tenant: str, surface: str, plan_id: str | None = None,
                 record: dict[str, Any] | None = None, incident: Incident | None = None) -> str:
        target = (record or {}).get("target") or {}
        confirm = str(target["deployment"]) if plan_id and target.get("protected") and target.get("deployment") else None
        reason = f"{incident.alert} (incident {incident.id})" if plan_id and incident is not None else None
        words = ["recsys-checks", *runbook_run_args(runbook, self._params(runbook, tenant, surface),
                                                    execute=bool(plan_id), plan_id=plan_id, confirm=confirm,
                                                    reason=reason)]
        return shlex.join(words)

    async def _run(self, incident: Incident, row: Row) -> None:
        folder = self.store.folder(incident.id) / "runs" / f"{row.run:02d}-{row.runbook}"
        row.start(str(folder.relative_to(self.store.root)))
        await self.store.save(incident)
        lock = self._surface_locks.setdefault((row.tenant, row.surface), asyncio.Lock())
        queued = time.monotonic()
        async with lock:
            row.waited(time.monotonic() - queued)  # for a run of the same surface to end
            self.runs_in_progress += 1
            started = time.monotonic()
            try:
                # The runner writes into runs/NN-<runbook>/: every folder above it is one the receiver made.
                await asyncio.to_thread(self.store.make_folders, folder.parent)
                outcome = await self.cli.run_runbook(row.runbook, self._params(row.runbook, row.tenant, row.surface),
                                                     folder)
            except OSError as exc:
                outcome = RunOutcome(None, None, f"not run: {exc.strerror or exc} under --out")
            finally:
                self.runs_in_progress -= 1
            seconds = time.monotonic() - started
        row.ended(seconds)
        record = outcome.record
        if record is None:
            if outcome.returncode == 2:
                row.refused(f"the runner refused: {outcome.error}")
                self.metrics.not_run.labels("refused").inc()
            else:
                row.failed(outcome.error)
                self.metrics.runs.labels("failed").inc()
                self.metrics.run_seconds.observe(seconds)
            return
        self.metrics.runs.labels(str(record.get("verdict"))).inc()
        self.metrics.run_seconds.observe(seconds)
        plan_id = plan_id_of(record)
        row.diagnosed(record, f"{row.folder}/{row.runbook}.result.json", plan_id,
                      self._command(row.runbook, row.tenant, row.surface, plan_id, record, incident)
                      if plan_id else None)
        notebook = folder / f"{row.runbook}.ipynb"
        if notebook.is_file():
            from .render import notebook_html

            try:
                page = await asyncio.wait_for(asyncio.to_thread(notebook_html, notebook), RENDER_TIMEOUT)
                html_path = folder / f"{row.runbook}.html"
                await self.store.save_file(html_path, page)
                row.rendered(f"{row.folder}/{notebook.name}", f"{row.folder}/{html_path.name}")
            except Exception as exc:  # the diagnosis stands without its page
                row.rendered(f"{row.folder}/{notebook.name}", None, "the notebook could not be rendered: "
                             f"{type(exc).__name__}: {str(exc)[:200]}")
        row.finish()

    async def _finish(self, incident: Incident, *, saved: bool = False) -> None:
        """The incident is done: saved (unless it was, as it is now), logged, notified."""
        if not saved:
            incident.finish()
        if incident.status != NO_RUNBOOK:
            self.metrics.incidents.labels(incident.status).inc()
        if not saved:
            await self.store.save(incident)
        summary = ", ".join(f"{r.runbook} {r.tenant or ''}/{r.surface or ''} {r.verdict or r.status}"
                            for r in incident.rows[:5])
        log(f"incident {incident.id} ({incident.alert}): {incident.status}: {summary}")
        if self.notifier is not None and not self.stopping:
            from .notify import message

            link = f"{self.settings.external_url}/incidents/{incident.id}"
            if not self.notifier.offer(incident.id, message(incident, link)):
                incident.notification({"status": "dropped", "attempts": 0, "error": "the notify queue was full"})
                self.metrics.notifications.labels("dropped").inc()
                await self.store.save(incident)

    async def _notified(self, incident_id: str, outcome: dict[str, Any]) -> None:
        self.metrics.notifications.labels(outcome["status"]).inc()
        incident = self.store.incidents.get(incident_id)
        if incident is not None:
            incident.notification(outcome)
            await self.store.save(incident)
        if outcome["status"] != "sent":
            log(f"incident {incident_id}: notification not delivered: {outcome['error']}")

    # ------------------------------------------------------------------------------------------------ reading

    def rows(self, limit: int, status: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for incident in reversed(list(self.store.incidents.values())):
            for row in incident.rows or [incident.row(None)]:
                public = public_row(incident, row)
                if status and public["status"] != status:
                    continue
                out.append(public)
            if len(out) >= limit:
                break
        return out[:limit]


def _warm_renderer() -> None:
    with contextlib.suppress(Exception):
        from . import render

        render.warm()


def plan_id_of(record: dict[str, Any]) -> str | None:
    """The plan id of a dry run's fix, read from the run record's data: the planned act step's first action's plan
    hash, 12 hex digits (what the fix step names as the plan in its summary, and the record's ``fix.plan_id``). None
    when no fix was planned."""
    for step in record.get("steps") or []:
        if not isinstance(step, dict) or step.get("role") != "act" or step.get("status") != "planned":
            continue
        actions = (step.get("result") or {}).get("actions") or []
        first = actions[0] if isinstance(actions, list) and actions and isinstance(actions[0], dict) else {}
        digest = (first.get("plan") or {}).get("plan_hash")
        if isinstance(digest, str) and re.match(r"^[0-9a-f]{12,}$", digest):
            return digest[:12]
    return None


# ---------------------------------------------------------------------------------------------------- serve


def _fail(message: str, code: int = ConfigError.exit_code) -> int:
    sys.stderr.write(f"recsys-checks alerts serve: error: {mask(message)}\n")
    return code


def serve(args: Any) -> int:
    """``recsys-checks alerts serve`` with its parsed options: 0 when stopped, 2 when it cannot start as configured."""
    try:
        settings = settings_from(args)
    except ConfigError as exc:
        return _fail(str(exc), exc.exit_code)
    store = Store(settings.out)
    try:
        store.check_writable()
    except OSError as exc:
        return _fail(f"--out {settings.out}: cannot write there ({exc.strerror or exc})")
    try:
        held = lock(settings.out)  # held until the process ends: one receiver per folder
    except ConfigError as exc:
        return _fail(f"--out {settings.out}: {exc}; stop it, or give this one another --out")
    except OSError as exc:
        return _fail(f"--out {settings.out}: cannot take its lock ({exc.strerror or exc})")
    cli = ChecksCli(settings.command, triage_timeout=settings.triage_timeout, run_timeout=settings.run_timeout)
    try:
        specs = cli.load_specs()
    except RuntimeError as exc:
        return _fail(f"cannot read the runbook specs through `{shlex.join(settings.command)}`: {exc}")
    for only, name, _ in settings.params:
        if only is not None and only not in specs:
            return _fail(f"-p {only}:{name}=...: there is no runbook {only}")
        if not any(name in s.parameters for s in specs.values() if only in (None, s.id)):
            return _fail(f"-p {name}=...: no runbook declares the parameter {name}")
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((settings.host, settings.port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        return _fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
    port = sock.getsockname()[1]
    if settings.port == 0 and settings.external_url.endswith(":0"):
        settings.external_url = settings.external_url[:-2] + f":{port}"
    count, interrupted, unreadable = store.load()
    receiver = Receiver(settings, cli, specs, store)
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    url = f"http://{shown}:{port}"
    try:
        write_atomic(settings.out / ".receiver.json", (json.dumps(
            {"pid": os.getpid(), "url": url, "started_at": now_z()}, indent=2) + "\n").encode())
    except OSError as exc:
        sock.close()
        return _fail(f"--out {settings.out}: cannot write there ({exc.strerror or exc})")
    matched = ", ".join(f"{a} -> {'/'.join(r)}" for a, r in sorted(receiver.by_alert.items()))
    log(f"listening on {url} (POST /alertmanager, GET /incidents); {len(specs)} runbooks, alerts: {matched}; "
        f"{count} incident(s) kept in {settings.out}" + (f", {interrupted} marked interrupted" if interrupted else ""))
    for line in unreadable:
        log(f"incident {line}; set aside as unreadable, the others are loaded")
    if not ipaddress.ip_address("127.0.0.1" if settings.host == "localhost" else settings.host).is_loopback:
        log(f"note: {settings.host} is not loopback; /incidents and /metrics answer without a token there")
    import uvicorn

    from .guard import MAX_CONNECTIONS, GuardedH11
    from .web import build_app

    # GuardedH11: a deadline for each request's headers and a bound per client address on connections still
    # sending them, so that idle or trickling sockets cannot keep Alertmanager's deliveries out.
    config = uvicorn.Config(build_app(receiver), log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=5, timeout_keep_alive=5, http=GuardedH11,
                            limit_concurrency=MAX_CONNECTIONS)
    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            # A stop asked for by SIGTERM or Ctrl-C is a clean stop (exit 0), not re-raised once the server is down.
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()

    server = Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        os.close(held)
    if not server.started:
        return _fail("the server did not start (see above)")
    log("stopped")
    return 0
