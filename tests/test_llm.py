"""The LLM layer on the real default model: scoring, generation, cache, budgets, bad input."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3

import numpy as np
import pytest

from prompt_env.errors import (
    BudgetExhausted,
    CacheError,
    LLMError,
    LLMSpecError,
    PromptTooLongError,
)
from prompt_env.llm import CachedLLM, load_llm, normalize_spec
from prompt_env.llm.cache import GENERATE_KEY, LEGACY_GENERATE_KEY, ResponseCache
from prompt_env.llm.cache import _key as cache_key

INSTRUCTION = "Classify the sentiment of each movie review as positive or negative."
CLEAR_CUT = [
    ("a masterpiece : funny , moving and beautifully acted .", 1),
    ("one of the best films of the year , a pure delight .", 1),
    ("i loved every minute of this wonderful movie .", 1),
    ("a boring , stupid and painfully unfunny mess .", 0),
    ("the worst film i have ever seen , a total waste of time .", 0),
    ("dull , lifeless and badly written .", 0),
]
LABELS = [" negative", " positive"]


def sentiment_prompt(sentence: str) -> str:
    return (
        f"{INSTRUCTION}\n\nReview: a gorgeous , witty movie .\nSentiment: positive\n\n"
        f"Review: a tedious , clumsy film .\nSentiment: negative\n\nReview: {sentence}\nSentiment:"
    )


def test_sensible_prompt_ranks_the_right_label_first(default_llm):
    scores = default_llm.score([sentiment_prompt(s) for s, _ in CLEAR_CUT], LABELS)
    assert scores.shape == (len(CLEAR_CUT), 2)
    assert scores.dtype == np.float64
    assert np.all(scores < 0)
    predicted = scores.argmax(axis=1).tolist()
    assert predicted == [label for _, label in CLEAR_CUT]


def test_multi_token_choice_is_the_sum_of_its_token_logprobs(default_backend):
    import torch

    llm = default_backend
    prompt = sentiment_prompt("a funny and touching film .")
    choice = " absolutely wonderful"
    ctx, cont = llm.encode(prompt), llm.encode(choice)
    assert len(cont) >= 2
    total = 0.0
    with torch.inference_mode():  # each token's log-prob from its own forward pass
        for t in range(len(cont)):
            logits = llm.model(input_ids=torch.tensor([ctx + cont[:t]])).logits[0, -1]
            total += float(torch.log_softmax(logits.float(), dim=-1)[cont[t]])
    got = llm.score([prompt], [choice, " bad"])[0, 0]
    assert got == pytest.approx(total, abs=1e-3)


def test_fast_path_equals_naive_path(default_backend):
    prompts = [sentiment_prompt(s) for s, _ in CLEAR_CUT] + ["The capital of France is"]
    chat = [[{"role": "user", "content": "Is 'a joyless film' positive or negative?"}]]
    for choices in (LABELS, [" very good", " not good at all", " Paris"]):
        fast = default_backend.score(prompts + chat, choices)
        naive = default_backend.score_naive(prompts + chat, choices)
        assert np.abs(fast - naive).max() <= 1e-3


def test_prefix_boundary_tokens_are_the_plain_tokens(default_backend):
    # Inputs that start mid-word with the prefix's last characters: tokenizing the
    # prefix and the rest separately would change the boundary tokens.
    prompts = ["Answer: the cat", "Answer: the category", "Answer: the catalogue of ships"]
    prompts = ["A long shared instruction that many prompts repeat verbatim. " * 3 + p for p in prompts]
    fast = default_backend.score(prompts, [" is", "s"])
    naive = default_backend.score_naive(prompts, [" is", "s"])
    assert np.abs(fast - naive).max() <= 1e-3


def test_prompt_cache_serves_one_pair_calls(default_backend):
    """One (prompt, input) per call, as an env step makes it: after the second call the
    shared instruction and exemplars come from the prefix cache, and scores stay exact."""
    from prompt_env.llm.hf import HFCausalLM

    llm = HFCausalLM(default_backend.model, default_backend.tokenizer, name="t", identity="t")
    prompts = [sentiment_prompt(s) for s, _ in CLEAR_CUT]
    one_by_one = np.vstack([llm.score([p], LABELS) for p in prompts])
    naive = default_backend.score_naive(prompts, LABELS)
    assert np.abs(one_by_one - naive).max() <= 1e-3
    assert len(llm.prefix_cache) >= 1 and llm.prefix_cache.hits >= len(prompts) - 2
    full = sum(len(llm.encode(p)) for p in prompts)
    assert llm.stats.prompt_tokens < 0.6 * full  # the model read the shared part about twice, not six times

    off = HFCausalLM(default_backend.model, default_backend.tokenizer, name="t", identity="t",
                     prefix_cache_tokens=0)
    plain = np.vstack([off.score([p], LABELS) for p in prompts])
    assert np.abs(plain - naive).max() <= 1e-3
    assert len(off.prefix_cache) == 0 and off.stats.prompt_tokens == full
    with pytest.raises(ValueError, match="prefix_cache_tokens"):
        HFCausalLM(default_backend.model, default_backend.tokenizer, name="t", identity="t",
                   prefix_cache_tokens=-1)


def test_prefix_cache_is_bounded_in_tokens():
    from prompt_env.llm.hf import PrefixCache

    cache = PrefixCache(10)
    cache.put((1, 2, 3, 4), ["a"])
    cache.put((1, 2, 3, 4, 5, 6), ["b"])
    assert cache.longest_prefix_of([1, 2, 3, 4, 5, 6, 7]) == (1, 2, 3, 4, 5, 6)
    assert cache.longest_prefix_of([1, 2, 3, 4, 5, 6]) == (1, 2, 3, 4)  # one token stays outside
    assert cache.longest_prefix_of([9, 9]) is None
    cache.put((7, 8, 9), ["c"])  # 13 tokens > 10: the least recently used entry goes
    assert cache.tokens <= 10 and cache.get((1, 2, 3, 4, 5, 6)) is None and cache.get((7, 8, 9)) == ["c"]
    cache.put(tuple(range(11)), ["too long"])
    assert len(cache) == 2


def test_chat_prompts_go_through_the_chat_template(default_backend):
    chat = [{"role": "user", "content": "Say hello."}]
    text = default_backend.prompt_text(chat)
    assert "<|im_start|>user" in text and text.rstrip().endswith("assistant")


def test_generate_is_greedy_deterministic_and_stops(default_llm, default_backend):
    prompts = ["Q: What is the capital of France?\nA:", [{"role": "user", "content": "What is 2+2?"}]]
    first = default_backend.generate(prompts, max_new_tokens=12, stop=["\n"])
    second = default_backend.generate(list(reversed(prompts)), max_new_tokens=12, stop=["\n"])
    assert first == list(reversed(second))
    assert "Paris" in first[0]
    assert all("\n" not in out for out in first)


def test_second_identical_call_is_a_cache_hit_without_the_model(default_llm):
    prompts = [sentiment_prompt(s) for s, _ in CLEAR_CUT[:3]]
    first = default_llm.score(prompts, LABELS)
    model_calls = default_llm.stats.model_calls
    second = default_llm.score(prompts, LABELS)
    assert np.array_equal(first, second)
    assert default_llm.stats.model_calls == model_calls
    assert default_llm.stats.cache_hits == 3
    texts = default_llm.generate(prompts[:1], max_new_tokens=4)
    again = default_llm.generate(prompts[:1], max_new_tokens=4)
    assert texts == again and default_llm.stats.cache_hits == 4


def test_cache_survives_reopen_and_counts_hits(default_backend, tmp_path):
    path = tmp_path / "c.sqlite"
    prompts = [sentiment_prompt(CLEAR_CUT[0][0])]
    a = CachedLLM(default_backend, path).score(prompts, LABELS)
    reopened = CachedLLM(default_backend, path)
    b = reopened.score(prompts, LABELS)
    assert np.array_equal(a, b) and reopened.stats.cache_hits == 1 and reopened.stats.model_calls == 0
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)


def test_answers_cached_before_the_stop_reading_changed_are_kept_where_they_hold(default_backend, tmp_path):
    """Answers stored under the legacy generation key were cut at the first stop string wherever
    it fell. One with visible text is what the current reading gives, so it is read (and copied
    to the current key); a blank one may have been cut before its answer, so the model is asked
    again; without stop strings nothing changed, so even a blank one is read."""
    path = tmp_path / "old.sqlite"
    model = default_backend.identity()
    held, blank, unstopped = "Q: What is the capital of France?\nA:", "Q: What is 2+2?\nA:", "Q: Name a colour.\nA:"
    ResponseCache(path).put_many(
        [
            (cache_key(LEGACY_GENERATE_KEY, model, held, 12, ["\n"]), model, "generate", json.dumps(" stored answer")),
            (cache_key(LEGACY_GENERATE_KEY, model, blank, 12, ["\n"]), model, "generate", json.dumps("")),
            (cache_key(LEGACY_GENERATE_KEY, model, unstopped, 12, []), model, "generate", json.dumps("")),
        ]
    )
    llm = CachedLLM(default_backend, path)
    out = llm.generate([held, blank], max_new_tokens=12, stop=["\n"])
    assert out[0] == " stored answer"
    assert out[1] == default_backend.generate([blank], max_new_tokens=12, stop=["\n"])[0] and out[1].strip()
    assert llm.stats.cache_hits == 1 and llm.stats.model_calls == 1
    assert llm.generate([unstopped], max_new_tokens=12) == [""]
    reopened = CachedLLM(default_backend, path)
    assert reopened.generate([held, blank], max_new_tokens=12, stop=["\n"]) == out
    assert reopened.stats.model_calls == 0
    current = ResponseCache(path).get_many([cache_key(GENERATE_KEY, model, held, 12, ["\n"])])
    assert list(current.values()) == [json.dumps(" stored answer")]


def _writer(path: str, worker: int, out: multiprocessing.Queue) -> None:
    try:
        llm = load_llm("fake", cache_path=path)
        prompts = [f"worker {worker} prompt {i}" for i in range(40)] + ["shared prompt"]
        for start in range(0, len(prompts), 5):
            llm.score(prompts[start : start + 5], [" a", " b"])
        out.put(("ok", worker))
    except Exception as error:  # noqa: BLE001 - reported to the parent
        out.put(("error", repr(error)))


def test_two_processes_write_one_cache_file(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_writer, args=(path, w, queue)) for w in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    results = [queue.get(timeout=5) for _ in workers]
    assert all(status == "ok" for status, _ in results), results
    assert len(ResponseCache(path)) == 81
    fresh = load_llm("fake", cache_path=path)
    fresh.score(["worker 0 prompt 3", "worker 1 prompt 39"], [" a", " b"])
    assert fresh.stats.cache_hits == 2


def test_budget_exhausted_says_what_was_spent():
    llm = load_llm("fake", budget={"calls": 5})
    llm.score(["a", "b", "c"], [" x"])
    llm.score(["a", "b"], [" x"])  # duplicates of earlier prompts still cost without a disk cache
    with pytest.raises(BudgetExhausted, match="5 of 5 model calls"):
        llm.score(["d"], [" x"])


def test_budget_counts_only_model_calls(tmp_path):
    llm = load_llm("fake", cache_path=str(tmp_path / "b.sqlite"), budget={"calls": 3})
    llm.score(["a", "b", "c"], [" x"])
    llm.score(["a", "b", "c"], [" x"])  # all hits: free
    assert llm.stats.model_calls == 3 and llm.stats.cache_hits == 3


def test_empty_prompt_list_gives_empty_result(default_llm):
    assert default_llm.score([], LABELS).shape == (0, 2)
    assert default_llm.generate([]) == []


@pytest.mark.parametrize(
    ("choices", "message"),
    [([], "choices is empty"), ([" ok", 3], "choice 1 is int"), ([""], "empty string"), (" ok", "not one string")],
)
def test_bad_choices_are_typed_errors(default_llm, choices, message):
    with pytest.raises(LLMError, match=message):
        default_llm.score(["hello"], choices)


def test_bad_prompt_is_a_typed_error(default_llm):
    with pytest.raises(LLMError, match="prompt 1 is int"):
        default_llm.score(["fine", 7], [" a"])
    with pytest.raises(LLMError, match="empty after tokenization"):
        default_llm.score([""], [" a"])


def test_prompt_longer_than_the_context_names_prompt_and_limit(default_llm):
    too_long = "word " * 9000
    with pytest.raises(PromptTooLongError, match=r"prompt 1 has \d+ tokens .* at most 8192"):
        default_llm.score(["short", too_long], [" a"])


def test_corrupted_or_foreign_cache_file_is_a_clear_error(tmp_path):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheError, match="garbage.sqlite"):
        load_llm("fake", cache_path=str(garbage))
    foreign = tmp_path / "foreign.sqlite"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(CacheError, match="something else"):
        load_llm("fake", cache_path=str(foreign))


def test_tampered_cache_entry_is_detected(tmp_path):
    path = tmp_path / "t.sqlite"
    llm = load_llm("fake", cache_path=str(path))
    llm.score(["hello"], [" a", " b"])
    conn = sqlite3.connect(path)
    conn.execute("UPDATE entries SET value = '[0.0, 0.0]'")
    conn.commit()
    conn.close()
    with pytest.raises(CacheError, match="checksum"):
        load_llm("fake", cache_path=str(path)).score(["hello"], [" a", " b"])


def test_specs():
    assert normalize_spec("default") == {"backend": "default"}
    assert normalize_spec("hf:/models/x") == {"backend": "hf", "model": "/models/x"}
    assert normalize_spec('{"backend": "fake", "seed": 3}') == {"backend": "fake", "seed": 3}
    with pytest.raises(LLMSpecError, match="valid forms"):
        normalize_spec("gpt-5")
    with pytest.raises(LLMSpecError, match="no 'backend'"):
        normalize_spec({"model": "x"})


def test_missing_hf_model_is_a_clear_error(tmp_path):
    with pytest.raises(LLMError, match="could not load transformers model"):
        load_llm(f"hf:{tmp_path / 'nothing-here'}")


def test_hf_spec_loads_a_local_model_directory(default_backend, tmp_path):
    # The converted default model is an ordinary transformers directory.
    from prompt_env.llm.hf import default_model_dir

    directory, _ = default_model_dir()
    llm = load_llm(f"hf:{directory}", cache=False)
    prompts = [sentiment_prompt(s) for s, _ in CLEAR_CUT[:2]]
    assert np.allclose(llm.score(prompts, LABELS), default_backend.score(prompts, LABELS), atol=1e-4)


def test_the_converted_default_model_is_kept_per_transformers_major():
    """A copy saved by one transformers major is not read by another (transformers 5 saves a
    tokenizer class 4 lacks): the copy's directory names the major it was saved with."""
    import transformers

    from prompt_env.llm.default_model import default_model_dir

    directory, identity = default_model_dir()
    assert directory.name.endswith(f"-transformers{transformers.__version__.split('.')[0]}")
    assert (directory / "prompt-env.json").is_file() and identity.split(":")[-1] in directory.name


