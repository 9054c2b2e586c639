"""`serve --workers N`: one scrape sees every worker.

Each worker answers its own metrics on a Unix socket of the abstract namespace named by
the parent's pid and its index (no file to clean up, none left behind by a kill -9); the
parent's listener (METRICS_HOST:METRICS_PORT) asks every worker when scraped and merges
their answers. A worker that does not answer (restarting) is left out of that scrape.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.metrics_core import Metric

from service.metrics.families import merged

logger = logging.getLogger("evenflow.metrics")

#: Seconds a worker has to answer the parent's scrape.
WORKER_TIMEOUT = 5.0


def worker_socket(parent: int, index: int) -> str:
    """The abstract socket address of a worker's metrics."""
    return f"\0evenflow-metrics-{parent}-{index}"


def fetch(address: str, timeout: float = WORKER_TIMEOUT) -> str:
    """One worker's exposition (HTTP/1.0 over its socket: the answer ends with the
    connection)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: worker\r\n\r\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or head.split(b" ", 2)[1] != b"200":
        raise OSError(f"the worker answered {head[:40]!r}")
    return body.decode()


class Workers:
    """The merged metrics of the workers, for prometheus_client's exposition."""

    def __init__(self, parent: int, count: int) -> None:
        self.addresses = [worker_socket(parent, i) for i in range(count)]

    def collect(self) -> list[Metric]:
        return merged(self._expositions())

    def _expositions(self) -> Iterator[str]:
        for address in self.addresses:
            try:
                yield fetch(address)
            except OSError as exc:
                logger.debug("no metrics from %r: %s", address, exc)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass  # a scrape every few seconds is not worth a line


class _Threaded(ThreadingHTTPServer, WSGIServer):
    daemon_threads = True


def serve_merged(host: str, port: int, parent: int, count: int) -> WSGIServer | None:
    """The parent's metrics listener, in a thread; None (and a warning) if the port is
    taken: metrics are not worth a failed start."""
    app = make_wsgi_app(Workers(parent, count))
    try:
        server = make_server(host, port, app, _Threaded, handler_class=_Quiet)
    except OSError as exc:
        logger.warning("no metrics listener on %s:%d: %s", host, port, exc)
        return None
    threading.Thread(target=server.serve_forever, name="evenflow-metrics", daemon=True).start()
    return server
