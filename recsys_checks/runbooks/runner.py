"""``recsys-checks runbook run``: execute a runbook's notebook with papermill and keep its run record.

Parameters are type-checked against the spec before anything starts. The notebook runs in a private temporary
folder; only when neither the executed notebook nor the run record contains the value of a secret from the
environment are both moved to ``<out>/ID.ipynb`` and ``<out>/ID.result.json`` (fail closed). A cell that fails, a
kernel that dies or a step that runs past the timeout is verdict ``failed`` with the cell named.

While the run is in progress ``<out>/ID.incomplete`` says so (when it started, the runner's pid and the temporary
folder the kernel writes in), so that a runner killed mid-run leaves a pointer to where the record went; it is
removed once the record is in ``<out>``. Each output is moved in whole or not at all (a copy in ``<out>``, fsynced,
renamed): a full disk leaves no cut record, and :class:`~recsys_checks.core.errors.RecordNotWritten` (exit 1) lists
every change the run applied and where its audit record is, and says where the outputs were kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from recsys_checks.core import credentials
from recsys_checks.core.errors import BadInput, OutputRefused, RecordNotWritten
from recsys_checks.core.timefmt import format_z
from recsys_checks.reach.settings import Target
from recsys_checks.runbooks.run import (
    OUT_ENV,
    RECORD_ENV,
    default_out_dir,
    describe_changes,
    run_parameters,
    write_atomic,
)
from recsys_checks.runbooks.spec import RunbookSpec, load_spec, notebooks_dir, runbooks_dir

DEFAULT_TIMEOUT = 600.0  # seconds per cell: a re-run of a publish may take minutes
KERNEL_START_TIMEOUT = 60.0
# A kernel that dies before it is ready (no cell ran) is started again, at most this many times in all.
KERNEL_START_ATTEMPTS = 3
# ``<out>/<id>.incomplete``: a run of <id> into this folder is in progress, or its runner was stopped (see the module)
INCOMPLETE_SUFFIX = ".incomplete"


# jsonschema's optional format checkers: rfc3987-syntax builds an IRI grammar at import (about 2 s), the others cost a
# tenth of a second together (arrow, isoduration, ...). nbformat's notebook schema uses no string format, so none of
# them ever checks anything here; without them jsonschema simply leaves those formats unchecked.
UNUSED_FORMAT_CHECKERS = ("rfc3987_syntax", "isoduration", "fqdn", "uri_template", "webcolors", "jsonpointer",
                          "rfc3339_validator", "rfc3986_validator")


def _skip_unused_format_checkers() -> None:
    # nbformat validates notebooks with jsonschema, which imports every optional format checker it finds installed
    # (UNUSED_FORMAT_CHECKERS) at its own import, every run.
    if "jsonschema" not in sys.modules:
        for name in UNUSED_FORMAT_CHECKERS:
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def _skip_papermill_s3() -> None:
    # papermill imports its S3 reader, and with it boto3 (a tenth of a second), whenever boto3 is installed; a runbook
    # notebook and its output are local files, so the reader is never used. Without it papermill treats S3 as absent.
    if "papermill" not in sys.modules:
        sys.modules.setdefault("papermill.s3", None)  # type: ignore[arg-type]


@cache
def quiet_kernel_manager() -> type:
    """The kernel manager the runner starts its kernel with: jupyter_client's, except that shutting a kernel down
    does not interrupt it first, and that it keeps the clients it makes so that the runner can close them.

    jupyter_client sends SIGINT before every shutdown request, to stop a cell that is still running. The runner
    shuts its kernel down only once the notebook has ended (or a cell failed or ran past the timeout, and nbclient
    has given up on it); a SIGINT then lands in whatever message the kernel is handling, and the kernel logs
    ``ERROR | KeyboardInterrupt caught in kernel.`` on stderr, which reads like a crash nobody caused. Without it
    the kernel answers the shutdown request and exits; one stuck in a cell still gets SIGTERM, then SIGKILL, after
    the manager's shutdown wait."""
    from jupyter_client.manager import AsyncKernelManager

    class QuietShutdownKernelManager(AsyncKernelManager):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.clients_made: list[Any] = []

        def client(self, *args: Any, **kwargs: Any) -> Any:
            made = super().client(*args, **kwargs)
            self.clients_made.append(made)
            return made

        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down:  # set by shutdown_kernel before it interrupts
                return
            await super()._async_interrupt_kernel()

    return QuietShutdownKernelManager


