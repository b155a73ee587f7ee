"""The receiver's incident: a typed record, and the one module that changes it.

An incident is one alert (one fingerprint and ``startsAt``) and what the receiver did about it: its status and
phase, the triage, and one :class:`Row` per surface run (or one per runbook when no surface was run). The server,
the store, the pages and the notification read it; every change goes through a method here, so what an incident
can become is written in one place.

On disk (``incident.json``) and in ``GET /incidents/ID`` it is the JSON object :meth:`Incident.to_dict` gives, the
same keys in the same order as the receiver has always written; :meth:`Incident.from_dict` reads any incident
written before, keys missing or unknown included (unknown keys are kept and written back).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

FORMAT = 1

# Row statuses (one row per surface run, or one per runbook when no surface was run).
RUNNING, FINISHED, NOT_RUN, NOTHING_FOUND, NO_RUNBOOK, INTERRUPTED = (
    "running", "finished", "not-run", "nothing-found", "no-runbook", "interrupted")
# An incident.json found at start that cannot be read as an incident: set aside, listed, never run.
UNREADABLE = "unreadable"
STATUSES = (RUNNING, FINISHED, NOT_RUN, NOTHING_FOUND, NO_RUNBOOK, INTERRUPTED, UNREADABLE)
QUEUE_FULL = "queue full"
# Phases of an incident: waiting for a worker, looking for the surfaces, running runbooks, done.
QUEUED, TRIAGE, RUN, DONE = "queued", "triage", "run", "done"


def now_z() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def incident_id(fingerprint: str, starts_at_normal: str) -> str:
    """Sortable by when the alert started, unique per (fingerprint, startsAt)."""
    digest = hashlib.sha256(f"{fingerprint}|{starts_at_normal}".encode()).hexdigest()[:12]
    stamp = starts_at_normal[:19].replace("-", "").replace(":", "") + "Z"
    return f"{stamp}-{digest}"


def aggregate(statuses: Iterable[str]) -> str:
    """The incident's status from its rows' statuses."""
    found = set(statuses)
    if not found:
        return RUNNING
    if RUNNING in found:
        return RUNNING
    if INTERRUPTED in found:
        return INTERRUPTED
    if FINISHED in found:
        return FINISHED
    for single in (NO_RUNBOOK, NOTHING_FOUND):
        if found == {single}:
            return single
    return NOT_RUN


def _known(cls: type, doc: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the fields of ``cls`` found in ``doc``, the other keys of ``doc``); ValueError naming the first field whose
    value is not of its type (a string where a string is kept, an object for the labels...)."""
    names = {f.name: f.type for f in dataclasses.fields(cls) if f.name != "extra"}
    known = {k: v for k, v in doc.items() if k in names}
    for name, value in known.items():
        if name != "rows" and not _of_type(value, str(names[name])):
            raise ValueError(f"{name}: {type(value).__name__} where {names[name]} is kept")
    return known, {k: v for k, v in doc.items() if k not in names}


_KINDS: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "dict": (dict,),
                                       "list": (list,)}


def _of_type(value: Any, annotation: str) -> bool:
    """Whether a JSON value fits a field's annotation as written in this module (``str | None``,
    ``dict[str, str]``, ``list[str]``, ``float | None``...)."""
    bases = [part.strip().split("[")[0] for part in annotation.split("|")]
    if value is None:
        return "None" in bases
    allowed = tuple(t for base in bases for t in _KINDS.get(base, ()))
    if isinstance(value, bool) or not isinstance(value, allowed):
        return False
    if annotation == "dict[str, str]":
        return all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    if annotation == "list[str]":
        return all(isinstance(v, str) for v in value)
    return True


