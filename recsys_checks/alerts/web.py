"""The receiver's HTTP answers (Starlette): the webhook, the incident pages and files, its health and metrics.

Each route is one method of :class:`Web`, which reads the :class:`~recsys_checks.alerts.server.Receiver` and
changes nothing but through it. Every answer is masked with the project's secret rule, as every file is: a label
or a record that carried a credential shows ``***`` here too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from .checks import BadPayload, mask, mask_doc
from .incident import Incident
from .payload import parse
from .render import CSP, incident_page, incidents_page
from .store import ID_PATTERN, encode, public_row

if TYPE_CHECKING:
    from .server import Receiver

BODY_TIMEOUT = 10.0
SAVE_TIMEOUT = 15.0
MAX_RECORD = 64 * 1024 * 1024
# The notebook is shown in a sandboxed frame: no scripts, nothing fetched from elsewhere.
NOTEBOOK_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def build_app(receiver: Receiver) -> Starlette:
    web = Web(receiver)
    return Starlette(routes=[
        Route("/alertmanager", web.alertmanager, methods=["POST"]),
        Route("/incidents", web.incidents, methods=["GET"]),
        Route("/incidents/{id}", web.incident, methods=["GET"]),
        Route("/incidents/{id}/runs/{n}/notebook", web.notebook, methods=["GET"]),
        Route("/incidents/{id}/runs/{n}/record", web.record, methods=["GET"]),
        Route("/healthz", web.healthz, methods=["GET"]),
        Route("/metrics", web.metrics, methods=["GET"]),
    ], lifespan=web.lifespan)


def json_response(doc: Any, status_code: int = 200) -> Response:
    """A JSON answer: masked before it is encoded and after (:func:`~recsys_checks.alerts.store.encode`)."""
    return Response(encode(doc), status_code=status_code, media_type="application/json")


def html_response(page: str) -> Response:
    """An HTML page, rendered from masked values (the caller's part), masked again once rendered."""
    return Response(mask(page), media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": CSP})


def masked(incident: Incident) -> Incident:
    """A copy of the incident with every credential masked, for a page to render (so none is escaped unmasked)."""
    return Incident.from_dict(mask_doc(incident.to_dict()))


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "") or request.query_params.get("format") == "json"


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request's body, None when it is larger than ``limit`` bytes (read no further than that)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class Web:
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def text(self, status: int, line: str) -> PlainTextResponse:
        """A one-line answer to the webhook, counted by its status."""
        self.receiver.metrics.requests.labels(str(status)).inc()
        return PlainTextResponse(line + "\n", status_code=status)

    # ------------------------------------------------------------------------------------------------ webhook

    async def alertmanager(self, request: Request) -> Response:
        receiver = self.receiver
        if not receiver.authorized(request.headers.get("authorization", "")):
            return self.text(401, "unauthorized: send Authorization: Bearer <RECSYS_ALERTS_TOKEN>")
        body_or_answer = await self._body(request)
        if isinstance(body_or_answer, Response):
            return body_or_answer
        try:
            _, alerts = parse(body_or_answer)
        except BadPayload as exc:
            return self.text(400, f"bad payload: {exc}")
        if receiver.stopping or receiver.queue is None:
            return self.text(503, "the receiver is stopping")
        task = asyncio.ensure_future(receiver.accept(alerts))
        receiver.accepting.add(task)
        task.add_done_callback(receiver.accepting.discard)
        done, _ = await asyncio.wait({task}, timeout=SAVE_TIMEOUT)
        if not done:
            # The writes go on (they are not cancelled): each incident is kept, and run, once it is on disk, and a
            # redelivery meanwhile is recognised as the same alert.
            return self.text(503, f"the incident folder (--out) did not take the incidents within {SAVE_TIMEOUT:g} "
                                  "s; they are still being written and each runs once it is on disk")
        answer = task.result()
        if answer["failed"]:
            return self.text(503, f"{answer['failed']} of {answer['received']} alert(s) could not be written to "
                                  f"--out ({mask(answer['write_error'])}): not accepted, send them again")
        if answer.get("write_error"):
            return self.text(503, f"an update could not be written to --out ({mask(answer['write_error'])}): "
                                  "send it again")
        receiver.metrics.requests.labels("200").inc()
        return json_response({k: v for k, v in answer.items() if k not in ("failed", "write_error")})

    async def _body(self, request: Request) -> bytes | Response:
        """The webhook's body, or the answer refusing it (too large: 413, too slow: 408)."""
        limit = self.receiver.settings.max_body
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return self.text(413, f"the body is larger than {limit} bytes (--max-body)")
        try:
            body = await asyncio.wait_for(read_body(request, limit), BODY_TIMEOUT)
        except TimeoutError:
            return self.text(408, f"the body did not arrive within {BODY_TIMEOUT:g} s")
        if body is None:
            return self.text(413, f"the body is larger than {limit} bytes (--max-body)")
        return body

    # ------------------------------------------------------------------------------------------------ reading

    async def incidents(self, request: Request) -> Response:
        receiver = self.receiver
        try:
            limit = min(max(int(request.query_params.get("limit", "1000")), 1), 100_000)
        except ValueError:
            return PlainTextResponse("limit: expected a whole number\n", status_code=400)
        rows = receiver.rows(limit, request.query_params.get("status") or None)
        if wants_json(request):
            return json_response(rows)
        queue = f"queue {receiver.queue.qsize() if receiver.queue else 0}/{receiver.settings.queue_size}"
        return html_response(incidents_page(mask_doc(rows), total=len(receiver.store.incidents), queue=queue))

    def find(self, request: Request) -> Incident | None:
        iid = request.path_params["id"]
        return self.receiver.store.incidents.get(iid) if ID_PATTERN.match(iid) else None

    async def incident(self, request: Request) -> Response:
        found = self.find(request)
        if found is None:
            return PlainTextResponse("no such incident\n", status_code=404)
        if wants_json(request):
            return json_response({**found.to_dict(), "rows": [public_row(found, r) | {k: getattr(r, k) for k in (
                "dry_run_command", "fix", "folder", "record", "notebook", "notebook_html")} for r in found.rows]})
        # In a thread: the page may draw the triage's picture (render.picture_parts), which must not hold the loop.
        return html_response(await asyncio.to_thread(incident_page, masked(found)))

    def run_file(self, request: Request, key: str) -> Path | None:
        """The file ``key`` of run ``n`` of the incident, when it is a file inside ``--out``."""
        found = self.find(request)
        try:
            n = int(request.path_params["n"])
        except ValueError:
            return None
        row = next((r for r in (found.rows if found else []) if r.run == n), None)
        relative = getattr(row, key) if row else None
        if not relative:
            return None
        root = self.receiver.store.root.resolve()
        path = (self.receiver.store.root / relative).resolve()
        return path if path.is_file() and root in path.parents else None

    async def notebook(self, request: Request) -> Response:
        path = self.run_file(request, "notebook_html")
        if path is None:
            return PlainTextResponse("no notebook for this run\n", status_code=404)
        return FileResponse(path, media_type="text/html", headers={"Content-Security-Policy": NOTEBOOK_CSP})

    async def record(self, request: Request) -> Response:
        path = self.run_file(request, "record")
        if path is None or path.stat().st_size > MAX_RECORD:
            return PlainTextResponse("no run record for this run\n", status_code=404)
        # The runner's record, masked as text: the rule finds a credential as JSON escapes it too.
        return Response(mask(path.read_text("utf-8", "replace")), media_type="application/json")

    # ------------------------------------------------------------------------------------------------ itself

    async def healthz(self, request: Request) -> Response:
        receiver = self.receiver
        return json_response({
            "status": "stopping" if receiver.stopping else "ok",
            "queue_depth": receiver.queue.qsize() if receiver.queue else 0,
            "queue_size": receiver.settings.queue_size, "workers": receiver.settings.workers,
            "runs_in_progress": receiver.runs_in_progress, "incidents": len(receiver.store.incidents),
            "write_errors": receiver.store.write_errors,
        }, status_code=503 if receiver.stopping else 200)

    async def metrics(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(self.receiver.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        await self.receiver.start()
        try:
            yield
        finally:
            await self.receiver.stop()
