"""The fused scoring engine against the transformers reference, on the real default model."""

from __future__ import annotations

import numpy as np
import pytest

from prompt_env.errors import LLMSpecError
from prompt_env.llm import CachedLLM, load_llm
from prompt_env.llm.fused_scoring import PACK_TOKENS, Segment, batch_of, pack, passes
from prompt_env.llm.hf import HFCausalLM

SENTENCES = [
    "a masterpiece : funny , moving and beautifully acted .",
    "the worst film i have ever seen , a total waste of time .",
    "dull .",
    "an intelligent , funny and very humane film that lingers long after the credits roll , "
    "with performances that feel lived in and a script that never talks down to its audience .",
    "i loved every minute .",
]
FEW_SHOT = ("Classify the sentiment of each movie review as positive or negative.\n\n"
            "Review: a gorgeous , witty movie .\nSentiment: positive\n\n"
            "Review: a tedious , clumsy film .\nSentiment: negative\n\nReview: {}\nSentiment:")


def engines(backend: HFCausalLM, **options: object) -> tuple[HFCausalLM, HFCausalLM]:
    make = lambda engine: HFCausalLM(backend.model, backend.tokenizer, name="t", identity="t",  # noqa: E731
                                     engine=engine, **options)
    return make("transformers"), make("fused")


def requests() -> list[tuple[list, list[str]]]:
    """Prompts with different prefixes, label words of one and of several tokens, a chat."""
    return [
        ([FEW_SHOT.format(s) for s in SENTENCES], [" negative", " positive"]),
        ([f"Is this review good or bad? {s}\nAnswer:" for s in SENTENCES[:3]],
         [" terrible movie", " great film", " ok"]),
        ([[{"role": "user", "content": f"Sentiment of: {s}"}] for s in SENTENCES[2:]], ["negative", "positive"]),
        (["The capital of France is"], [" Paris", " a city in Europe"]),
    ]


def test_default_backend_uses_the_fused_engine(default_backend):
    assert default_backend.engine == "fused"
    assert default_backend.describe()["engine"] == "fused"


@pytest.mark.parametrize("options", [{}, {"prefix_reuse": False}, {"prefix_cache_tokens": 0}])
def test_fused_equals_reference_on_mixed_requests(default_backend, options):
    reference, fused = engines(default_backend, **options)
    expected = reference.score_many(requests())
    got = fused.score_many(requests())
    for want, have in zip(expected, got, strict=True):
        assert have.shape == want.shape
        assert np.abs(have - want).max() <= 1e-4
        assert (have.argmax(axis=1) == want.argmax(axis=1)).all()
    naive = [default_backend.score_naive(p, c) for p, c in requests()]
    assert max(np.abs(h - n).max() for h, n in zip(got, naive)) <= 1e-4
    # one request at a time gives the same numbers as all at once
    alone = [fused.score(p, c) for p, c in requests()]
    assert max(np.abs(a - h).max() for a, h in zip(alone, got)) <= 1e-4


def test_mixed_requests_share_forward_passes(default_backend):
    reference, fused = engines(default_backend)
    reference.score_many(requests())
    fused.score_many(requests())
    assert fused.stats.batches < reference.stats.batches
    assert fused.stats.calls == reference.stats.calls == sum(len(p) for p, _ in requests())


def test_prefixes_cached_across_calls_stay_exact(default_backend):
    reference, fused = engines(default_backend)
    prompts = [FEW_SHOT.format(s) for s in SENTENCES]
    one_by_one = np.vstack([fused.score([p], [" negative", " positive"]) for p in prompts])
    assert len(fused.prefix_cache) >= 1 and fused.prefix_cache.hits >= len(prompts) - 2
    want = reference.score(prompts, [" negative", " positive"])
    assert np.abs(one_by_one - want).max() <= 1e-4


def test_cached_llm_sends_all_misses_in_one_call(default_backend, tmp_path):
    llm = CachedLLM(default_backend, tmp_path / "cache.sqlite")
    first = llm.score_many(requests())
    batches = llm.stats.batches
    again = llm.score_many(requests())
    assert llm.stats.batches == batches  # every answer from the cache
    assert llm.stats.cache_hits == sum(len(p) for p, _ in requests())
    for a, b in zip(first, again):
        assert np.array_equal(a, b)


