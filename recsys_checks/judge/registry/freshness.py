"""Fleet-wide freshness: every (tenant, surface) manifest under ``<registry>/current/``, streamed row by row.

Each surface gets a condition: ``healthy``, ``stale`` (older than ``max_age``), ``missing`` (a surface directory
without a manifest, or a tenant without surfaces), ``invalid`` (the manifest, or with ``deep`` a blob it names,
fails validation), ``unreachable`` or ``held`` (stale because publishing was stopped on purpose with
``recsys-checks hold set``: shown, but not a failure). The set is open: a row may carry another condition, and the
tally counts it.

Two modes answer the fleet question at two costs:

- **shallow** (the default) reads each manifest once: strict v1 parse, ``updated_at`` against ``max_age``, tenant
  and surface matching the path, a popularity pointer, and every pointer a known kind with a well-formed URI. It
  finds every stale, missing, torn or mismatched manifest without reading a blob.
- **deep** runs :func:`recsys_checks.judge.registry.manifest.check_manifest` on every surface: every blob read and its hash recomputed.

The registry is listed once per prefix: on S3 one paginated listing of ``current/`` (or ``current/<tenant>/``)
names every manifest, so a missing one costs no request; on files one directory listing per tenant. Manifests of a
network store are fetched by a bounded pool of ``workers`` threads, because each request waits on the network; on
files they are read in the calling thread, where threads would only contend for the interpreter. Rows come out in
listing order through a bounded window, so memory stays flat however large the fleet.

A scan that could not list the fleet is **inconclusive**, never "nothing found": a listing that names no surface
(an empty or wrong registry, a web page where the S3 endpoint should be), a listing or store that fails part-way
(unreachable, too slow, a redirect, access refused) each end the scan with the rows it had, ``data["outcome"]``
``inconclusive``, ``unread`` saying what could not be read and why, and exit code 2 (could not look). ``outcome`` is
otherwise ``healthy`` (every surface fresh and valid), ``held`` (the rest held on purpose) or ``unhealthy``.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from recsys_checks.core import progress
from recsys_checks.core.errors import BadInput, ChecksError, Unreachable
from recsys_checks.core.results import CheckResult, Status
from recsys_checks.core.timefmt import age_text, parse_time
from recsys_checks.judge.invariants import age_finding, time_findings
from recsys_checks.judge.registry.artifact import version_from_uri
from recsys_checks.judge.registry.hold import read_hold
from recsys_checks.judge.registry.manifest import DEFAULT_MAX_AGE, WINDOW_LAG, check_manifest, read_manifest
from recsys_checks.judge.registry.version_records import parse_version_record
from recsys_checks.reach.settings import Target, safe_segment
from recsys_checks.reach.store import TargetStores, file_path_text, s3_location

if TYPE_CHECKING:
    from concurrent.futures import Future

CONDITIONS = ("healthy", "stale", "missing", "invalid", "unreachable", "held")
DEFAULT_WORKERS = 32
# A store that fails this many surfaces in a row has stopped answering: end the scan instead of waiting out a
# timeout for every remaining surface.
UNREACHABLE_STREAK = 3
_NAMES_IN_SUMMARY = 10
Progress = Callable[[int, int, str], None]
Row = dict[str, Any]


def _row(tenant: str, surface: str | None, condition: str, summary: str, uri: str, *, status: str = "fail",
         updated_at: str | None = None, age_seconds: int | None = None, etag: str | None = None,
         window_end: str | None = None) -> Row:
    return {"tenant": tenant, "surface": surface, "condition": condition, "status": status, "summary": summary,
            "manifest_uri": uri, "updated_at": updated_at, "age_seconds": age_seconds, "etag": etag,
            "window_end": window_end}


def _label(row: Row) -> str:
    return f"{row['tenant']}/{row['surface'] or '*'}: {row['condition']}"


# ------------------------------------------------------------------------------------------------ listing


def _path_order(name: str) -> str:
    # The order an S3 listing returns keys in ("a-b/" before "a/"), so both stores give rows in one order.
    return name + "/"


def listing(target: Target, st: TargetStores, tenant: str | None = None) -> Iterator[tuple[str, str | None, Row | None]]:
    """``(tenant, surface, None)`` for each surface to check, or ``(tenant, surface, row)`` when the listing alone
    decides it (an unsafe name, a tenant without surfaces, on S3 a surface without a manifest). Lazy, in path order.
    """
    current = f"{target.registry_root()}/current/"
    if current.startswith("s3://"):
        yield from _s3_listing(target, st, current, tenant)
        return
    tenants = [tenant] if tenant is not None else sorted(st.children(current), key=_path_order)
    for t in tenants:
        bad = _unsafe(t, None, current)
        if bad:
            yield t, None, bad
            continue
        surfaces = sorted(st.children(f"{current}{t}/"), key=_path_order)
        if not surfaces:
            yield t, None, _row(t, None, "missing", f"tenant {t} has no surfaces under {current}{t}/",
                                f"{current}{t}/")
        for s in surfaces:
            yield t, s, _unsafe(t, s, current)  # a directory without a manifest is found missing when read


def _s3_listing(target: Target, st: TargetStores, current: str, tenant: str | None) -> Iterator[tuple[str, str | None, Row | None]]:
    # One paginated listing of every key under current/ (keys come in order, each surface's keys together), so a
    # surface without a manifest is known without asking for it.
    above = f"{tenant}/" if tenant is not None else ""
    last_tenant: str | None = None
    tenant_has_surface = False
    group: tuple[str, str] | None = None
    has_manifest = False
    for rel in st.walk(current + above):
        parts = (above + rel).split("/")
        if len(parts) < 2:
            continue  # an object directly under current/ is not a tenant
        t = parts[0]
        if t != last_tenant:
            if group is not None:
                yield _surface_listed(*group, has_manifest, current)
                group = None
            if last_tenant is not None and not tenant_has_surface:
                yield _tenant_without_surfaces(last_tenant, current)
            last_tenant, tenant_has_surface = t, False
        if len(parts) < 3:
            continue  # an object directly under current/<tenant>/: the tenant exists, this is no surface
        if (t, parts[1]) != group:
            if group is not None:
                yield _surface_listed(*group, has_manifest, current)
            group, has_manifest, tenant_has_surface = (t, parts[1]), False, True
        if len(parts) == 3 and parts[2] == "manifest.json":
            has_manifest = True
    if group is not None:
        yield _surface_listed(*group, has_manifest, current)
    if last_tenant is not None and not tenant_has_surface:
        yield _tenant_without_surfaces(last_tenant, current)
    if tenant is not None and last_tenant is None:
        yield _tenant_without_surfaces(tenant, current)


def _surface_listed(t: str, s: str, has_manifest: bool, current: str) -> tuple[str, str | None, Row | None]:
    bad = _unsafe(t, s, current)
    if bad or has_manifest:
        return t, s, bad
    uri = f"{current}{t}/{s}/manifest.json"
    return t, s, _row(t, s, "missing", f"no manifest for {t}/{s} at {uri}: the service serves empty "
                      "recommendations; publish or roll back this surface", uri)


def _tenant_without_surfaces(t: str, current: str) -> tuple[str, None, Row]:
    bad = _unsafe(t, None, current)
    return t, None, bad or _row(t, None, "missing", f"tenant {t} has no surfaces under {current}{t}/", f"{current}{t}/")


def _unsafe(t: str, s: str | None, current: str) -> Row | None:
    try:
        safe_segment(t, "tenant")
        if s is not None:
            safe_segment(s, "surface")
    except BadInput as exc:
        return _row(t, s, "invalid", str(exc), f"{current}{t}/")
    return None


# ------------------------------------------------------------------------------------------------- checks


def _pointer_problem(kind: str, uri: str) -> str | None:
    """Why ``uri`` cannot name a blob (no bucket or key, not an absolute file path), or None. No request is made."""
    try:
        if uri.startswith("file:///") and "\x00" not in uri:
            path = uri[7:]  # what file_path_text gives for the plain form, without its general parse
            if path.endswith("/") or "/../" in path + "/" or "/./" in path + "/":
                return f"current.{kind} {uri!r} does not name a blob file"
        elif uri.startswith("file://"):
            path = file_path_text(uri)
            if path.endswith("/") or "/../" in path + "/" or "/./" in path + "/":
                return f"current.{kind} {uri!r} does not name a blob file"
        else:
            _, key = s3_location(uri)
            if not key or key.endswith("/"):
                return f"current.{kind} {uri!r} does not name an object key"
    except BadInput as exc:
        return f"current.{kind}: {exc}"
    return None


def _manifest_uri(target: Target, tenant: str, surface: str, proven: set[str] | None = None) -> tuple[str, Row | None]:
    """The surface's manifest URI, proven to stay under the store root; or, when it does not (a link below the root
    leads out of the store), the invalid row that says so, without reading it."""
    try:
        return target.manifest_uri(tenant, surface, proven=proven), None
    except BadInput as exc:
        uri = target.manifest_template.replace("{tenant}", tenant).replace("{surface}", surface)
        return uri, _row(tenant, surface, "invalid", str(exc), uri)


def _shallow_row(target: Target, st: TargetStores, tenant: str, surface: str, max_age: timedelta, now: datetime,
                 proven: set[str] | None = None) -> Row:
    uri, refused = _manifest_uri(target, tenant, surface, proven)
    if refused is not None:
        return refused
    found = read_manifest(target, tenant, surface, stores=st, uri=uri)
    m, etag = found.manifest, found.etag
    if m is None:
        return _row(tenant, surface, found.state, found.summary or "", uri, etag=etag)
    age = now - m.updated_at_dt
    seconds = int(age.total_seconds())
    problems = [p for p in (_pointer_problem(k, u) for k, u in m.current.items()) if p]
    if "popularity" not in m.current:
        problems.append("manifest has no popularity artifact: the service serves empty recommendations")
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return _row(tenant, surface, "invalid", f"{tenant}/{surface} is invalid: {problems[0]}{more}", uri,
                    updated_at=m.updated_at, age_seconds=seconds, etag=etag)
    # Fresh is about the data, not only the pointer: the popularity record's window end (one small read).
    window_end = _popularity_window_end(target, st, tenant, surface, m.current["popularity"], proven)
    timing = time_findings("manifest updated_at", m.updated_at_dt, now, max_age)
    timing += filter(None, [age_finding("popularity data window end", parse_time(window_end), now,
                                        max_age + WINDOW_LAG)])
    if age <= max_age and timing:
        return _row(tenant, surface, "stale", f"{tenant}/{surface} is stale: {timing[0]}", uri,
                    updated_at=m.updated_at, age_seconds=seconds, etag=etag, window_end=window_end)
    if age > max_age:
        held = _held_reason(target, st, tenant, surface)  # read only for a stale surface: one request, rarely
        if held is not None:
            return _row(tenant, surface, "held", f"{tenant}/{surface} is held ({held}): not published on purpose, "
                        f"manifest updated_at {m.updated_at}", uri, status="warn", updated_at=m.updated_at,
                        age_seconds=seconds, etag=etag)
        return _row(tenant, surface, "stale", f"{tenant}/{surface} is stale: manifest updated_at {m.updated_at} is "
                    f"{age_text(age)} old, above the {age_text(max_age)} limit", uri, updated_at=m.updated_at,
                    age_seconds=seconds, etag=etag, window_end=window_end)
    # A deviation the service tolerates (a kind it does not have, an offset on updated_at) is said, not failed.
    off = f"; off the suite's contract: {'; '.join(m.deviations)}" if m.deviations else ""
    return _row(tenant, surface, "healthy", f"{tenant}/{surface} updated {age_text(age)} ago, pointing at "
                f"{', '.join(sorted(m.current))}{off}", uri, status="warn" if off else "ok", updated_at=m.updated_at,
                age_seconds=seconds, etag=etag, window_end=window_end)


def _popularity_window_end(target: Target, st: TargetStores, tenant: str, surface: str, uri: str,
                           proven: set[str] | None = None) -> str | None:
    """``Window.End`` of the popularity version the manifest names, from its record; ``None`` when not recorded
    (a version published from elsewhere) or unreadable: the deep check reads the blob's own window."""
    version = version_from_uri(uri)
    if not version:
        return None
    try:
        raw = st.read(f"{target.records_prefix(tenant, surface, proven=proven)}popularity/{version}.json")
        return parse_version_record(raw).window_end
    except ChecksError:
        return None


