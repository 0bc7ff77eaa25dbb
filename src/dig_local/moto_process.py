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

READY_PREFIX = "moto listening on "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    # Ctrl-C in a terminal reaches the whole process group; the local stack decides when moto stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    from moto.server import ThreadedMotoServer

    from dig_local import moto_speedups

    moto_speedups.apply()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per request
    server = ThreadedMotoServer(ip_address=args.host, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"{READY_PREFIX}{host}:{port}", flush=True)
    # Nobody reads the pipe after that line; moto's own prints must not fill it and block a request.
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    try:
        sys.stdin.read()  # returns at end of file: the local stack closed the pipe, or is gone
    finally:
        server.stop()


if __name__ == "__main__":
    main()
