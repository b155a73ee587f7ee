"""A TCP proxy on loopback that answers every request late: what the ``slow-store`` fault puts before the S3 server.

A remote object store makes each request wait on the network; the local S3 server answers in microseconds. The
proxy holds each request for a fixed latency before passing it on: the first bytes a client sends after the previous
answer started (a new HTTP request on a kept-alive connection) wait ``--latency-ms``, the rest of that request and
every answer pass at once. Connections are independent, so requests in flight at once wait at once, as they would
on a real network.

Run as ``python -m recsys_stack.latencyproxy --port P --upstream-port U --latency-ms 20``; it serves until stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

HOST = "127.0.0.1"
_CHUNK = 65536


class _Exchange:
    """Whether the next bytes from the client start a new request (the previous answer has begun)."""

    def __init__(self) -> None:
        self.new_request = True


async def _client_to_upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: _Exchange,
                              latency: float) -> None:
    while data := await reader.read(_CHUNK):
        if state.new_request:
            state.new_request = False
            await asyncio.sleep(latency)
        writer.write(data)
        await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()


async def _upstream_to_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: _Exchange) -> None:
    while data := await reader.read(_CHUNK):
        state.new_request = True
        writer.write(data)
        await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()


async def _serve_connection(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, upstream_port: int,
                            latency: float) -> None:
    try:
        up_r, up_w = await asyncio.open_connection(HOST, upstream_port)
    except OSError:
        client_w.close()  # the store behind the proxy is down: so is the proxy, to its clients
        return
    state = _Exchange()
    tasks = [asyncio.ensure_future(_client_to_upstream(client_r, up_w, state, latency)),
             asyncio.ensure_future(_upstream_to_client(up_r, client_w, state))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for task in tasks:
            task.cancel()
        for w in (up_w, client_w):
            w.close()


async def serve(port: int, upstream_port: int, latency_ms: float) -> None:
    """Proxy 127.0.0.1:``port`` to 127.0.0.1:``upstream_port`` until SIGTERM or SIGINT."""
    latency = latency_ms / 1000.0
    server = await asyncio.start_server(
        lambda r, w: _serve_connection(r, w, upstream_port, latency), HOST, port, reuse_address=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys_stack.latencyproxy", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="port to listen on (127.0.0.1)")
    parser.add_argument("--upstream-port", type=int, required=True, help="port of the server behind (127.0.0.1)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="delay added to every request (default 20)")
    args = parser.parse_args(argv)
    if args.latency_ms < 0:
        parser.error("--latency-ms cannot be negative")
    asyncio.run(serve(args.port, args.upstream_port, args.latency_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