def _held_reason(target: Target, st: TargetStores, tenant: str, surface: str) -> str | None:
    """Why the surface is held, or ``None`` when it is not (an unreadable marker counts as held, as publishers do)."""

    try:
        marker, _, problem = read_hold(target, tenant, surface, stores=st)
    except ChecksError as exc:
        return f"hold marker unreadable: {exc}"
    if problem:
        return f"hold marker unreadable: {problem}"
    if marker and marker.get("held"):
        return str(marker.get("reason") or "no reason given")
    return None


def deep_row(target: Target, st: TargetStores, tenant: str, surface: str, max_age: timedelta, now: datetime) -> Row:
    """The deep check of one surface: :func:`recsys_checks.judge.registry.manifest.check_manifest`, every blob validated."""
    uri, refused = _manifest_uri(target, tenant, surface)
    if refused is not None:
        return refused
    try:
        res = check_manifest(target, tenant, surface, max_age, now, stores=st)
    except ChecksError as exc:
        return _row(tenant, surface, "unreachable", str(exc), uri)
    pop = next((a for a in res.data.get("artifacts") or [] if a.get("kind") == "popularity"), {})
    return _row(tenant, surface, res.data.get("condition") or "invalid", res.summary, res.target or uri,
                status=res.status, updated_at=res.data.get("updated_at"), age_seconds=res.data.get("age_seconds"),
                etag=res.state, window_end=pop.get("window_end"))


