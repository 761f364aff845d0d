"""A fault-injecting HTTP proxy on 127.0.0.1, for reliability tests of HTTP LLM backends.

:class:`FaultProxy` forwards every request to an upstream OpenAI-compatible
server (e.g. the local llama.cpp server of :mod:`prompt_env.llm.server`)
and, with probability ``fault_rate`` per request, injects one fault instead,
drawn from ``kinds`` by a seeded generator (so a run's fault schedule is
reproducible):

``drop``        close the connection without answering
``delay``       wait ``delay_s`` (longer than the client's timeout), then close; after
                ``max_delays`` of them, further delays become drops
``429``         HTTP 429 with ``Retry-After: 0``
``500``/``503`` HTTP 500 / 503 with a JSON error body
``malformed``   HTTP 200 whose body is not JSON
``truncated``   HTTP 200 with the upstream's JSON cut in half (Content-Length matches the cut body)
``short-read``  HTTP 200 announcing the full Content-Length, then closing after half of it
``wrong-shape`` HTTP 200 with valid JSON that lacks the fields asked for

``fault_rate`` may be changed while the proxy runs. ``counts`` records what
was injected, ``requests`` how many requests arrived; ``authorizations``
records the ``Authorization`` headers seen (to prove a key was sent without
storing it anywhere else). Stdlib only; one thread per connection.

    from prompt_env.llm import load_llm
    from prompt_env.testing import FaultProxy

    with FaultProxy(server.base_url, fault_rate=0.3, seed=0) as proxy:
        llm = load_llm({"backend": "openai", "base_url": proxy.base_url, "model": server.model})
        ...
    print(proxy.counts)
"""

from __future__ import annotations

import collections
import http.client
import http.server
import json
import random
import socket
import sys
import threading
import time
import urllib.parse
from typing import Any

FAULT_KINDS = ("drop", "delay", "429", "500", "503", "malformed", "truncated", "short-read", "wrong-shape")
"""Every fault the proxy can inject (the default ``kinds``)."""


class FaultProxy(http.server.ThreadingHTTPServer):
    """An HTTP proxy in front of ``upstream`` that injects seeded faults; a context manager.

    Args:
        upstream: base URL of the real server (``http://host:port``).
        fault_rate: probability that a request gets a fault instead of the upstream's answer.
        seed: seed of the fault schedule.
        kinds: the faults to draw from (a subset of :data:`FAULT_KINDS`).
        delay_s: how long a ``delay`` fault waits before closing the connection.
        port: port to listen on (0: any free port; see :attr:`base_url`).
        upstream_timeout_s: timeout of each forwarded request.
        max_delays: after this many ``delay`` faults, further ones become ``drop``
            (each delay costs the client a whole timeout); None: no limit.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        upstream: str,
        *,
        fault_rate: float = 0.0,
        seed: int = 0,
        kinds: tuple[str, ...] = FAULT_KINDS,
        delay_s: float = 3.0,
        port: int = 0,
        upstream_timeout_s: float = 120.0,
        max_delays: int | None = None,
    ) -> None:
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_netloc = parsed.netloc
        self.fault_rate = fault_rate
        self.kinds = tuple(kinds)
        self.delay_s = delay_s
        self.max_delays = max_delays
        self.upstream_timeout_s = upstream_timeout_s
        self.counts: collections.Counter[str] = collections.Counter()
        self.requests = 0
        self.authorizations: list[str] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _ProxyHandler)
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- life cycle
    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        return int(self.server_address[1])

    @property
    def base_url(self) -> str:
        """The URL clients use instead of the upstream's."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        """Serve in a daemon thread; returns the proxy."""
        self._thread = threading.Thread(target=self.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.shutdown()
        self.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Report handler errors, except a client closing its end (it gave up: expected here)."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    @property
    def faults_injected(self) -> int:
        """How many faults were injected so far, all kinds together."""
        return sum(self.counts.values())

    # ----------------------------------------------------------------- schedule
    def next_fault(self) -> str | None:
        """The fault for the next request (None: forward it), from the seeded schedule."""
        with self._lock:
            self.requests += 1
            if self._rng.random() >= self.fault_rate:
                return None
            kind = self._rng.choice(self.kinds)
            if kind == "delay" and self.max_delays is not None and self.counts["delay"] >= self.max_delays:
                kind = "drop"  # each delay costs a whole client timeout: keep runs short
            self.counts[kind] += 1
            return kind

    def forward(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """Send one request to the upstream; (status, body) of its answer."""
        conn = http.client.HTTPConnection(self.upstream_netloc, timeout=self.upstream_timeout_s)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    """Answers one request: a fault from the schedule, or the upstream's answer."""

    server: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        auth = self.headers.get("Authorization")
        if auth:
            with self.server._lock:
                self.server.authorizations.append(auth)
        fault = self.server.next_fault()
        if fault in ("drop", "delay"):
            if fault == "delay":
                time.sleep(self.server.delay_s)
            self._abort()
            return
        if fault in ("429", "500", "503"):
            extra = {"Retry-After": "0"} if fault == "429" else {}
            self._send(int(fault), json.dumps({"error": {"message": f"injected {fault}"}}).encode(), extra)
            return
        if fault == "malformed":
            self._send(200, b"<html>definitely not JSON</html>")
            return
        if fault == "wrong-shape":
            self._send(200, json.dumps({"choices": [], "tokens": "nope", "note": "injected"}).encode())
            return
        headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
        if auth:
            headers["Authorization"] = auth
        try:
            status, payload = self.server.forward(method, self.path, body, headers)
        except OSError as error:
            self._send(502, json.dumps({"error": {"message": f"upstream failed: {error}"}}).encode())
            return
        if fault == "truncated" and status == 200:
            self._send(200, payload[: max(1, len(payload) // 2)])
            return
        if fault == "short-read" and status == 200:
            self._send(200, payload[: max(1, len(payload) // 2)], length=len(payload))
            self._abort()
            return
        self._send(status, payload)

    def _send(self, status: int, payload: bytes, extra: dict[str, str] | None = None,
              length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload) if length is None else length))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def _abort(self) -> None:
        """Close the TCP connection at once (RST where the OS allows), answering nothing more."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