@dataclass
class Row:
    """One surface run of an incident (or one runbook not run): its status, the diagnosis and where its files are.
    ``run`` numbers the runs of the incident from 1; paths are relative to the receiver's ``--out``."""

    run: int | None = None
    status: str = RUNNING
    runbook: str | None = None
    tenant: str | None = None
    surface: str | None = None
    verdict: str | None = None
    cause: str | None = None
    plan_id: str | None = None
    apply_command: str | None = None
    dry_run_command: str | None = None
    next_action: str | None = None
    reason: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    seconds: float | None = None
    waited_seconds: float | None = None
    folder: str | None = None
    record: str | None = None
    notebook: str | None = None
    notebook_html: str | None = None
    # The run record's ``fix``: the decision table's row for the cause, filled in (the lever's commands by hand, the
    # hand-off, the follow-up). Written only when there is one, so that rows written before it read back the same.
    fix: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        doc = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
               if f.name != "extra" and not (f.name == "fix" and self.fix is None)}
        return {**doc, **self.extra}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Row:
        known, extra = _known(cls, doc)
        return cls(**known, extra=extra)

    # ------------------------------------------------------------------------------------------------ changes

    def start(self, folder: str) -> None:
        self.started_at = now_z()
        self.folder = folder

    def waited(self, seconds: float) -> None:
        """How long the run waited for another run of the same surface to end."""
        self.waited_seconds = round(seconds, 3)

    def ended(self, seconds: float) -> None:
        self.seconds = round(seconds, 3)
        self.finished_at = now_z()

    def refused(self, why: str) -> None:
        """The runner refused to run (bad parameters): nothing ran."""
        self.status, self.reason = NOT_RUN, why

    def failed(self, why: str | None) -> None:
        """The run ended without a run record."""
        self.status, self.verdict, self.reason = FINISHED, "failed", why

    def diagnosed(self, record: Mapping[str, Any], record_path: str, plan_id: str | None,
                  apply_command: str | None) -> None:
        """What the run record says: verdict, cause, next action, and the plan with the command applying it."""
        self.verdict = record.get("verdict")
        self.cause = record.get("cause")
        self.next_action = record.get("next_action") or None
        self.fix = record.get("fix") if isinstance(record.get("fix"), dict) else None
        self.record = record_path
        self.plan_id = plan_id
        if plan_id:
            self.apply_command = apply_command

    def rendered(self, notebook: str, page: str | None, why_not: str | None = None) -> None:
        """The executed notebook, and its HTML page (or why it could not be rendered: the diagnosis stands)."""
        self.notebook = notebook
        if page is not None:
            self.notebook_html = page
        if why_not is not None:
            self.reason = why_not

    def finish(self) -> None:
        self.status = FINISHED

    def interrupt(self, why: str, when: str) -> None:
        """A running row the receiver stopped: interrupted, never shown finished."""
        self.status, self.reason = INTERRUPTED, why
        self.finished_at = self.finished_at or when


