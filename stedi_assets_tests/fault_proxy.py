"""A small HTTP proxy in front of an S3 server that injects faults, for the reliability tests.

Modes: "pass" forwards everything; "flaky" answers every `every`-th request with 503 SlowDown (a
transient fault clients must retry); "down" closes every connection at once (the server is gone).
`cut_at(fragment)` switches to "down" at the first request whose path holds `fragment` (e.g. the first
upload of a staged Iceberg data file), so a test can cut a writer at a known point of its work.
The Host header is forwarded untouched, so signed requests stay valid for the server behind.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        target = urlparse(upstream)
        self.upstream = (target.hostname, target.port)
        self.mode, self.every, self.requests, self.faults = "pass", 4, 0, 0
        self.cut_fragment: str | None = None
        self.cut = threading.Event()  # set when a cut_at() fragment was seen
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _handle(self):
                with proxy.lock:
                    proxy.requests += 1
                    if proxy.cut_fragment and proxy.cut_fragment in self.path:
                        proxy.mode, proxy.cut_fragment = "down", None
                        proxy.cut.set()
                    mode, count = proxy.mode, proxy.requests
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if mode == "down":
                    self.close_connection = True
                    self.connection.close()
                    return
                if mode == "flaky" and count % proxy.every == 0:
                    with proxy.lock:
                        proxy.faults += 1
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(SLOW_DOWN)))
                    self.end_headers()
                    self.wfile.write(SLOW_DOWN)
                    return
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                # The proxy already holds the whole body (it answered any "Expect: 100-continue" itself).
                headers = {k: v for k, v in self.headers.items() if k.lower() != "expect"}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status, answer.reason)
                # A HEAD answer has no body but the object's length, which clients rely on (pyarrow reads
                # exactly that many bytes): forward it as the server gave it.
                keep_length = self.command == "HEAD"
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection") and (
                        keep_length or name.lower() != "content-length"
                    ):
                        self.send_header(name, value)
                if not keep_length:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def cut_at(self, fragment: str) -> None:
        """Go down at the first request whose path contains `fragment` (that request fails too)."""
        with self.lock:
            self.cut_fragment = fragment

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
