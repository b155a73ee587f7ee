"""The optional outbound message: ``RECSYS_ALERTS_NOTIFY_URL`` gets Slack's incoming-webhook shape, ``{"text": ...}``.

One message per finished incident, sent by its own task from its own bounded queue: a webhook that hangs or answers
500 is retried a few times with a deadline per attempt, then given up with the outcome recorded in the incident;
it never holds the runbook queue. When the notify queue itself is full, the message is dropped and counted.

Every text the message carries comes from alerts and records (labels, reasons quoting them): it is masked, then
``&``, ``<`` and ``>`` are escaped as Slack asks, so that no ``<!channel>``, ``<!here>`` or ``<https://…|text>`` from
a label reaches the channel as a control sequence. The webhook's answer is read no further than
:data:`MAX_ANSWER` bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx

from .checks import mask

if TYPE_CHECKING:
    from .incident import Incident

ATTEMPTS = 3
ATTEMPT_TIMEOUT = 5.0
BACKOFF = (1.0, 2.0)
QUEUE_SIZE = 200
MAX_ANSWER = 4096  # of the webhook's answer: its status is what counts


def slack_escape(text: str) -> str:
    """``text`` with Slack's three control characters escaped (``&`` first): shown as written, never a mention or a
    link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message(incident: Incident, link: str) -> str:
    """A few lines: per surface run the verdict, cause and plan; then the link."""
    lines = [f"*{incident.alert}*: {incident.status}"]
    for row in incident.rows[:10]:
        where = f" {row.tenant}/{row.surface}" if row.tenant else ""
        if row.verdict:
            text = f"• {row.runbook}{where}: {row.verdict}"
            text += f", cause {row.cause}" if row.cause else ""
            text += f", plan {row.plan_id} (dry run; apply with --execute --plan-id {row.plan_id})" \
                if row.plan_id else ""
        else:
            text = f"• {row.runbook or 'no runbook'}{where}: {row.status}"
            text += f" ({row.reason})" if row.reason else ""
        lines.append(text[:400])
    if len(incident.rows) > 10:
        lines.append(f"• … {len(incident.rows) - 10} more")
    lines.append(link)
    return slack_escape(mask("\n".join(lines)))


class Notifier:
    """Sends on its own task; ``offer`` never waits."""

    def __init__(self, url: str, on_done: Callable[[str, dict[str, Any]], Awaitable[None]],
                 *, attempt_timeout: float = ATTEMPT_TIMEOUT, backoff: tuple[float, ...] = BACKOFF) -> None:
        self.url = url
        self.on_done = on_done
        self.attempt_timeout = attempt_timeout
        self.backoff = backoff
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(QUEUE_SIZE)
        self.counts = {"sent": 0, "failed": 0, "dropped": 0}
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notifier")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    def offer(self, incident_id: str, text: str) -> bool:
        try:
            self.queue.put_nowait((incident_id, text))
            return True
        except asyncio.QueueFull:
            self.counts["dropped"] += 1
            return False

    async def _run(self) -> None:
        timeout = httpx.Timeout(self.attempt_timeout)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            while True:
                incident_id, text = await self.queue.get()
                outcome = await self.send(client, text)
                self.counts["sent" if outcome["status"] == "sent" else "failed"] += 1
                try:
                    await self.on_done(incident_id, outcome)
                except Exception:  # recording the outcome must not stop the sender
                    pass

    async def _post(self, client: httpx.AsyncClient, text: str) -> int:
        """POST the message; the answer's status, having read at most MAX_ANSWER bytes of its body."""
        async with client.stream("POST", self.url, json={"text": text}) as response:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= MAX_ANSWER:
                    break
            return response.status_code

    async def send(self, client: httpx.AsyncClient, text: str) -> dict[str, Any]:
        error = ""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                # The client's timeout bounds each phase; this bounds the whole attempt (a peer trickling bytes).
                status = await asyncio.wait_for(self._post(client, text), self.attempt_timeout * 2)
                if 200 <= status < 300:
                    return {"status": "sent", "attempts": attempt, "error": None}
                error = f"the webhook answered {status}"
            except (TimeoutError, httpx.TimeoutException):
                error = f"the webhook did not answer within {self.attempt_timeout:g} s"
            except httpx.HTTPError as exc:
                error = f"cannot reach the webhook: {type(exc).__name__}"
            if attempt < ATTEMPTS:
                await asyncio.sleep(self.backoff[min(attempt - 1, len(self.backoff) - 1)])
        return {"status": "failed", "attempts": ATTEMPTS, "error": mask(error, extra=(self.url,))}
