"""moto's server in a process of its own, for the local stack.

In the local stack's process, moto would share one interpreter lock with the local gateway, the
DIG API handler and the connector handler, so that the whole stack ran on one core. Here it has its
own: ``python -m dig_local.moto_process --host 127.0.0.1`` prints ``moto listening on HOST:PORT``
once it serves, and stops when its standard input closes: when the local stack stops, or dies.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any

READY_PREFIX = "moto listening on "
# The handlers' boto3 pools hold up to 16 connections each, and every local poller holds one more in a
# long poll (dig_local.poller): a thread each, idle while it waits.
SERVER_THREADS = 64


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def raw_uploads(app: Any) -> Any:
    """S3 stores the bytes of a PUT whatever its Content-Type; moto's Flask app would parse a form
    content type as a form and store nothing. A PUT's body is handed on as bytes (its stored
    content type becomes application/octet-stream, which DIG never reads)."""

    def middleware(environ: dict[str, Any], start_response: Any) -> Any:
        content_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if environ.get("REQUEST_METHOD") == "PUT" and content_type in FORM_TYPES:
            environ["CONTENT_TYPE"] = "application/octet-stream"
        return app(environ, start_response)

    return middleware


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    # Ctrl-C in a terminal reaches the whole process group; the local stack decides when moto stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from waitress.server import create_server

    from dig_local import moto_speedups

    moto_speedups.apply()
    logging.getLogger("waitress").setLevel(logging.ERROR)
    # moto's own server (werkzeug's) closes the connection after every answer: a new connection and a
    # new thread for each of the thousands of requests a file makes, a third of moto's time. Waitress
    # keeps connections alive.
    server = create_server(
        raw_uploads(DomainDispatcherApplication(create_backend_app)),
        host=args.host,
        port=0,
        threads=SERVER_THREADS,
        ident=None,
    )
    threading.Thread(target=server.run, name="moto", daemon=True).start()
    print(f"{READY_PREFIX}{server.effective_host}:{server.effective_port}", flush=True)
    # Nobody reads the pipe after that line; moto's own prints must not fill it and block a request.
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    try:
        sys.stdin.read()  # returns at end of file: the local stack closed the pipe, or is gone
    finally:
        server.close()


if __name__ == "__main__":
    main()