def _start_kernel() -> Any:
    """Launch the run's kernel and return its manager without waiting for it to be ready: the kernel boots (most of
    a second of Python and IPython imports) while the runner imports papermill and parameterises the notebook, and
    papermill then connects to it. The kernel's working folder and environment are the runner's, as papermill would
    start it."""
    from jupyter_core.utils import run_sync

    manager = quiet_kernel_manager()(kernel_name="python3")
    # The kernel listens on loopback only; its notice about unencrypted TCP would be noise. Its input history is
    # kept in memory, as nbclient starts kernels: a run writes no history file in the home folder.
    run_sync(manager.start_kernel)(extra_arguments=["--IPKernelApp.log_level=ERROR",
                                                    "--HistoryManager.hist_file=:memory:"], cwd=os.getcwd())
    return manager


def _stop_kernel(manager: Any, *, finished: bool) -> None:
    """Close the clients papermill made and stop the kernel this run started. A kernel whose notebook ran to its end
    has written its record and has nothing left to do: it is stopped at once (SIGKILL, which cannot log anything).
    Otherwise it is asked to shut down and given the manager's wait before SIGTERM, then SIGKILL, as before."""
    from jupyter_core.utils import run_sync

    for made in manager.clients_made:
        with contextlib.suppress(Exception):
            made.stop_channels()
    try:
        if manager.has_kernel:
            run_sync(manager.shutdown_kernel)(now=finished)
    except RuntimeError as exc:  # nbclient may have shut a kernel that never became ready down already
        if "No kernel is running" not in str(exc):
            raise


def check_parameters(spec: RunbookSpec, given: dict[str, Any], execute: bool) -> dict[str, Any]:
    """The run's parameters, typed (:func:`recsys_checks.runbooks.run.run_parameters`, as the notebook takes them)."""
    return run_parameters(spec, {**given, "execute": True} if execute else dict(given), Target.from_env())


def run_runbook(runbook_id: str, given: dict[str, Any] | None = None, *, execute: bool = False,
                out_dir: str | Path | None = None, timeout: float = DEFAULT_TIMEOUT,
                directory: Path | None = None) -> tuple[dict[str, Any], Path]:
    """Run one runbook; returns (run record, output folder). Raises BadInput before starting on bad input."""
    spec = load_spec(runbook_id, directory or runbooks_dir())
    params = check_parameters(spec, dict(given or {}), execute)
    notebook = notebooks_dir(directory) / f"{spec.id}.ipynb"
    if not notebook.is_file():
        raise BadInput(f"runbook {spec.id} has no notebook at {notebook}: run `make notebooks`")
    out = Path(out_dir) if out_dir else default_out_dir(spec.id)
    marker = out / f"{spec.id}{INCOMPLETE_SUFFIX}"
    created = _claim_out(spec, out, marker)
    started = datetime.now(UTC)
    work = Path(tempfile.mkdtemp(prefix=f"recsys-runbook-{spec.id}-"))
    executed, record_path = work / f"{spec.id}.ipynb", work / f"{spec.id}.result.json"
    _mark_started(spec, out, marker, created, started, work, record_path)
    with _run_environment(record_path, out):
        failure = _execute(notebook, executed, record_path, params, timeout)
    run_record, data, kernel_unwritten = _record_of(spec, record_path, params, started, failure)
    _refuse_secrets(data, executed, work, marker, out)
    return _keep(out, executed, record_path, run_record, data, kernel_unwritten, work, marker), out


def _claim_out(spec: RunbookSpec, out: Path, marker: Path) -> bool:
    """Make sure ``out`` holds no run of this runbook, finished or not, and exists; True when it was created."""
    try:
        if (out / f"{spec.id}.result.json").exists():
            raise BadInput(f"{out} already holds a run of {spec.id}: give another --out folder")
        if marker.exists():
            raise BadInput(f"{out} holds a run of {spec.id} that did not finish (see {marker}: where its record "
                           "went): give another --out folder")
        created = not out.is_dir()
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create the output folder {out}: {exc.strerror or exc}") from None
    return created


def _mark_started(spec: RunbookSpec, out: Path, marker: Path, created: bool, started: datetime, work: Path,
                  record_path: Path) -> None:
    """Write the ``.incomplete`` marker naming the work folder; BadInput (nothing run, nothing left) when it cannot."""
    try:
        write_atomic(marker, (json.dumps({
            "runbook": spec.id, "started_at": format_z(started), "pid": os.getpid(), "work": str(work),
            "record": str(record_path),
            "note": "this run has not finished, or its runner was stopped: the kernel writes the run record in the "
                    "work folder, and the record is moved here when the run ends",
        }, indent=2) + "\n").encode("utf-8"))
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        if created:
            _remove(out, folder=True)
        raise BadInput(f"cannot write in the output folder {out}: {exc.strerror or exc}; nothing was run") from None


