"""One protocol for every backend: the same bad argument gives the same error (type and
message) on each, nothing is counted or sent for it, and each answered prompt is counted once.

The backends: the fake, the cache wrapper around it, the default model (transformers),
a tiny T5 (seq2seq) and the OpenAI-compatible client against the scripted loopback server
of ``test_openai_compat``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_openai_compat import ScriptedServer, completion, fast_client, vllm_like
from test_seq2seq import t5_dir  # noqa: F401 - the tiny T5 fixture, shared

from prompt_env.errors import LLMError
from prompt_env.llm import CachedLLM, load_llm
from prompt_env.llm.fake import FakeLLM
from prompt_env.llm.openai_compat import OpenAICompatLLM

BAD_ARGUMENTS: list[tuple[str, str, tuple[Any, ...]]] = [
    # (case, method, arguments)
    ("score: one prompt, not a list", "score", ("a prompt", [" yes"])),
    ("score: a prompt that is not text", "score", ([5], [" yes"])),
    ("score: one choice, not a list", "score", (["a prompt"], " yes")),
    ("score: no choices", "score", (["a prompt"], [])),
    ("score: a choice that is not text", "score", (["a prompt"], [" yes", 3])),
    ("score: an empty choice", "score", (["a prompt"], [""])),
    ("score: no prompts, an empty choice", "score", ([], [""])),
    ("score_many: one choice, not a list", "score_many", ([(["a prompt"], " yes")],)),
    ("generate: one prompt, not a list", "generate", ("a prompt",)),
    ("generate: max_new_tokens 0", "generate", (["a prompt"], 0)),
    ("generate: max_new_tokens -1", "generate", (["a prompt"], -1)),
    ("generate: max_new_tokens True", "generate", (["a prompt"], True)),
    ("generate: max_new_tokens '5'", "generate", (["a prompt"], "5")),
    ("generate: max_new_tokens 2.0", "generate", (["a prompt"], 2.0)),
    ("generate: no prompts, max_new_tokens 0", "generate", ([], 0)),
    ("generate: stop as one string", "generate", (["a prompt"], 4, "\n")),
    ("generate: a stop that is not text", "generate", (["a prompt"], 4, ["\n", None])),
]
BACKENDS = ["fake", "cached-fake", "default", "cached-default", "seq2seq", "openai"]


def answer(path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """Text prompts get a completion; token prompts the echo log-probs of a vLLM-like server."""
    if path == "/v1/completions" and isinstance(body.get("prompt"), str):
        return 200, completion(" fine")
    return vllm_like(path, body)


@pytest.fixture()
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer(answer)
    yield scripted
    scripted.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    name = request.param
    if name in {"fake", "cached-fake"}:
        llm: Any = FakeLLM(seed=0)
    elif name in {"default", "cached-default"}:
        llm = request.getfixturevalue("default_backend")
    elif name == "seq2seq":
        llm = load_llm(f"hf:{request.getfixturevalue('t5_dir')}", cache=False).inner
    else:
        llm = fast_client(request.getfixturevalue("server").base_url)
    return CachedLLM(llm, tmp_path / "cache.sqlite") if name.startswith("cached") else llm


def error_of(llm: Any, method: str, arguments: tuple[Any, ...]) -> tuple[type, str]:
    with pytest.raises(LLMError) as caught:
        getattr(llm, method)(*arguments)
    return type(caught.value), str(caught.value)


def test_every_bad_argument_gives_the_same_error_on_every_backend(
    backend: Any, request: pytest.FixtureRequest,
) -> None:
    reference = FakeLLM(seed=0)
    before = backend.stats.as_dict()
    for case, method, arguments in BAD_ARGUMENTS:
        assert error_of(backend, method, arguments) == error_of(reference, method, arguments), case
    assert backend.stats.as_dict() == before  # nothing counted for a refused call
    if isinstance(backend, OpenAICompatLLM):  # and nothing sent
        assert request.getfixturevalue("server").requests == []


def test_the_errors_say_what_is_wrong() -> None:
    fake = FakeLLM(seed=0)
    messages = {case: error_of(fake, method, arguments)[1] for case, method, arguments in BAD_ARGUMENTS}
    assert "wrap it in a list" in messages["score: one prompt, not a list"]
    assert messages["generate: max_new_tokens True"] == "max_new_tokens must be a positive integer, got True"
    assert messages["generate: max_new_tokens '5'"] == "max_new_tokens must be a positive integer, got '5'"
    assert messages["generate: stop as one string"] == "stop must be a list of strings, got str; wrap it in a list"
    assert messages["score: no prompts, an empty choice"] == messages["score: an empty choice"]


def test_no_prompts_is_an_empty_answer_and_costs_nothing(backend: Any) -> None:
    before = backend.stats.as_dict()
    assert backend.score([], [" yes", " no"]).shape == (0, 2)
    assert [a.shape for a in backend.score_many([([], [" yes"]), ([], [" a", " b"])])] == [(0, 1), (0, 2)]
    assert backend.generate([], max_new_tokens=3, stop=["\n"]) == []
    assert backend.stats.as_dict() == before


def test_each_answered_prompt_is_counted_once(backend: Any) -> None:
    before = backend.stats.as_dict()
    scores = backend.score_many([(["one prompt", "two prompts"], [" yes", " no"]), (["three"], [" a"])])
    assert [s.shape for s in scores] == [(2, 2), (1, 1)]
    assert all(np.all(s <= 0) for s in scores)
    texts = backend.generate(["a prompt"], max_new_tokens=np.int64(3), stop=("\n",))
    assert len(texts) == 1 and isinstance(texts[0], str)
    spent = backend.stats.since(before)
    assert spent["calls"] == 4
    assert spent["model_calls"] == 4
    assert spent["batches"] >= 1