@dataclass
class Incident:
    """One alert and what the receiver did about it (see the module)."""

    id: str
    alert: str = ""
    fingerprint: str = ""
    starts_at: str = ""
    starts_at_normal: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    received_at: str = ""
    notified: int = 1
    last_notified_at: str | None = None
    resolved_at: str | None = None
    status: str = RUNNING
    phase: str | None = QUEUED
    reason: str | None = None
    runbooks: list[str] = field(default_factory=list)
    triage: dict[str, Any] | None = None
    rows: list[Row] = field(default_factory=list)
    notify: dict[str, Any] | None = None
    # Written only once set, after the keys above (as the receiver always wrote them).
    triage_started_at: str | None = None
    finished_at: str | None = None
    format: int = FORMAT
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    _ORDER = ("format", "id", "alert", "fingerprint", "starts_at", "starts_at_normal", "labels", "summary",
              "received_at", "notified", "last_notified_at", "resolved_at", "status", "phase", "reason", "runbooks",
              "triage", "rows", "notify")
    _WHEN_SET = ("triage_started_at", "finished_at")

    @classmethod
    def new(cls, *, fingerprint: str, starts_at: str, starts_at_normal: str, alert: str, labels: dict[str, str],
            summary: str, runbooks: list[str]) -> Incident:
        """A firing alert seen for the first time: queued, for the runbooks whose spec lists it."""
        now = now_z()
        return cls(id=incident_id(fingerprint, starts_at_normal), alert=alert, fingerprint=fingerprint,
                   starts_at=starts_at, starts_at_normal=starts_at_normal, labels=dict(labels), summary=summary,
                   received_at=now, last_notified_at=now, runbooks=list(runbooks))

    @property
    def key(self) -> tuple[str, str]:
        """What identifies the alert: its fingerprint and when it started."""
        return self.fingerprint, self.starts_at_normal

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for name in self._ORDER:
            value = getattr(self, name)
            doc[name] = [r.to_dict() for r in value] if name == "rows" else value
        for name in self._WHEN_SET:
            if getattr(self, name) is not None:
                doc[name] = getattr(self, name)
        return {**doc, **self.extra}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Incident:
        """An incident as written to ``incident.json`` (by this receiver or an earlier one). ValueError when it is
        not one: not an object, no id, or rows that are not a list of objects."""
        if not isinstance(doc, Mapping) or not isinstance(doc.get("id"), str):
            raise ValueError("not an incident: expected an object with an id")
        rows = doc.get("rows")
        if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
            raise ValueError("not an incident: rows is not a list of objects")
        known, extra = _known(cls, doc)
        known["rows"] = [Row.from_dict(r) for r in rows]
        return cls(**known, extra=extra)

    # ------------------------------------------------------------------------------------------------ changes

    def row(self, runbook: str | None, *, tenant: str | None = None, surface: str | None = None,
            status: str = RUNNING, reason: str | None = None) -> Row:
        """A new row of this incident (not added to it)."""
        return Row(status=status, runbook=runbook, tenant=tenant, surface=surface, reason=reason)

    def settle_per_runbook(self, status: str, reason: str | None, *, times: tuple[str | None, str | None] | None
                           = None) -> None:
        """One row of ``status`` per runbook (none when it has no runbook), each with ``reason``; the incident's
        reason too."""
        self.rows = [self.row(rb, status=status, reason=reason) for rb in self.runbooks]
        for r in self.rows:
            if times is not None:
                r.started_at, r.finished_at = times
        self.reason = reason

    def resolved_unseen(self) -> None:
        """Resolved before the receiver saw it firing: nothing runs."""
        self.rows = ([self.row(rb, status=NOT_RUN, reason="resolved before the receiver saw it firing")
                      for rb in self.runbooks] or [self.row(None, status=NO_RUNBOOK)])
        self.status = aggregate(r.status for r in self.rows)
        self.phase = DONE

    def resolve(self, when: str | None) -> bool:
        """Mark it resolved (once); True when that changed it."""
        if self.resolved_at:
            return False
        self.resolved_at = when or now_z()
        return True

    def unresolve(self) -> None:
        """Its resolution could not be written: the next resolved notification records it again."""
        self.resolved_at = None

    def notified_again(self) -> None:
        self.notified = (self.notified or 1) + 1
        self.last_notified_at = now_z()

    @property
    def refused_for_a_full_queue(self) -> bool:
        return self.status == NOT_RUN and self.reason == QUEUE_FULL

    def requeue(self) -> None:
        """Refused for a full queue, notified again with room: it runs now (it never ran before)."""
        self.status, self.phase, self.reason = RUNNING, QUEUED, None
        self.rows = []

    def no_runbook(self) -> None:
        self.rows = [self.row(None, status=NO_RUNBOOK, reason=f"no runbook spec lists {self.alert} under alerts:")]
        self.status, self.phase = NO_RUNBOOK, DONE

    def queue_full(self) -> None:
        self.rows = [self.row(rb, status=NOT_RUN, reason=QUEUE_FULL) for rb in self.runbooks]
        self.status, self.phase, self.reason = NOT_RUN, DONE, QUEUE_FULL

    def triaging(self) -> None:
        self.phase = TRIAGE
        self.triage_started_at = now_z()

    def triaged(self, triage: dict[str, Any]) -> None:
        self.triage = triage

    def plan_runs(self, chosen: list[tuple[str, str]], rest: list[tuple[str, str]], max_surfaces: int,
                  command: Any) -> list[Row]:
        """A row per runbook for each surface: ``chosen`` ones to run, the ``rest`` not run (over
        ``--max-surfaces``); ``command(runbook, tenant, surface)`` is the dry run by hand. The incident runs now."""
        rows: list[Row] = []
        for (t, s), status, reason in ([(ts, RUNNING, None) for ts in chosen]
                                       + [(ts, NOT_RUN, f"over --max-surfaces ({max_surfaces}): run it by hand")
                                          for ts in rest]):
            for rb in self.runbooks:
                r = self.row(rb, tenant=t, surface=s, status=status, reason=reason)
                r.dry_run_command = command(rb, t, s)
                rows.append(r)
        for n, r in enumerate(rows, 1):
            r.run = n
        self.rows = rows
        self.phase = RUN
        return rows

    def failed_inside(self, why: str) -> None:
        """An error of the receiver itself: what was running is not run, and the incident says why."""
        for r in self.rows:
            if r.status == RUNNING:
                r.status, r.reason, r.finished_at = NOT_RUN, why, now_z()
        if not self.rows:
            self.rows = [self.row(None, status=NOT_RUN, reason=why)]
        self.reason = why

    def finish(self) -> None:
        self.status = aggregate(r.status for r in self.rows)
        self.phase = DONE
        self.finished_at = now_z()

    def notification(self, outcome: dict[str, Any]) -> None:
        self.notify = outcome

    @property
    def left_running(self) -> bool:
        return self.status == RUNNING or any(r.status == RUNNING for r in self.rows)

    def interrupt(self, why: str) -> None:
        """The receiver stopped before it ended: what was running is interrupted, never shown finished; an incident
        still waiting (or triaging) gets one interrupted row per runbook it would have run."""
        when = now_z()
        for r in self.rows:
            if r.status == RUNNING:
                r.interrupt(why, when)
        if not self.rows:
            self.rows = [self.row(rb, status=INTERRUPTED, reason=why) for rb in self.runbooks or [None]]
            for r in self.rows:
                r.finished_at = when
        self.status = aggregate(r.status for r in self.rows)
        self.phase = DONE
        self.reason = why