def test_engine_is_a_spec_option(default_backend, tmp_path):
    llm = load_llm({"backend": "default", "engine": "transformers"}, cache_path=str(tmp_path / "c.sqlite"))
    assert llm.describe()["engine"] == "transformers"
    assert llm.identity() == default_backend.identity()  # the engines share one response cache
    with pytest.raises(ValueError, match="engine must be one of"):
        HFCausalLM(default_backend.model, default_backend.tokenizer, name="t", identity="t", engine="fast")
    from prompt_env.llm.default_model import default_model_dir

    model_dir = str(default_model_dir()[0])
    with pytest.raises(LLMSpecError, match="bogus"):
        load_llm({"backend": "hf", "model": model_dir, "engine": "fused", "bogus": 1}, cache=False)
    hf = load_llm({"backend": "hf", "model": model_dir, "engine": "fused"}, cache=False)
    assert hf.describe()["engine"] == "fused"


def test_non_llama_models_fall_back_to_the_reference(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from prompt_env.llm.hf_loading import load_default

    tokenizer = load_default().tokenizer
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32,
                                       n_layer=2, n_head=2))
    auto = HFCausalLM(model, tokenizer, name="tiny-gpt2", identity="tiny")
    assert auto.engine == "transformers"
    assert auto.score(["hello there"], [" a", " b c"]).shape == (1, 2)
    with pytest.raises(ValueError, match="model type 'gpt2' is not 'llama'"):
        HFCausalLM(model, tokenizer, name="tiny-gpt2", identity="tiny", engine="fused")


# ------------------------------------------------------------------- packing, no model


def segment(n: int, prefix: tuple[int, ...] | None = None) -> Segment:
    return Segment(list(range(100, 100 + n)), prefix, [n - 1])


def test_pack_fills_rows_by_prefix_and_keeps_long_sequences_alone():
    a30, a40, b50, b20 = segment(30, (1, 2)), segment(40, (1, 2)), segment(50, (3,)), segment(20, (3,))
    long = segment(PACK_TOKENS + 5)
    rows = pack([a30, b50, long, a40, b20])
    # grouped by prefix, longest first, each row filled up to PACK_TOKENS (next fit)
    assert rows == [[long], [a40, a30, b50], [b20]]
    grouped = passes(rows, tokens_per_forward=2 * PACK_TOKENS)
    assert [len(g) for g in grouped] == [2, 1]  # the two narrow rows together, the wide one alone


def test_packed_mask_keeps_sequences_apart():
    import torch

    layers = {(7, 8, 9): [(torch.zeros(1, 1, 3, 2), torch.zeros(1, 1, 3, 2))]}
    row = [Segment([1, 2], (7, 8, 9), [1]), Segment([3, 4, 5], None, [2])]
    batch = batch_of([row], layers.__getitem__)
    mask = batch.mask[0, 0]
    assert batch.past == 3 and mask.shape == (5, 8)
    assert batch.positions[0].tolist() == [3, 4, 0, 1, 2]
    # the first sequence sees its prefix and itself, causally; the second only itself
    assert mask[0].tolist() == [True, True, True, True, False, False, False, False]
    assert mask[1].tolist() == [True, True, True, True, True, False, False, False]
    assert mask[2].tolist() == [False, False, False, False, False, True, False, False]
    assert mask[4].tolist() == [False, False, False, False, False, True, True, True]


def test_generation_reusing_a_shared_prefix_equals_generation_without(default_backend):
    """Few-shot prompts share their instruction and exemplars: generated once over that prefix
    (its keys and values copied per row, padding between it and each row's own tokens), the
    greedy answers are those of the plain path, with and without stop strings."""
    make = lambda **options: HFCausalLM(default_backend.model, default_backend.tokenizer,  # noqa: E731
                                        name="t", identity="t", **options)
    prompts = [FEW_SHOT.format(s) for s in SENTENCES] + [
        f"Is this review good or bad? {s}\nAnswer:" for s in SENTENCES[:2]] + [
        [{"role": "user", "content": f"Say in three words why: {SENTENCES[0]}"}]]
    plain, reused = make(prefix_reuse=False), make()
    for stop in (["\n"], None):
        want = plain.generate(prompts, max_new_tokens=10, stop=stop)
        assert reused.generate(prompts, max_new_tokens=10, stop=stop) == want
        assert reused.generate(prompts[2:4], max_new_tokens=10, stop=stop) == want[2:4]
    assert all(want[:len(SENTENCES)])  # every few-shot row answered something
    # the shared prefix was read once per call, not once per row
    assert reused.stats.prompt_tokens < 0.6 * plain.stats.prompt_tokens
    assert len(reused.prefix_cache) >= 1
