"""The OpenAI-compatible backend against a real llama.cpp server on the embedded model.

This is the evidence that the backend works: scores and generations through
the server agree with the in-process transformers backend, a crashed server
gives a clear error within the retry bound, a restarted one is picked up
again, and the API key stays out of the cache and of errors.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from prompt_env.errors import LLMError
from prompt_env.llm import load_llm

pytestmark = pytest.mark.integration

REVIEWS = [
    ("An absolute masterpiece. I loved every minute of it.", 0),
    ("Wonderful acting, a beautiful story, truly delightful.", 0),
    ("The best film I have seen this year; brilliant and moving.", 0),
    ("A joyful, charming movie that made me smile all the way through.", 0),
    ("Terrible. A boring, awful waste of two hours.", 1),
    ("The worst movie I have ever seen; dreadful acting and a stupid plot.", 1),
    ("Painfully dull and badly made. I hated it.", 1),
    ("A horrible, tedious mess. Avoid it.", 1),
]
LABELS = [" positive", " negative"]


def plain(review: str) -> str:
    return f"Review: {review}\nSentiment (positive or negative):"


def chat(review: str) -> list[dict[str, str]]:
    question = f"Review: {review}\nIs the sentiment of this review positive or negative? Answer with one word."
    return [{"role": "user", "content": question}]


@pytest.fixture(scope="module")
def local_llm():
    return load_llm("default", cache=False)


def test_server_probes_to_logit_bias_scoring(server_spec, tmp_path) -> None:
    llm = load_llm(server_spec, cache_path=str(tmp_path / "cache.sqlite"))
    assert llm.inner.resolve_score_method() == "logit_bias"
    assert llm.describe()["score_method_used"] == "logit_bias"
    assert llm.identity().endswith("?score=logit_bias")


@pytest.mark.parametrize("render", [plain, chat], ids=["text", "chat"])
def test_scores_rank_labels_like_the_local_backend(server_spec, local_llm, render, tmp_path) -> None:
    prompts = [render(review) for review, _ in REVIEWS]
    choices = LABELS if render is plain else ["positive", "negative"]
    served = load_llm(server_spec, cache_path=str(tmp_path / "cache.sqlite")).score(prompts, choices)
    local = local_llm.score(prompts, choices)
    np.testing.assert_array_equal(served.argmax(1), local.argmax(1))
    # same GGUF weights, different kernels: log-probs agree to a fraction of a nat
    assert np.abs(served - local).max() < 0.75
    if render is plain:  # and the labels are right on these clear-cut reviews
        assert list(served.argmax(1)) == [label for _, label in REVIEWS]


def test_multi_token_choices_are_teacher_forced(server_spec, local_llm, tmp_path) -> None:
    prompts = [plain(review) for review, _ in REVIEWS[::2]]
    choices = [" a good movie", " a bad movie", " positive"]
    served = load_llm(server_spec, cache_path=str(tmp_path / "cache.sqlite")).score(prompts, choices)
    local = local_llm.score(prompts, choices)
    assert np.abs(served - local).max() < 1.0
    np.testing.assert_array_equal(served.argsort(1), local.argsort(1))


def test_generations_match_the_local_backend(server_spec, local_llm, tmp_path) -> None:
    served_llm = load_llm(server_spec, cache_path=str(tmp_path / "cache.sqlite"))
    for render in (plain, chat):
        prompts = [render(review) for review, _ in REVIEWS]
        served = served_llm.generate(prompts, max_new_tokens=3, stop=["\n"])
        local = local_llm.generate(prompts, max_new_tokens=3, stop=["\n"])
        same = sum(a == b for a, b in zip(served, local))
        assert same >= len(prompts) - 1, list(zip(served, local))


def test_responses_come_from_the_cache_the_second_time(server_spec, tmp_path) -> None:
    path = str(tmp_path / "cache.sqlite")
    prompts = [plain(review) for review, _ in REVIEWS[:3]]
    first = load_llm(server_spec, cache_path=path)
    scores = first.score(prompts, LABELS)
    second = load_llm(server_spec, cache_path=path)
    np.testing.assert_array_equal(second.score(prompts, LABELS), scores)
    assert second.stats.cache_hits == 3 and second.stats.model_calls == 0


# ---------------------------------------------------------------------- faults
def _spec(server, **options) -> dict[str, object]:
    return {"backend": "openai", "base_url": server.base_url, "model": server.model,
            "score_method": "logit_bias", **options}


def test_killing_the_server_mid_run_raises_within_the_retry_bound(tmp_path) -> None:
    from prompt_env.llm.server import start_local_server

    server = start_local_server(n_parallel=2)
    try:
        llm = load_llm(_spec(server, max_retries=4, backoff_s=0.2, max_backoff_s=1.0, deadline_s=10),
                       cache=False)
        llm.score([plain(REVIEWS[0][0])], LABELS)  # warm: the server works
        prompts = [plain(f"{review} (copy {i})") for i in range(30) for review, _ in REVIEWS]
        killer = threading.Timer(1.0, server.kill)
        killer.start()
        start = time.monotonic()
        with pytest.raises(LLMError) as info:
            llm.score(prompts, LABELS)
        elapsed = time.monotonic() - start
        killer.join()
    finally:
        server.kill()
    message = str(info.value)
    assert server.base_url in message and "attempts" in message
    # 4 retries at <= 1.5 x (0.2, 0.4, 0.8, 1.0) s backoff: about 3.6 s after the kill
    assert elapsed < 10, f"took {elapsed:.1f} s"


def test_a_server_restarted_within_the_retry_window_is_picked_up(tmp_path) -> None:
    from prompt_env.llm.server import start_local_server

    server = start_local_server(n_parallel=2)
    port = server.port
    llm = load_llm(_spec(server, max_retries=20, backoff_s=0.2, max_backoff_s=1.0, deadline_s=60),
                   cache=False)
    before = llm.score([plain(REVIEWS[0][0])], LABELS)
    server.kill()
    replacement: list[object] = []
    restarter = threading.Timer(1.0, lambda: replacement.append(start_local_server(port=port)))
    restarter.start()
    try:
        after = llm.score([plain(REVIEWS[0][0]), plain(REVIEWS[4][0])], LABELS)
        restarter.join()
    finally:
        restarter.join()
        for handle in replacement:
            handle.stop()  # type: ignore[attr-defined]
    np.testing.assert_allclose(after[0], before[0], atol=1e-4)
    assert after[1].argmax() == 1


def test_api_key_is_sent_and_never_stored(tmp_path, monkeypatch) -> None:
    from prompt_env.llm.server import start_local_server

    secret = "sk-integration-" + os.urandom(8).hex()
    monkeypatch.setenv("PROMPT_ENV_SERVER_KEY", secret)
    cache_path = tmp_path / "cache.sqlite"
    with start_local_server(api_key_env="PROMPT_ENV_SERVER_KEY") as server:
        spec = _spec(server, api_key_env="PROMPT_ENV_CLIENT_KEY", max_retries=1, backoff_s=0.05)
        llm = load_llm(spec, cache_path=str(cache_path))
        with pytest.raises(LLMError, match="PROMPT_ENV_CLIENT_KEY") as refused:
            llm.generate(["Hello"], max_new_tokens=2)  # no key in the client's variable yet
        monkeypatch.setenv("PROMPT_ENV_CLIENT_KEY", secret + "-wrong")
        with pytest.raises(LLMError) as wrong:
            llm.generate(["Hello"], max_new_tokens=2)
        monkeypatch.setenv("PROMPT_ENV_CLIENT_KEY", secret)
        scores = llm.score([plain(REVIEWS[0][0])], LABELS)
        texts = llm.generate(["Hello"], max_new_tokens=2)
        llm.close()
        log = server.log_tail(1_000_000)
    assert scores.shape == (1, 2) and isinstance(texts[0], str)
    for text in (str(refused.value), str(wrong.value), repr(llm.inner), str(llm.describe()), log):
        assert secret not in text
    assert secret.encode() not in cache_path.read_bytes()
    for suffix in ("-wal", "-shm"):
        sidecar = cache_path.with_name(cache_path.name + suffix)
        if sidecar.exists():
            assert secret.encode() not in sidecar.read_bytes()