def test_embed_shape(default_backend):
    vectors = default_backend.embed(["a film", "another longer piece of text"])
    assert vectors.shape == (2, 576) and vectors.dtype == np.float32


def test_encode_many_gives_the_ids_encode_gives(default_backend):
    """The bulk paths tokenize a whole batch in one call: the same ids as text by text."""
    texts = ["Review: a masterpiece .\nSentiment:", "", " ", "  leading spaces", "é ñ 日本語 🙂",
             "\n\n\t", " positive", "word " * 700,
             default_backend.prompt_text([{"role": "user", "content": "Sentiment of: dull ."}])]
    assert default_backend.encode_many(texts) == [default_backend.encode(t) for t in texts]
    assert default_backend.encode_many([]) == []


def test_opening_a_fresh_cache_retries_a_locked_wal_switch(tmp_path, monkeypatch):
    """Two processes opening one new file race for WAL; SQLite answers the loser
    "database is locked" without waiting, so the open must retry, not fail."""
    real_connect = sqlite3.connect
    refusals = []

    class Contended:
        def __init__(self, conn):
            self.conn = conn

        def execute(self, sql, *args):
            if sql == "PRAGMA journal_mode = WAL" and len(refusals) < 2:
                refusals.append(sql)
                raise sqlite3.OperationalError("database is locked")
            return self.conn.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.conn, name)

    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: Contended(real_connect(*a, **k)))
    cache = ResponseCache(tmp_path / "fresh.sqlite")
    assert len(refusals) == 2
    cache.put_many([("k", "m", "score", "1")])
    assert cache.get_many(["k"]) == {"k": "1"}


def test_a_cache_locked_past_its_timeout_names_the_file(tmp_path, monkeypatch):
    def always_locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(sqlite3, "connect", always_locked)
    with pytest.raises(CacheError, match="stuck.sqlite.*database is locked"):
        ResponseCache(tmp_path / "stuck.sqlite", timeout_s=0.2)


def test_loading_the_default_model_prints_no_bar_and_restores_the_setting(capfd):
    """The embedded model loads in about a second: no "Loading weights" bar on every run,
    and the caller's transformers progress-bar setting is left as it was."""
    from transformers.utils import logging as hf_logging

    from prompt_env.llm.hf_loading import load_default

    for enabled in (True, False):
        (hf_logging.enable_progress_bar if enabled else hf_logging.disable_progress_bar)()
        load_default()
        assert hf_logging.is_progress_bar_enabled() is enabled
    hf_logging.enable_progress_bar()
    assert "Loading weights" not in capfd.readouterr().err
