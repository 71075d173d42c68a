"""A small HTTP proxy in front of an S3 server that injects faults, for the reliability tests.

Modes: "pass" forwards everything; "flaky" answers every `every`-th request with 503 SlowDown (a
transient fault clients must retry); "down" closes every connection at once (the server is gone).
The Host header is forwarded untouched, so signed requests stay valid for the server behind.
"""
from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
             b"<Message>Please reduce your request rate.</Message></Error>")


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        target = urlparse(upstream)
        self.upstream = (target.hostname, target.port)
        self.mode, self.every, self.requests, self.faults = "pass", 4, 0, 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _handle(self):
                with proxy.lock:
                    proxy.requests += 1
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
                conn.request(self.command, self.path, body=body or None, headers=dict(self.headers.items()))
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status, answer.reason)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
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

    def __enter__(self) -> "FaultProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
