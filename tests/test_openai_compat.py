"""Fault handling of the OpenAI-compatible backend against a scripted stdlib HTTP server.

The scripted server only exercises retry, backoff, error and parsing logic.
The evidence that the backend works with a real model is in
``tests/integration/test_server.py`` (llama.cpp server on the embedded model).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from prompt_env.errors import LLMError, LLMSpecError
from prompt_env.llm import load_llm, normalize_spec
from prompt_env.llm.openai_compat import MISMATCH_LOGPROB, OpenAICompatLLM

SECRET = "sk-test-0123456789-do-not-leak"
KEY_ENV = "PROMPT_ENV_TEST_OPENAI_KEY"

Reply = tuple[int, Any]  # (status, JSON object or raw bytes)


class ScriptedServer:
    """An HTTP server on 127.0.0.1 whose answers come from a Python function."""

    def __init__(self, respond: Callable[[str, dict[str, Any]], Reply], delay_s: float = 0.0,
                 close_silently: bool = False) -> None:
        self.respond = respond
        self.delay_s = delay_s
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with outer.lock:
                    outer.requests.append((self.path, body, dict(self.headers)))
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    if outer.delay_s:
                        time.sleep(outer.delay_s)
                    status, payload = outer.respond(self.path, body)
                finally:
                    with outer.lock:
                        outer.in_flight -= 1
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                # like an idle keep-alive timeout: hang up without a "Connection: close"
                self.close_connection = close_silently

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def make(respond: Callable[[str, dict[str, Any]], Reply], delay_s: float = 0.0,
             close_silently: bool = False) -> ScriptedServer:
        servers.append(ScriptedServer(respond, delay_s, close_silently))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def fast_client(base_url: str, **options: Any) -> OpenAICompatLLM:
    settings = {"backoff_s": 0.01, "max_backoff_s": 0.05, "max_retries": 3, "timeout_s": 2.0,
                "api_key_env": KEY_ENV, **options}
    return OpenAICompatLLM(base_url, "test-model", **settings)


def completion(text: str) -> dict[str, Any]:
    return {"choices": [{"text": text, "index": 0}], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}


def sequence(*replies: Reply) -> Callable[[str, dict[str, Any]], Reply]:
    """Answer with the given replies in order, then repeat the last one."""
    queue = list(replies)

    def respond(path: str, body: dict[str, Any]) -> Reply:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return respond


# ------------------------------------------------------------------ retries
def test_retries_429_and_5xx_then_succeeds(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(sequence((429, {"error": {"message": "slow down"}}), (503, {"error": "loading"}),
                               (500, b"oops"), (200, completion(" fine"))))
    llm = fast_client(server.base_url)
    assert llm.generate(["Hello"], max_new_tokens=4) == [" fine"]
    assert server.paths() == ["/v1/completions"] * 4
    assert llm.stats.batches == 1 and llm.stats.generated_tokens == 2


@pytest.mark.parametrize("bad", [b"{not json", b"[1, 2]", json.dumps({"choices": []}).encode(),
                                 json.dumps({"choices": [{"text": None}]}).encode()])
def test_malformed_answers_are_retried(scripted: Callable[..., ScriptedServer], bad: bytes) -> None:
    server = scripted(sequence((200, bad), (200, completion("ok"))))
    assert fast_client(server.base_url).generate(["x"]) == ["ok"]
    assert len(server.requests) == 2


def test_permanent_5xx_raises_llm_error_naming_the_server(
    scripted: Callable[..., ScriptedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    server = scripted(sequence((500, {"error": {"message": f"internal error, your key is {SECRET}"}})))
    llm = fast_client(server.base_url, max_retries=2)
    start = time.monotonic()
    with pytest.raises(LLMError) as info:
        llm.generate(["Hello"])
    assert time.monotonic() - start < 2.0
    message = str(info.value)
    assert server.base_url in message and "3 attempts" in message and "HTTP 500" in message
    assert SECRET not in message and SECRET not in repr(info.value)
    assert len(server.requests) == 3


def test_connection_refused_raises_within_the_deadline() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    llm = fast_client(f"http://127.0.0.1:{port}", max_retries=50, backoff_s=0.05, max_backoff_s=0.2,
                      deadline_s=1.0)
    start = time.monotonic()
    with pytest.raises(LLMError, match=f"127.0.0.1:{port}.*connection failed"):
        llm.generate(["Hello"])
    assert time.monotonic() - start < 1.5


def test_timeouts_are_retried_then_fail(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(sequence((200, completion("late"))), delay_s=0.5)
    llm = fast_client(server.base_url, timeout_s=0.1, max_retries=1)
    with pytest.raises(LLMError, match="timed out"):
        llm.generate(["Hello"])
    assert len(server.requests) == 2


def test_client_errors_fail_at_once_and_say_what_to_do(
    scripted: Callable[..., ScriptedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    server = scripted(sequence((401, {"error": {"message": f"invalid key {SECRET}"}})))
    with pytest.raises(LLMError) as info:
        fast_client(server.base_url).generate(["Hello"])
    assert KEY_ENV in str(info.value) and SECRET not in str(info.value)
    assert len(server.requests) == 1


def test_a_dropped_keep_alive_connection_is_reopened_without_backoff(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(sequence((200, completion("x"))), close_silently=True)
    llm = fast_client(server.base_url, max_retries=0, concurrency=1)
    for _ in range(3):  # each call after the first finds its connection closed by the server
        assert llm.generate(["Hello"]) == ["x"]
    assert len(server.requests) == 3


def test_probing_with_a_refused_key_is_an_error_not_a_fallback(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(sequence((401, {"error": {"message": "Invalid API Key"}})))
    llm = fast_client(server.base_url)
    with pytest.raises(LLMError, match=KEY_ENV):
        llm.score(["x"], [" A"])
    assert llm.score_method_used is None  # nothing was decided: the next call probes again


def test_backoff_is_exponential_capped_and_seeded() -> None:
    a = OpenAICompatLLM("http://127.0.0.1:9", "m", backoff_s=0.5, max_backoff_s=4.0, jitter_seed=7)
    b = OpenAICompatLLM("http://127.0.0.1:9", "m", backoff_s=0.5, max_backoff_s=4.0, jitter_seed=7)
    delays = [a._delay(k, None) for k in range(8)]
    assert delays == [b._delay(k, None) for k in range(8)]
    for k, delay in enumerate(delays):
        base = min(4.0, 0.5 * 2**k)
        assert 0.5 * base <= delay < 1.5 * base
    assert a._delay(0, retry_after=3.0) >= 3.0  # Retry-After is honoured (up to the cap)


def test_requests_in_flight_never_exceed_concurrency(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(sequence((200, completion("x"))), delay_s=0.05)
    llm = fast_client(server.base_url, concurrency=3)
    assert llm.generate([f"prompt {i}" for i in range(12)]) == ["x"] * 12
    assert server.max_in_flight == 3


# ------------------------------------------------------------------ the API key
def test_api_key_is_read_per_request_and_never_stored(
    scripted: Callable[..., ScriptedServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    server = scripted(sequence((200, completion("ok"))))
    spec = {"backend": "openai", "base_url": server.base_url, "model": "test-model",
            "api_key_env": KEY_ENV, "score_method": "generate-match"}
    llm = load_llm(spec, cache_path=str(tmp_path / "cache.sqlite"))
    llm.generate(["no key yet"])
    monkeypatch.setenv(KEY_ENV, SECRET)
    llm.generate(["with key"])
    assert "Authorization" not in server.requests[0][2]
    assert server.requests[1][2]["Authorization"] == f"Bearer {SECRET}"
    seen = [repr(llm.inner), json.dumps(llm.describe()), llm.identity(), json.dumps(normalize_spec(spec)),
            json.dumps(vars(llm.inner), default=repr)]
    assert not any(SECRET in text for text in seen)
    llm.close()
    assert SECRET.encode() not in (tmp_path / "cache.sqlite").read_bytes()


def test_spec_forms_route_to_this_backend() -> None:
    assert normalize_spec("openai:http://127.0.0.1:8080#smol") == {
        "backend": "openai", "base_url": "http://127.0.0.1:8080", "model": "smol"}
    with pytest.raises(LLMSpecError):
        OpenAICompatLLM("127.0.0.1:8080", "m")
    with pytest.raises(LLMSpecError):
        OpenAICompatLLM("http://127.0.0.1:8080", "m", score_method="guess")
    with pytest.raises(LLMSpecError, match="api_key_env") as info:
        OpenAICompatLLM("http://127.0.0.1:8080", "m", api_key=SECRET)
    assert SECRET not in str(info.value)
    assert OpenAICompatLLM("http://h:1/v1/", "m", score_method="echo").identity() == "openai:http://h:1#m?score=echo"


# ------------------------------------------------------------------ scoring methods
VOCAB = {"The": 1, " capital": 2, " A": 10, " B": 11, " long": 12, " word": 13, " zebra": 14}


def tokenize(body: dict[str, Any]) -> Reply:
    """Greedy longest-match over VOCAB; unknown characters become token 99."""
    text, ids = body["content"], []
    while text:
        piece = max((p for p in VOCAB if text.startswith(p)), key=len, default=None)
        ids.append(VOCAB[piece] if piece else 99)
        text = text[len(piece) if piece else 1 :]
    return 200, {"tokens": ids}


def logprob_of(prompt: list[int], token: int) -> float:
    """A made-up but deterministic unbiased model: log-prob depends on the context length."""
    return -0.1 * token - 0.01 * len(prompt)


def llama_cpp_like(path: str, body: dict[str, Any], top_list: bool = False) -> Reply:
    if path == "/tokenize":
        return tokenize(body)
    if path == "/v1/completions":
        prompt = body["prompt"]
        bias = body.get("logit_bias") or {}
        token = int(next(iter(bias))) if bias else 10
        # the top list is the unbiased distribution's head (tokens 10, 11, 12 are likeliest)
        top = [{"id": t, "logprob": logprob_of(prompt, t)} for t in (10, 11, 12)] if top_list else []
        entry = {"id": token, "token": "?", "logprob": logprob_of(prompt, token), "top_logprobs": top}
        return 200, {"choices": [{"text": "?", "logprobs": {"content": [entry]}}],
                     "usage": {"prompt_tokens": len(prompt), "completion_tokens": 1}}
    return 404, {"error": {"message": "File Not Found"}}


def vllm_like(path: str, body: dict[str, Any]) -> Reply:
    if path == "/tokenize":
        return tokenize(body)
    prompt = body["prompt"]
    values = [None] + [logprob_of(prompt[:i], t) for i, t in enumerate(prompt)][1:] + [-0.5]
    return 200, {"choices": [{"text": "", "logprobs": {"token_logprobs": values}}],
                 "usage": {"prompt_tokens": len(prompt), "completion_tokens": 1}}


def test_auto_picks_logit_bias_and_teacher_forces_multi_token_choices(
    scripted: Callable[..., ScriptedServer],
) -> None:
    server = scripted(llama_cpp_like)
    llm = fast_client(server.base_url)
    scores = llm.score(["The capital"], [" A", " long word"])
    assert llm.score_method_used == "logit_bias" and "score=logit_bias" in llm.identity()
    context = [1, 2]
    expected = [logprob_of(context, 10), logprob_of(context, 12) + logprob_of(context + [12], 13)]
    np.testing.assert_allclose(scores, [expected])
    biased = [body for path, body, _ in server.requests if body.get("logit_bias")]
    assert (biased[-1]["prompt"], biased[-1]["logit_bias"]) == ([1, 2, 12], {"13": 100})


def test_an_unbiased_top_list_saves_requests(scripted: Callable[..., ScriptedServer]) -> None:
    server = scripted(lambda path, body: llama_cpp_like(path, body, top_list=True))
    llm = fast_client(server.base_url)
    llm.resolve_score_method()
    assert llm._top_list_trusted()
    before = len(server.requests)
    scores = llm.score(["The capital", "The"], [" A", " B", " zebra"])
    # per prompt: /tokenize, then one request for " A" whose top list holds " B" too; " zebra" apart
    assert len(server.requests) - before == 3 + 2 * 3  # tokenizing the three choices, then 3 per prompt
    expected = [[logprob_of(c, t) for t in (10, 11, 14)] for c in ([1, 2], [1])]
    np.testing.assert_allclose(scores, expected)


def test_auto_picks_echo_where_prompt_logprobs_come_back(scripted: Callable[..., ScriptedServer]) -> None:
    llm = fast_client(scripted(vllm_like).base_url)
    scores = llm.score(["The capital", "The"], [" B", " long word"])
    assert llm.score_method_used == "echo"
    expected = [[logprob_of([1, 2], 11), logprob_of([1, 2], 12) + logprob_of([1, 2, 12], 13)],
                [logprob_of([1], 11), logprob_of([1], 12) + logprob_of([1, 12], 13)]]
    np.testing.assert_allclose(scores, expected)


def test_auto_falls_back_to_generate_match_without_tokenize(
    scripted: Callable[..., ScriptedServer],
) -> None:
    def respond(path: str, body: dict[str, Any]) -> Reply:
        if path == "/v1/completions":
            return 200, completion(" B\n")
        return 404, {"error": {"message": "not found"}}

    llm = fast_client(scripted(respond).base_url)
    scores = llm.score(["Which?"], [" A", "B"])
    assert llm.score_method_used == "generate-match"
    np.testing.assert_array_equal(scores, [[MISMATCH_LOGPROB, 0.0]])


def test_a_server_that_applies_the_bias_to_logprobs_is_not_trusted(
    scripted: Callable[..., ScriptedServer],
) -> None:
    def respond(path: str, body: dict[str, Any]) -> Reply:
        if path == "/v1/completions" and body.get("logit_bias"):
            token = int(next(iter(body["logit_bias"])))
            entry = {"id": token, "logprob": -0.0001}  # biased: the forced token looks certain
            return 200, {"choices": [{"text": "?", "logprobs": {"content": [entry]}}]}
        return llama_cpp_like(path, body)

    llm = fast_client(scripted(respond).base_url)
    assert llm.resolve_score_method() == "generate-match"


def test_a_stop_string_in_the_whitespace_before_an_answer_does_not_end_it(
        scripted: Callable[..., ScriptedServer]) -> None:
    """Servers cut at a stop string wherever it falls; a model that opens with a newline under
    a newline stop gets an empty answer there. The client then asks once more without the
    stop and cuts after the answer's first visible character, as the in-process backends do."""
    model_text = {"opens with a newline": "\n\nA short summary.\nAnd more.", "plain": " Yes.\nNo."}

    def respond(path: str, body: dict[str, Any]) -> Reply:
        text = model_text[body["prompt"]]
        for stop in body.get("stop", []):
            text = text.split(stop)[0]
        return 200, completion(text)

    server = scripted(respond)
    llm = fast_client(server.base_url)
    assert llm.generate(["opens with a newline", "plain"], 8, ["\n"]) == ["\n\nA short summary.", " Yes."]
    asked = sorted((body["prompt"], "stop" in body) for _, body, _ in server.requests)
    assert asked == [("opens with a newline", False), ("opens with a newline", True), ("plain", True)]
