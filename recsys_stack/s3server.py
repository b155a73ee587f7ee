"""The local stack's S3 API server: moto's S3 backend, served on loopback with HTTP/1.1 keep-alive.

``python -m moto.server`` serves every AWS service through werkzeug's development server, which closes the
connection after each answer and logs every request: each GET then costs a new TCP connection (and, behind the
``slow-store`` proxy, a new upstream connection too) plus a log line. A real S3 endpoint keeps connections open, so
this server does what clients of a real store see: the same moto S3 backend (conditional writes, ETags, listings),
served by waitress, connections kept alive, no per-request log.

Run as ``python -m recsys_stack.s3server --port P``; it serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import sys

HOST = "127.0.0.1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys_stack.s3server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="port to listen on (127.0.0.1)")
    parser.add_argument("--threads", type=int, default=8, help="requests handled at once (default 8)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error("--port must be between 1 and 65535")
    if args.threads < 1:
        parser.error("--threads must be at least 1")

    import waitress
    from moto.moto_server.werkzeug_app import create_backend_app

    # Warnings (a full task queue, a client gone mid-answer) go to the log; nothing is logged per request.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_backend_app("s3")
    # SIGTERM ends the process (nothing is kept outside memory); SIGINT ends waitress's loop.
    waitress.serve(app, host=HOST, port=args.port, threads=args.threads, ident="recsys-stack-s3", _quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
