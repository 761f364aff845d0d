"""Any OpenAI-compatible server as a task LLM (vLLM, the llama.cpp server, Ollama, ...).

``generate`` uses ``/v1/completions`` for plain-text prompts and
``/v1/chat/completions`` for chats, greedy (``temperature: 0``) with a fixed
``seed``.

``score`` needs log-probabilities of given continuations, which the OpenAI
API has no single call for. Three methods, best first; ``score_method="auto"``
probes the server once and keeps the best one it supports
(``self.score_method_used``, also in ``describe()`` and ``identity()``):

``"echo"``
    ``/v1/completions`` with ``echo: true, logprobs: 1`` returns the
    log-probability of every prompt token (vLLM, OpenAI's legacy API). The
    prompt is sent as token ids ``tokenize(prompt) + tokenize(choice)`` and the
    choice's positions are summed: one request per (prompt, choice).
``"logit_bias"``
    For servers that ignore ``echo`` (the llama.cpp server): request one token
    with ``logit_bias {choice_token: 100}``; the server reports the token's
    *unbiased* log-probability (the probe checks that). Multi-token choices are
    teacher-forced exactly: token ``k`` is read after the prompt ids plus the
    choice's first ``k`` token ids. One request per (prompt, choice token).
``"generate-match"``
    Last resort for servers with neither (no ``/tokenize`` or no logprobs):
    generate greedily and give ``0.0`` to a choice equal to the stripped
    generation and ``MISMATCH_LOGPROB`` (-1e9, "practically impossible") to the
    others. Rankings are then only right or wrong, never graded.

Token ids come from the server's ``/tokenize`` (llama.cpp and vLLM both have
one); chats are rendered with the server's own chat template
(``/apply-template``, or vLLM's ``/tokenize`` with ``messages``), so the model
reads exactly the tokens ``tokenize(prompt) + tokenize(choice)``, the same
convention as the local transformers backend.

Requests run in parallel (at most ``concurrency`` at a time). Connection
errors, timeouts, HTTP 429 and 5xx, and malformed answers are retried with
exponential backoff and seeded jitter; after ``max_retries`` retries, or when
``deadline_s`` of wall time has passed, :class:`~prompt_env.errors.LLMError`
names the server URL and what failed. Other 4xx answers fail at once.

The API key is read from the environment variable named by ``api_key_env``
at request time and sent as ``Authorization: Bearer``; it is never stored on
the object, so it is not in the spec, identity, cache, repr or reports, and
it is scrubbed from error messages.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from prompt_env.errors import LLMError, LLMSpecError
from prompt_env.llm.base import LLM, PromptInput, cut_at_stop
from prompt_env.llm.http_client import RETRYABLE_STATUS, RetryingJSONClient, ServerRequestError
from prompt_env.llm.openai_parsing import (
    chat_text,
    completion_text,
    echo_logprobs,
    first_token_logprobs,
    token_ids,
)

__all__ = [
    "GENERATE_MATCH_TOKENS",
    "LOGIT_BIAS",
    "MISMATCH_LOGPROB",
    "RETRYABLE_STATUS",
    "SCORE_METHODS",
    "TOP_LOGPROBS",
    "OpenAICompatLLM",
    "ServerRequestError",
]

SCORE_METHODS = ("auto", "echo", "logit_bias", "generate-match")
MISMATCH_LOGPROB = -1e9
"""Score of a choice that the generation did not match (``generate-match`` method)."""
LOGIT_BIAS = 100
TOP_LOGPROBS = 20
"""Size of the unbiased top list read with each logit_bias request (vLLM's default cap)."""
GENERATE_MATCH_TOKENS = 16
_PROBE_TEXT = "The capital of France is Paris. The capital of Italy is"


class OpenAICompatLLM(RetryingJSONClient, LLM):
    """A task LLM behind an OpenAI-compatible HTTP server.

    Args:
        base_url: server root, e.g. ``http://127.0.0.1:8080`` (a trailing ``/v1`` is accepted).
        model: the model name the server knows (``/v1/models``).
        api_key_env: name of the environment variable holding the API key (read per request;
            unset or empty means no ``Authorization`` header).
        timeout_s: socket timeout of one request.
        max_retries: retries after the first attempt of one request.
        concurrency: requests in flight at once (match the server's parallel slots).
        score_method: ``"auto"``, ``"echo"``, ``"logit_bias"`` or ``"generate-match"``.
        seed: sampling seed sent with every request (decoding is greedy anyway).
        backoff_s: first retry delay; doubles each retry up to ``max_backoff_s``, times a
            jitter factor in [0.5, 1.5).
        max_backoff_s: cap of one retry delay.
        deadline_s: wall-time bound of one request including all retries.
        jitter_seed: seed of the backoff jitter (reproducible retry timing).
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 30.0,
        max_retries: int = 5,
        concurrency: int = 4,
        score_method: str = "auto",
        seed: int = 0,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        deadline_s: float = 120.0,
        jitter_seed: int = 0,
        **unknown: Any,
    ) -> None:
        super().__init__()
        if "api_key" in unknown:
            raise LLMSpecError(
                "do not put the API key in the LLM spec (it would be stored with the env spec); "
                "set it in an environment variable and pass that variable's name as api_key_env"
            )
        if unknown:
            raise LLMSpecError(f"unknown openai backend options {sorted(unknown)}")
        if score_method not in SCORE_METHODS:
            raise LLMSpecError(f"score_method must be one of {SCORE_METHODS}, got {score_method!r}")
        if not isinstance(model, str) or not model:
            raise LLMSpecError("the openai backend needs a model name: {'model': '<name on the server>'}")
        if concurrency < 1 or max_retries < 0 or timeout_s <= 0:
            raise LLMSpecError("need concurrency >= 1, max_retries >= 0 and timeout_s > 0")
        self._init_http(base_url, api_key_env=api_key_env, timeout_s=timeout_s,
                        max_retries=max_retries, backoff_s=backoff_s, max_backoff_s=max_backoff_s,
                        deadline_s=deadline_s, jitter_seed=jitter_seed)
        self.model = model
        self.concurrency = int(concurrency)
        self.score_method = score_method
        self.score_method_used: str | None = None if score_method == "auto" else score_method
        self.seed = int(seed)
        self._executor: ThreadPoolExecutor | None = None
        self._executor_pid = -1
        self._choice_ids: dict[str, list[int]] = {}
        self._top_list_unbiased: bool | None = None

    # ------------------------------------------------------------------ identity
    def identity(self) -> str:
        return f"openai:{self.base_url}#{self.model}?score={self.resolve_score_method()}"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "identity": self.identity(),
            "base_url": self.base_url,
            "model": self.model,
            "score_method": self.score_method,
            "score_method_used": self.score_method_used,
            "concurrency": self.concurrency,
            "api_key_env": self.api_key_env,
        }

    def __repr__(self) -> str:
        return (
            f"OpenAICompatLLM(base_url={self.base_url!r}, model={self.model!r}, "
            f"score_method={self.score_method!r})"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for key in ("_lock", "_local", "_executor"):
            state.pop(key)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._executor = None
        self._executor_pid = -1

    # ------------------------------------------------------------------ HTTP
    def _map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(item) for item in items]
        with self._lock:
            if self._executor is None or self._executor_pid != os.getpid():
                self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="openai-llm")
                self._executor_pid = os.getpid()
            executor = self._executor
        return list(executor.map(fn, items))

    def _count(self, prompts: int) -> None:
        with self._lock:  # worker threads count tokens meanwhile (_count_tokens)
            super()._count(prompts)

    def _count_tokens(self, prompt_tokens: int = 0, generated_tokens: int = 0) -> None:
        with self._lock:
            self.stats.prompt_tokens += prompt_tokens
            self.stats.generated_tokens += generated_tokens

    # ------------------------------------------------------------------ generation
    def _generate(self, prompts: list[PromptInput], max_new_tokens: int, stop: list[str] | None) -> list[str]:
        stop_list = [s for s in (stop or []) if s]
        return self._map(lambda p: self._generate_one(p, max_new_tokens, stop_list), prompts)

    def _generate_one(self, prompt: PromptInput, max_new_tokens: int, stop: list[str]) -> str:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": max_new_tokens,
            "temperature": 0,
            "seed": self.seed,
        }
        if isinstance(prompt, str):
            body["prompt"] = prompt
            path, read = "/v1/completions", completion_text
        else:
            body["messages"] = prompt
            path, read = "/v1/chat/completions", chat_text
        if stop:
            body["stop"] = stop[:4]  # the OpenAI API takes at most four; the rest are cut here
        text, usage = self._post(path, body, read)
        self._count_tokens(prompt_tokens=usage[0], generated_tokens=usage[1])
        if stop and not text.strip():
            # the server ends at a stop string wherever it falls, also in the whitespace before
            # an answer, which here never ends one: ask again with the stop applied here alone
            del body["stop"]
            text, usage = self._post(path, body, read)
            self._count_tokens(prompt_tokens=usage[0], generated_tokens=usage[1])
        return cut_at_stop(text, stop)

    # ------------------------------------------------------------------ scoring
    def _score(self, prompts: list[PromptInput], choices: list[str]) -> np.ndarray:
        method = self.resolve_score_method()
        if method == "generate-match":
            texts = self._generate(prompts, GENERATE_MATCH_TOKENS, ["\n"])  # counted by score()
            rows = [[0.0 if t.strip() == c.strip() else MISMATCH_LOGPROB for c in choices] for t in texts]
        else:
            choice_ids = [self._choice_tokens(c) for c in choices]
            one = self._score_echo if method == "echo" else self._score_logit_bias
            rows = self._map(lambda p: one(self.prompt_tokens(p), choice_ids), prompts)
        return np.asarray(rows, dtype=np.float64).reshape(len(prompts), len(choices))

    def _score_echo(self, context: list[int], choice_ids: list[list[int]]) -> list[float]:
        row = []
        for ids in choice_ids:
            body = {"model": self.model, "prompt": context + ids, "max_tokens": 1, "echo": True,
                    "logprobs": 1, "temperature": 0, "seed": self.seed}
            values, used = self._post("/v1/completions", body, echo_logprobs)
            if len(values) < len(context) + len(ids):
                raise LLMError(
                    f"OpenAI-compatible server {self.base_url}: echo returned {len(values)} prompt "
                    f"log-probs for {len(context) + len(ids)} tokens; use score_method='logit_bias'"
                )
            part = values[len(context) : len(context) + len(ids)]
            if any(v is None for v in part):
                raise LLMError(f"OpenAI-compatible server {self.base_url}: echo log-probs missing for a choice")
            row.append(float(sum(part)))
            self._count_tokens(prompt_tokens=used)
        return row

    def _score_logit_bias(self, context: list[int], choice_ids: list[list[int]]) -> list[float]:
        # Every (choice prefix, next token) the choices need, grouped by prefix: choices that
        # share a prefix share its requests, and one answer's unbiased top list often holds
        # the other choices' tokens too (then one request covers all single-token labels).
        needed: dict[tuple[int, ...], dict[int, None]] = {}
        for ids in choice_ids:
            for k, token in enumerate(ids):
                needed.setdefault(tuple(ids[:k]), {})[token] = None
        known: dict[tuple[int, ...], dict[int, float]] = {}
        for prefix, targets in needed.items():
            values = known.setdefault(prefix, {})
            for token in targets:
                if token not in values:
                    values.update(self._biased_logprobs(context + list(prefix), token))
        return [sum(known[tuple(ids[:k])][t] for k, t in enumerate(ids)) for ids in choice_ids]

    def _biased_logprobs(self, prompt_ids: list[int], token: int) -> dict[int, float]:
        """Unbiased log-probs after ``prompt_ids``: of ``token`` and of the top list (if trusted)."""
        use_top = self._top_list_trusted()
        body = {"model": self.model, "prompt": prompt_ids, "max_tokens": 1, "temperature": 0,
                "seed": self.seed, "logprobs": TOP_LOGPROBS if use_top else 1,
                "logit_bias": {str(token): LOGIT_BIAS}}
        got, logprob, top = self._post("/v1/completions", body, first_token_logprobs)
        if got is not None and got != token:
            raise LLMError(
                f"OpenAI-compatible server {self.base_url} ignored logit_bias (asked for token "
                f"{token}, got {got}); use score_method='generate-match'"
            )
        self._count_tokens(prompt_tokens=len(prompt_ids))
        values = dict(top) if use_top else {}
        values[token] = logprob
        return values

    def _top_list_trusted(self) -> bool:
        if self._top_list_unbiased is None:
            context = self.tokenize(_PROBE_TEXT)
            body = {"model": self.model, "prompt": context, "max_tokens": 1, "temperature": 0,
                    "seed": self.seed, "logprobs": 1}
            self._logit_bias_check(context, body)
        return bool(self._top_list_unbiased)

    # ------------------------------------------------------------------ tokens
    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` on the server (no BOS added; special tokens parsed)."""
        return self._post("/tokenize", self._tokenize_body(text), token_ids)

    def _tokenize_body(self, text: str) -> dict[str, Any]:
        # llama.cpp reads "content"/"add_special", vLLM "prompt"/"add_special_tokens"
        return {"content": text, "prompt": text, "model": self.model,
                "add_special": False, "add_special_tokens": False}

    def prompt_tokens(self, prompt: PromptInput) -> list[int]:
        """Token ids the model reads for ``prompt`` (chats through the server's chat template)."""
        if isinstance(prompt, str):
            ids = self.tokenize(prompt)
        else:
            ids = self._chat_tokens(prompt)
        if not ids:
            raise LLMError("a prompt is empty after tokenization; give it some text")
        return ids

    def _chat_tokens(self, chat: list[dict[str, str]]) -> list[int]:
        try:  # llama.cpp: render with the model's template, then tokenize the text
            text = self._post("/apply-template", {"messages": chat}, lambda d: str(d["prompt"]))
        except ServerRequestError as error:
            if error.status != 404:
                raise
        else:
            return self.tokenize(text)
        body = {"model": self.model, "messages": chat, "add_generation_prompt": True,
                "add_special_tokens": False}
        return self._post("/tokenize", body, token_ids)  # vLLM renders chats itself

    def _choice_tokens(self, choice: str) -> list[int]:
        with self._lock:
            cached = self._choice_ids.get(choice)
        if cached is not None:
            return cached
        ids = self.tokenize(choice)
        if not ids:
            raise LLMError(f"choice {choice!r} has no tokens on the server")
        with self._lock:
            if len(self._choice_ids) > 10_000:
                self._choice_ids.clear()
            self._choice_ids[choice] = ids
        return ids

    # ------------------------------------------------------------------ probing
    def resolve_score_method(self) -> str:
        """The scoring method in use; with ``"auto"``, probe the server once (three requests)."""
        if self.score_method_used is None:
            method = self._probe()
            with self._lock:
                if self.score_method_used is None:
                    self.score_method_used = method
        return self.score_method_used  # type: ignore[return-value]

    def _probe(self) -> str:
        try:
            context = self._post("/tokenize", self._tokenize_body(_PROBE_TEXT), token_ids, probe=True)
        except ServerRequestError as error:  # no /tokenize: no log-prob method can address tokens
            _reraise_refusal(error)
            return "generate-match"
        body = {"model": self.model, "prompt": context, "max_tokens": 1, "temperature": 0,
                "seed": self.seed, "logprobs": 1}
        try:
            values, _ = self._post("/v1/completions", {**body, "echo": True}, echo_logprobs, probe=True)
            if len(values) >= len(context) and all(v is not None for v in values[1 : len(context)]):
                return "echo"
        except ServerRequestError as error:
            _reraise_refusal(error)
        return "logit_bias" if self._logit_bias_check(context, body) else "generate-match"

    def _logit_bias_check(self, context: list[int], body: dict[str, Any]) -> bool:
        """True when a biased token's reported log-prob is its unbiased one (not about 0).

        Also records whether the top list of a biased answer is the unbiased one (its first
        entry is the unbiased argmax with the same log-prob): then scoring reads other
        choices' tokens from it instead of asking for each.
        """
        try:
            top, top_logprob, _ = self._post("/v1/completions", body, first_token_logprobs, probe=True)
            other = self.tokenize(" zebra")[0]
            if other == top:
                return False
            biased = {**body, "logit_bias": {str(other): LOGIT_BIAS}, "logprobs": TOP_LOGPROBS}
            got, logprob, top_list = self._post("/v1/completions", biased, first_token_logprobs,
                                                probe=True)
        except ServerRequestError as error:
            _reraise_refusal(error)
            self._top_list_unbiased = False
            return False
        self._top_list_unbiased = (
            top is not None and top in top_list and abs(top_list[top] - top_logprob) < 1e-3
            and max(top_list.values()) <= top_list[top]
        )
        return got == other and logprob < top_logprob and logprob < -1.0

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)
        self._drop_connection()


def _reraise_refusal(error: ServerRequestError) -> None:
    """While probing, a missing feature means "try the next method"; a refused key does not."""
    if error.status in (401, 403):
        raise error