@contextlib.contextmanager
def _run_environment(record_path: Path, out: Path) -> Iterator[None]:
    """The variables telling the kernel where its run record and outputs go, set for the run and restored after."""
    previous = {name: os.environ.get(name) for name in (RECORD_ENV, OUT_ENV)}
    os.environ[RECORD_ENV] = str(record_path)
    os.environ[OUT_ENV] = str(out.resolve())
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _execute(notebook: Path, executed: Path, record_path: Path, params: dict[str, Any],
             timeout: float) -> dict[str, Any] | None:
    """Execute the notebook into ``executed``; None when every cell ran, else ``{"cell", "error"}``: the cell it
    stopped in (None when none ran) and why."""
    # Imported once the input is known good: a refused parameter or --out answers at once, not after papermill.
    _skip_unused_format_checkers()
    _skip_papermill_s3()
    try:
        manager = _start_kernel()
    except (RuntimeError, OSError) as exc:
        return {"cell": None, "error": f"the notebook could not be run: {type(exc).__name__}: {exc}"}
    try:
        import papermill  # noqa: F401 - while the kernel boots
    except BaseException:
        _stop_kernel(manager, finished=False)
        raise
    return _execute_in(manager, notebook, executed, record_path, params, timeout)


def _execute_in(manager: Any, notebook: Path, executed: Path, record_path: Path, params: dict[str, Any],
                timeout: float) -> dict[str, Any] | None:
    """:func:`_execute` with its first kernel started; a kernel that dies before it is ready is started again."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    try:
        for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
            manager = manager or _start_kernel()
            finished = False
            try:
                pm.execute_notebook(
                    str(notebook), str(executed), parameters=params, kernel_name="python3", progress_bar=False,
                    request_save_on_cell_execute=True, start_timeout=KERNEL_START_TIMEOUT, execution_timeout=timeout,
                    cwd=os.getcwd(), km=manager,
                )
                finished = True
                return None
            except RuntimeError as exc:
                # A kernel that died before it was ready ran no cell (kernels started at the same moment can race
                # for their ports): starting it again is safe; anything later is not retried.
                if "before replying to kernel_info" not in str(exc) or attempt == KERNEL_START_ATTEMPTS \
                        or record_path.exists() or _stopped_cell(executed) is not None:
                    raise
            finally:
                _stop_kernel(manager, finished=finished)
                manager = None
    except PapermillExecutionError as exc:
        return {"cell": _stopped_cell(executed), "error": f"{exc.ename}: {exc.evalue}"}
    except CellTimeoutError:
        return {"cell": _stopped_cell(executed), "error": f"a cell ran longer than the {timeout:.0f} s timeout"}
    except DeadKernelError as exc:
        return {"cell": _stopped_cell(executed), "error": f"the kernel died ({exc})"}
    except (RuntimeError, OSError) as exc:
        return {"cell": None, "error": f"the notebook could not be run: {type(exc).__name__}: {exc}"}
    return None


def _record_of(spec: RunbookSpec, record_path: Path, params: dict[str, Any], started: datetime,
               failure: dict[str, Any] | None) -> tuple[dict[str, Any], bytes, str | None]:
    """(run record, its bytes to write, the kernel's RecordNotWritten message if it could not write it): the
    kernel's record as written when the run ended, else a failed record made from what it left."""
    run_record = _load_run_record(record_path)
    # The kernel could not write its record (a full disk): its message lists every change the run applied.
    kernel_unwritten: str | None = None
    if failure is not None and failure["error"].startswith(f"{RecordNotWritten.__name__}: "):
        kernel_unwritten = failure["error"].removeprefix(f"{RecordNotWritten.__name__}: ")
    if run_record is None or failure is not None:
        run_record = _failed_run_record(spec, run_record, params, started, failure)
        return run_record, (json.dumps(run_record, indent=2) + "\n").encode("utf-8"), kernel_unwritten
    return run_record, record_path.read_bytes(), kernel_unwritten


def _refuse_secrets(data: bytes, executed: Path, work: Path, marker: Path, out: Path) -> None:
    """OutputRefused, with nothing written and the work folder removed, when the record or the notebook carries the
    value of a credential."""
    leaked = set(credentials.find(data.decode("utf-8", errors="replace")))
    if executed.exists():
        leaked |= set(credentials.find(executed.read_text(encoding="utf-8", errors="replace")))
    if leaked:
        shutil.rmtree(work, ignore_errors=True)
        _remove(marker)
        raise OutputRefused(f"the run's outputs contain the value of {', '.join(sorted(leaked))}: nothing was written "
                            f"to {out}; the run's own changes (if any) are in the audit records")


def _keep(out: Path, executed: Path, record_path: Path, run_record: dict[str, Any], data: bytes,
          kernel_unwritten: str | None, work: Path, marker: Path) -> dict[str, Any]:
    """Write the record and move the notebook into ``out``, then remove the marker and the work folder;
    RecordNotWritten when the record could not be written, here or by the kernel."""
    final = out / record_path.name
    try:
        write_atomic(final, data)
        if executed.exists():
            move_whole(executed, out / executed.name)
    except OSError as exc:
        raise RecordNotWritten(_not_written(out, exc, run_record, kernel_unwritten, work, record_path, data,
                                            marker)) from None
    _remove(marker)
    shutil.rmtree(work, ignore_errors=True)
    if kernel_unwritten:
        raise RecordNotWritten(f"{kernel_unwritten}\nThe runner then wrote {final} (the temporary folder is "
                               "removed): it records the run as failed at that step; its `changed` is what the last "
                               "complete record knew, the list above is every change")
    return run_record


def _not_written(out: Path, exc: OSError, run_record: dict[str, Any], kernel_unwritten: str | None, work: Path,
                 record_path: Path, data: bytes, marker: Path) -> str:
    """What to tell the operator when the outputs could not be put into ``out``: what changed, where things are."""
    if not record_path.exists():
        try:  # keep the record beside the notebook, if the work folder has room for it
            write_atomic(record_path, data)
        except OSError:
            pass
    kept = [str(p) for p in (record_path, work / f"{run_record['runbook']}.ipynb") if p.exists()]
    where = f"kept in {', '.join(kept)}" if kept else "not kept anywhere"
    if marker.exists():
        where += f" ({marker} points there)"
    changes = kernel_unwritten or describe_changes(run_record.get("changed") or [])
    return (f"the run's outputs could not be written to {out} ({exc.strerror or exc}); no partial file was left "
            f"there; the run's verdict was {run_record.get('verdict')} and its outputs are {where}.\n{changes}")


def move_whole(source: Path, dest: Path) -> None:
    """Move ``source`` to ``dest`` whole or not at all (a copy in ``dest``'s folder, fsynced, renamed; then the
    source removed): ``dest`` never holds part of a file, whatever the file systems."""
    write_atomic(dest, source.read_bytes())
    source.unlink()


def _remove(path: Path, *, folder: bool = False) -> None:
    try:
        path.rmdir() if folder else path.unlink()
    except OSError:
        pass


def _load_run_record(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _failed_run_record(spec: RunbookSpec, partial: dict[str, Any] | None, params: dict[str, Any], started: datetime,
                   failure: dict[str, Any] | None) -> dict[str, Any]:
    run_record = dict(partial or {})
    failure = failure or {"cell": None, "error": "the notebook ended without writing its run record"}
    where = f" at {failure['cell']}" if failure.get("cell") else ""
    run_record.update({
        "format": run_record.get("format", 1), "runbook": spec.id, "title": spec.title,
        "started_at": run_record.get("started_at", format_z(started)), "ended_at": format_z(datetime.now(UTC)),
        "parameters": run_record.get("parameters", params), "execute": bool(params.get("execute")),
        "verdict": "failed", "next_action": f"the runbook could not run{where}: {failure['error']}",
        "failure": failure,
    })
    run_record.setdefault("steps", [])
    run_record.setdefault("detected", [])
    run_record.setdefault("changed", [])
    return run_record


def _cells(path: Path) -> list[dict[str, Any]]:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("cells") or []
    except (OSError, ValueError):
        return []


def _name(cell: dict[str, Any]) -> str:
    tags = (cell.get("metadata") or {}).get("tags") or []
    return next((t for t in tags if t.startswith("step:")), tags[0] if tags else "an untagged cell")


def _stopped_cell(path: Path) -> str | None:
    """The cell execution stopped at: the one papermill marked with an exception, else the last one started."""
    cells = [c for c in _cells(path) if c.get("cell_type") == "code"]
    marks = [(c, (c.get("metadata") or {}).get("papermill") or {}) for c in cells]
    failed = [c for c, m in marks if m.get("exception")]
    if failed:
        return _name(failed[0])
    started = [c for c, m in marks if m.get("start_time")]
    return _name(started[-1]) if started else None