# ------------------------------------------------------------------------------------------------ the scan


def _network_store(target: Target) -> bool:
    return not target.registry_root().startswith("file://")


def scan(
    target: Target,
    st: TargetStores,
    entries: Iterable[tuple[str, str | None, Row | None]],
    max_age: timedelta = DEFAULT_MAX_AGE,
    now: datetime | None = None,
    *,
    deep: bool = False,
    workers: int = DEFAULT_WORKERS,
) -> Iterator[Row]:
    """One row per entry of :func:`listing`, in the same order; at most ``workers`` manifests in flight at once.

    Raises :class:`Unreachable` when the store fails :data:`UNREACHABLE_STREAK` surfaces in a row.
    """
    now = now or datetime.now(UTC)
    # The folders of a file store proven to be no link, looked at once per scan (a tenant's, for all its surfaces).
    proven: set[str] = set()
    check = deep_row if deep else functools.partial(_shallow_row, proven=proven)
    streak: list[Row] = []

    def guard(row: Row) -> Row:
        if row["condition"] == "unreachable":
            streak.append(row)
            if len(streak) >= UNREACHABLE_STREAK:
                raise Unreachable(f"stopped: the object store failed {len(streak)} surfaces in a row, so the rest "
                                  f"would fail too (last: {row['summary']})")
        else:
            streak.clear()
        return row

    if workers <= 1 or not _network_store(target):
        yield from map(guard, _in_order(target, st, entries, check, max_age, now, None if deep else proven))
        return
    from concurrent.futures import ThreadPoolExecutor  # only network stores need it; a file scan starts faster

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="freshness")
    window: deque[Future[Row] | Row] = deque()
    try:
        for t, s, ready in entries:
            window.append(ready if ready is not None else pool.submit(check, target, st, t, s, max_age, now))
            while len(window) > 4 * workers:
                head = window.popleft()
                yield guard(head if isinstance(head, dict) else head.result())
        while window:
            head = window.popleft()
            yield guard(head if isinstance(head, dict) else head.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _in_order(target: Target, st: TargetStores, entries: Iterable[tuple[str, str | None, Row | None]],
              check: Callable[..., Row], max_age: timedelta, now: datetime, proven: set[str] | None) -> Iterator[Row]:
    """The rows of a file store (or of one worker) in the calling thread. With ``proven``, each tenant's surface
    folders are proven from one listing of its folder, not looked at one by one; the set holds one tenant's at a
    time (entries come tenant by tenant), so memory does not grow with the fleet."""
    tenant = None
    for t, s, ready in entries:
        if ready is not None:
            yield ready
            continue
        if proven is not None and t != tenant:
            tenant = t
            proven.clear()
            target.prove_surface_folders(t, proven)
        yield check(target, st, t, s, max_age, now)


OUTCOMES = ("healthy", "held", "unhealthy", "inconclusive")


class Tally:
    """Counts per condition and the first few names of each, for the summary; a fleet's rows need not be kept.

    ``unread`` is why the scan stopped before it had listed and read the whole fleet (``None`` when it did not).
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(CONDITIONS, 0)
        self.names: dict[str, list[str]] = {}
        self.total = 0
        self.surfaces = 0  # rows of a surface, not of a whole tenant
        self.unread: str | None = None

    def rows(self, scanned: Iterable[Row], tenant: str | None = None) -> Iterator[Row]:
        """Each row of ``scanned``, counted. A store error that stops the scan is kept as :attr:`unread` and ends
        the rows with one more: the rest of the fleet (``tenant``'s, or ``*``), ``unreachable``, so that a reader
        of the rows alone never takes the surfaces read before the stop for the whole fleet."""
        try:
            for row in scanned:
                yield self.add(row)
        except ChecksError as exc:
            self.unread = f"stopped after {self.total} surface(s): {exc}" if self.total else str(exc)
            what = "the rest of the fleet was" if self.total else "the fleet was"
            # Not counted: the counts and the summary are of what was read; this row is what was not.
            yield _row(tenant or "*", None, "unreachable", f"{what} not read: {exc}", "")

    def add(self, row: Row) -> Row:
        cond = row["condition"]
        self.total += 1
        self.surfaces += row["surface"] is not None
        self.counts[cond] = self.counts.get(cond, 0) + 1
        if cond != "healthy":
            names = self.names.setdefault(cond, [])
            if len(names) < _NAMES_IN_SUMMARY:
                names.append(f"{row['tenant']}/{row['surface'] or '*'}")
        return row

    def result(self, target: Target, tenant: str | None, max_age: timedelta, deep: bool,
               rows: list[Row] | None = None) -> CheckResult:
        root = target.registry_root()
        current = f"{root}/current/"
        mode = "deep" if deep else "shallow"
        data: dict[str, Any] = {"registry": root, "tenant": tenant, "mode": mode,
                                "max_age_seconds": int(max_age.total_seconds()), "counts": dict(self.counts)}
        if rows is not None:
            data["rows"] = rows
        scope = f"tenant {tenant}" if tenant else "the registry"
        unread = self.unread
        if unread is None and not self.surfaces:
            unread = (f"the listing of {current} named no surface for {scope}: an empty or wrong registry, or an "
                      "endpoint that is not the store; check RECSYS_ARTIFACT_MANIFEST_TEMPLATE (and "
                      "RECSYS_ARTIFACT_S3_ENDPOINT)")
        found = self._found(mode, scope, deep)
        data["outcome"] = "inconclusive" if unread else found[0]
        if unread:
            data["exit_code"] = 2  # could not look: EXIT_CODES
            problems = f"; before it stopped: {found[2]}" if self.unread and self.total and found[0] != "healthy" else ""
            return CheckResult("freshness", "fail", f"inconclusive: could not list the fleet: {unread}{problems}",
                               data, None, current, unread=unread)
        return CheckResult("freshness", found[1], found[2], data, None, current)

    def _found(self, mode: str, scope: str, deep: bool) -> tuple[str, Status, str]:
        """``(outcome, status, summary)`` of the rows counted."""
        how = "every blob validated" if deep else "manifests only; --deep validates every blob"
        healthy = self.counts.get("healthy", 0)
        held = self.counts.get("held", 0)
        if healthy == self.total:
            return "healthy", "ok", f"all {self.total} surface(s) of {scope} are fresh and valid ({mode}: {how})"
        if healthy + held == self.total:
            return "held", "warn", (f"{healthy} of {self.total} surface(s) of {scope} fresh and valid; held (not "
                                    f"published on purpose): {', '.join(self.names.get('held', []))} ({mode})")
        parts = []
        order = [c for c in CONDITIONS[1:] if c in self.names] + [c for c in self.names if c not in CONDITIONS]
        for cond in order:
            shown = self.names[cond]
            more = self.counts[cond] - len(shown)
            parts.append(f"{cond}: {', '.join(shown)}" + (f" (+{more} more)" if more else ""))
        return "unhealthy", "fail", f"{healthy} of {self.total} surface(s) healthy ({mode}); " + "; ".join(parts)


def stream(
    target: Target,
    max_age: timedelta = DEFAULT_MAX_AGE,
    *,
    tenant: str | None = None,
    now: datetime | None = None,
    deep: bool = False,
    workers: int = DEFAULT_WORKERS,
) -> tuple[Iterator[Row], Callable[[], CheckResult]]:
    """Rows as they are checked, and a function that returns the check's result once they are consumed.

    What the CLI prints from: neither the rows nor per-surface results are kept, so memory stays flat.
    """
    if tenant is not None:
        safe_segment(tenant, "tenant")
    target.registry_root()  # a template without the registry layout is bad input before anything is read
    tally = Tally()

    def scanned() -> Iterator[Row]:
        with TargetStores(target, connections=workers) as st:
            entries = listing(target, st, tenant)
            if progress.active():  # a display shows the time left, which needs the count of surfaces first
                entries = list(entries)  # type: ignore[assignment]
            total = len(entries) if isinstance(entries, list) else None
            with progress.stage("checking surfaces", total=total, unit="surfaces") as checked:
                for row in scan(target, st, entries, max_age, now, deep=deep, workers=workers):
                    checked.advance()
                    yield row

    return tally.rows(scanned(), tenant), lambda: tally.result(target, tenant, max_age, deep)


def check_freshness(
    target: Target,
    max_age: timedelta = DEFAULT_MAX_AGE,
    tenant: str | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    *,
    deep: bool = False,
    workers: int = DEFAULT_WORKERS,
) -> CheckResult:
    """Check every surface of the registry (or of one tenant); fail when any is not healthy.

    ``deep`` also validates every blob (see the module docs). ``progress(done, total, label)`` is called from the
    calling thread as each surface finishes, with a label such as ``"demo/home: stale"``. Rows in
    ``data["rows"]`` are in path order (tenant, then surface).
    """
    if tenant is not None:
        safe_segment(tenant, "tenant")
    target.registry_root()
    tally = Tally()
    rows: list[Row] = []
    entries: list[tuple[str, str | None, Row | None]] = []

    def scanned() -> Iterator[Row]:
        with TargetStores(target, connections=workers) as st:
            entries.extend(listing(target, st, tenant))
            yield from scan(target, st, entries, max_age, now, deep=deep, workers=workers)

    for row in tally.rows(scanned(), tenant):
        rows.append(row)
        if progress:
            progress(len(rows), len(entries), _label(row))
    return tally.result(target, tenant, max_age, deep, rows)
