"""The HTTP side of the OpenAI-compatible backend: JSON POSTs with retries and typed errors.

:class:`RetryingJSONClient` keeps one keep-alive connection per thread (and per
process, so a forked worker opens its own), retries connection errors,
timeouts, HTTP 408/409/425/429 and 5xx, and malformed answers with exponential
backoff and seeded jitter (honouring ``Retry-After``), and turns everything
else into :class:`~prompt_env.errors.LLMError` subclasses that name the server
URL and what failed. The API key is read from the environment per request and
scrubbed from every message.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from prompt_env.errors import LLMError, LLMSpecError, PromptTooLongError
from prompt_env.llm.base import LLMStats

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


PROBE_CONFIRMATIONS = 3
"""Answers without the probed fields that prove a server lacks a feature."""


class _Retryable(Exception):
    """A failure worth another try (network, timeout, 429/5xx, malformed answer)."""


class _HTTPStatusError(Exception):
    """A non-retryable HTTP error answer (4xx other than 408/409/425/429)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class ServerRequestError(LLMError):
    """The server answered, but not usefully: a 4xx rejection (``status``) or, while
    probing, an answer without the fields asked for (``status`` None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RetryingJSONClient:
    """Mixin: POST JSON to an OpenAI-compatible server, with retries, backoff and typed errors.

    The host class calls :meth:`_init_http` from its ``__init__`` and provides ``model``
    (named in "model not found" errors) and ``stats`` (``batches`` counts answered requests).
    """

    model: str
    stats: LLMStats

    def _init_http(
        self,
        base_url: str,
        *,
        api_key_env: str,
        timeout_s: float,
        max_retries: int,
        backoff_s: float,
        max_backoff_s: float,
        deadline_s: float,
        jitter_seed: int,
    ) -> None:
        """Set the connection and retry settings (see ``OpenAICompatLLM`` for their meaning)."""
        self.base_url = _normalize_base_url(base_url)
        parsed = urllib.parse.urlsplit(self.base_url)
        self._scheme, self._netloc, self._root_path = parsed.scheme, parsed.netloc, parsed.path
        self.api_key_env = api_key_env
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.deadline_s = float(deadline_s)
        self._jitter = random.Random(jitter_seed)
        self._lock = threading.Lock()
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's keep-alive connection (a new one after a fork)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            https = self._scheme == "https"
            cls = http.client.HTTPSConnection if https else http.client.HTTPConnection
            conn = cls(self._netloc, timeout=self.timeout_s)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _drop_connection(self) -> None:
        """Close this thread's connection; the next request opens a fresh one."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None
        self._local.used = 0

    def _headers(self) -> dict[str, str]:
        """Request headers, with the API key read from the environment now."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _scrub(self, text: str) -> str:
        """``text`` with the API key replaced by ``***``."""
        key = os.environ.get(self.api_key_env, "") if self.api_key_env else ""
        if key:
            text = text.replace(key, "***")
        return text

    def _once(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One POST; returns the JSON object or raises _Retryable / _HTTPStatusError."""
        payload = json.dumps(body).encode()
        for fresh_retry in (True, False):
            conn = self._connection()
            reused = getattr(self._local, "used", 0) > 0
            try:
                conn.request("POST", self._root_path + path, body=payload, headers=self._headers())
                response = conn.getresponse()
                raw = response.read()
                self._local.used = getattr(self._local, "used", 0) + 1
                break
            except (OSError, http.client.HTTPException) as error:  # refused, reset, timeout
                self._drop_connection()
                timed_out = isinstance(error, (socket.timeout, TimeoutError))
                if fresh_retry and reused and not timed_out:
                    continue  # the server closed an idle keep-alive connection: retry at once
                kind = "timed out" if timed_out else "connection failed"
                raise _Retryable(f"{kind} ({type(error).__name__}: {error})") from error
        if response.getheader("Connection", "").lower() == "close":
            self._drop_connection()
        text = raw.decode("utf-8", errors="replace")
        if response.status != 200:
            message = _error_message(text)
            if response.status in RETRYABLE_STATUS or response.status >= 500:
                raise _Retryable(f"HTTP {response.status}: {message}", _retry_after(response))
            raise _HTTPStatusError(response.status, message)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise _Retryable(f"malformed JSON in the answer ({error}): {text[:120]!r}") from error
        if not isinstance(data, dict):
            raise _Retryable(f"answer is JSON {type(data).__name__}, expected an object")
        return data

    def _post(
        self,
        path: str,
        body: dict[str, Any],
        parse: Callable[[dict[str, Any]], Any] = lambda data: data,
        *,
        probe: bool = False,
    ) -> Any:
        """POST with retries; ``parse`` turns the JSON into the result (KeyError etc. = malformed).

        With ``probe`` a well-formed answer that lacks the parsed fields, given
        ``PROBE_CONFIRMATIONS`` times, raises :class:`ServerRequestError` (the
        server lacks the feature) instead of being retried on: one such answer may be a
        transient fault, and a probe misread as "missing" would change the scoring
        method (and every cache key) for the whole run.
        """
        start = time.monotonic()
        attempt = 0
        misses = 0
        while True:
            try:
                data = self._once(path, body)
                try:
                    result = parse(data)
                except (KeyError, IndexError, TypeError, ValueError) as error:
                    misses += 1
                    if probe and misses >= PROBE_CONFIRMATIONS:
                        raise ServerRequestError(
                            f"{self.base_url}: POST {path} answered without the expected fields "
                            f"({type(error).__name__}: {error})"
                        ) from None
                    raise _Retryable(
                        f"malformed answer ({type(error).__name__}: {error}): "
                        f"{json.dumps(data)[:160]}"
                    ) from error
                with self._lock:
                    self.stats.batches += 1
                return result
            except _HTTPStatusError as error:
                raise self._http_error(path, error) from None
            except _Retryable as error:
                elapsed = time.monotonic() - start
                delay = self._delay(attempt, error.args[1] if len(error.args) > 1 else None)
                if attempt >= self.max_retries or elapsed + delay > self.deadline_s:
                    raise LLMError(
                        self._scrub(
                            f"OpenAI-compatible server {self.base_url}: POST {path} failed after "
                            f"{attempt + 1} attempts in {elapsed:.1f} s; last error: "
                            f"{error.args[0]}. "
                            "Check that the server is running and reachable (raise max_retries or "
                            "deadline_s to wait longer)."
                        )
                    ) from None
                time.sleep(delay)
                attempt += 1

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Backoff before retry ``attempt + 1``: doubling, capped, jittered, >= ``Retry-After``."""
        with self._lock:
            factor = 0.5 + self._jitter.random()
        delay = min(self.max_backoff_s, self.backoff_s * 2**attempt) * factor
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_backoff_s))
        return delay

    def _http_error(self, path: str, error: _HTTPStatusError) -> LLMError:
        """The typed error for a non-retryable HTTP answer, saying what to do."""
        where = f"OpenAI-compatible server {self.base_url}: POST {path}"
        message = self._scrub(error.message)
        if error.status in (401, 403):
            return ServerRequestError(
                f"{where} refused the request (HTTP {error.status}: {message}); set the API key in "
                f"the environment variable {self.api_key_env!r}",
                error.status,
            )
        if error.status == 400 and "context" in message.lower():
            return PromptTooLongError(
                f"{where}: the prompt does not fit the model's context ({message})"
            )
        if error.status == 404 and path.startswith("/v1/") and "model" in message.lower():
            return ServerRequestError(
                f"{where}: model {self.model!r} not found ({message}); "
                f"see {self.base_url}/v1/models",
                error.status,
            )
        return ServerRequestError(
            f"{where} was rejected (HTTP {error.status}: {message})", error.status
        )


def _normalize_base_url(base_url: str) -> str:
    """The server root: an http(s) URL without trailing ``/`` or ``/v1``."""
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise LLMSpecError(f"base_url must start with http:// or https://, got {base_url!r}")
    url = base_url.rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


def _error_message(text: str) -> str:
    """The server's error message from an error body (JSON or text), shortened."""
    try:
        data = json.loads(text)
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message", error) if isinstance(error, dict) else error
        return str(message)[:300]
    except (json.JSONDecodeError, AttributeError):
        return text.strip()[:300] or "(empty body)"


def _retry_after(response: http.client.HTTPResponse) -> float | None:
    """The ``Retry-After`` header in seconds, if given as a number."""
    value = response.getheader("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
