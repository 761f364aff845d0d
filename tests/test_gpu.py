"""Device and dtype of the in-process backends: the spec forms on any machine, and the CUDA
runs (``gpu`` marker, skipped without CUDA; ``make test-gpu``) on a tiny random Llama.

The CUDA tests compare against the same tiny model on the CPU: random weights make
accuracy meaningless, but agreement between devices, engines and dtypes is real.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prompt_env.errors import LLMSpecError
from prompt_env.llm import check_device_dtype, load_llm, normalize_spec, resolve_device
from prompt_env.llm.devices import dtype_identity

CUDA = torch.cuda.is_available()

PROMPTS = [
    "Review: a masterpiece , funny and moving .\nSentiment:",
    "Review: the worst film i have ever seen .\nSentiment:",
    "Review: dull .\nSentiment:",
    "Classify the review.\nReview: i loved every minute of it , a gorgeous and witty film .\nSentiment:",
    "Classify the review.\nReview: a tedious , clumsy film .\nSentiment:",
    "The capital of France is",
]


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> str:
    """A 2-layer random Llama in the default model's vocabulary, saved with its tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from prompt_env.llm.hf_loading import load_default

    tokenizer = load_default().tokenizer
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, initializer_range=0.2,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    directory = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return str(directory)


def hf(model_dir: str, **options: object):
    return load_llm({"backend": "hf", "model": model_dir, **options}, cache=False)


def scored(llm) -> list[np.ndarray]:
    """Single-token and multi-token choices, in one bulk call and one plain call."""
    return [*llm.score_many([(PROMPTS, [" positive", " negative"]),
                             (PROMPTS[:3], [" great movie", " bad", " it was fine"])]),
            llm.score(PROMPTS[2:], [" yes", " no"])]


# --------------------------------------------------------------- spec forms, any machine


@pytest.mark.parametrize("spec", [
    {"backend": "default", "device": "cuda", "dtype": "bfloat16"},
    '{"backend": "default", "device": "cuda", "dtype": "bfloat16"}',
    {"backend": "hf", "model": "/some/model", "device": "cuda:1", "dtype": "float16"},
    '{"backend":"hf","model":"/some/model","device":"auto","dtype":"float32"}',
    {"backend": "default", "device": "cpu"},
    {"backend": "default", "device": "mps"},
])
def test_device_and_dtype_in_every_spec_form(spec):
    from agents.cli.checks import check_llm_spec

    normalized = normalize_spec(spec)
    assert normalized["backend"] in {"default", "hf"}
    assert check_llm_spec(spec, normalized=True) == normalized
    assert normalized.get("device", "cpu") in {"cpu", "cuda", "cuda:1", "auto", "mps"}


@pytest.mark.parametrize(("spec", "field"), [
    ({"backend": "default", "device": "gpu"}, "device"),
    ({"backend": "default", "device": "cuda:x"}, "device"),
    ({"backend": "default", "device": 0}, "device"),
    ({"backend": "default", "dtype": "fp16"}, "dtype"),
    ({"backend": "default", "dtype": "float64"}, "dtype"),
    ('{"backend": "hf", "model": "m", "dtype": "int8"}', "dtype"),
    ({"backend": "fake", "device": "cuda"}, "device"),
    ({"backend": "openai", "base_url": "http://127.0.0.1:1", "model": "m", "dtype": "bfloat16"}, "dtype"),
])
def test_bad_device_or_dtype_is_a_typed_error_naming_the_field(spec, field):
    with pytest.raises(LLMSpecError, match=f"field '{field}'"):
        normalize_spec(spec)


def test_the_cli_check_refuses_a_bad_dtype():
    from agents.cli.checks import check_llm_spec

    with pytest.raises(LLMSpecError, match="'dtype'"):
        check_llm_spec('{"backend": "default", "dtype": "half"}')


def test_auto_device_resolves_to_what_torch_sees():
    assert resolve_device("auto") == ("cuda" if CUDA else "cpu")
    assert resolve_device("cpu") == "cpu"
    if CUDA:
        assert resolve_device("cuda:1") == "cuda:1"
    else:  # a CUDA device this torch cannot see fails at load, by name, not deep in torch
        with pytest.raises(LLMSpecError, match="'device' is 'cuda:1', but torch .* sees no CUDA device"):
            resolve_device("cuda:1")
    check_device_dtype({"backend": "default", "device": "auto"})  # valid, nothing loaded


@pytest.mark.skipif(CUDA, reason="checks the CPU fallback of device='auto'")
def test_auto_device_loads_on_the_cpu_here(tiny_llama):
    llm = hf(tiny_llama, device="auto")
    assert llm.device == "cpu"
    assert str(next(llm.model.parameters()).device) == "cpu"


def test_a_backend_runs_where_its_weights_are_unless_told(tiny_llama):
    from prompt_env.llm.hf import HFCausalLM

    loaded = hf(tiny_llama)
    assert HFCausalLM(loaded.model, loaded.tokenizer, name="tiny", identity="tiny").device == "cpu"


def test_dtype_changes_the_identity_and_the_device_does_not(tiny_llama):
    assert dtype_identity("float32") == ""
    assert dtype_identity("bfloat16") != dtype_identity("float16")
    float32 = hf(tiny_llama)
    bf16 = hf(tiny_llama, dtype="bfloat16")
    auto = hf(tiny_llama, device="auto", dtype="float32")
    assert float32.identity() != bf16.identity()
    assert bf16.identity().endswith("|dtype=bfloat16")
    assert auto.identity() == float32.identity()
    assert str(next(bf16.model.parameters()).dtype) == "torch.bfloat16"


def test_default_spec_takes_device_and_dtype():
    llm = load_llm({"backend": "default", "device": "auto", "dtype": "float32"}, cache=False)
    assert llm.device == resolve_device("auto")
    with pytest.raises(LLMSpecError, match="bogus"):
        load_llm({"backend": "default", "bogus": 1}, cache=False)


def test_fused_engine_is_float32_only(tiny_llama):
    """bf16/fp16: "auto" falls back to the transformers engine, "fused" by name is refused."""
    assert hf(tiny_llama, dtype="bfloat16").describe()["engine"] == "transformers"
    assert hf(tiny_llama).describe()["engine"] == "fused"
    with pytest.raises(LLMSpecError, match="float32 weights"):
        hf(tiny_llama, dtype="bfloat16", engine="fused")


@pytest.mark.parametrize("choices", [[" positive", " negative"], [" great film", " bad"]])
def test_the_fused_engine_makes_every_tensor_on_the_model_device(choices):
    """On the meta device (no data, any machine): a call that gets as far as reading the
    log-probs back made every tensor of the pass on the model's device; a tensor made on
    the CPU fails earlier, as it did on CUDA before (positions against inv_freq)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from prompt_env.llm.hf import HFCausalLM
    from prompt_env.llm.hf_loading import load_default

    tokenizer = load_default().tokenizer
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    llm = HFCausalLM(model, tokenizer, name="meta", identity="meta", engine="fused")
    assert llm.device == "meta"
    with pytest.raises(NotImplementedError, match="Cannot copy out of meta tensor"):
        llm.score_many([(PROMPTS, choices), (PROMPTS[:2], [" a", " b"])])


def bf16_rankings_agree(tiny_llama: str, device: str) -> None:
    """bf16 and float32 put the choices in the same order on (almost) every prompt."""
    exact = hf(tiny_llama, device=device, engine="transformers")
    half = hf(tiny_llama, device=device, dtype="bfloat16")
    choices = [" positive", " negative", " neutral"]
    prompts = [p + suffix for p in PROMPTS for suffix in ("", " I think", " Answer:")]
    a, b = exact.score(prompts, choices), half.score(prompts, choices)
    assert a.shape == b.shape == (len(prompts), 3)
    agree = float(np.mean(np.argmax(a, 1) == np.argmax(b, 1)))
    assert agree >= 0.8, (agree, np.abs(a - b).max())
    assert np.abs(a - b).max() < 0.5


def test_bf16_rankings_agree_with_float32_on_the_cpu(tiny_llama):
    bf16_rankings_agree(tiny_llama, "cpu")


# --------------------------------------------------------------------- CUDA, gpu marker


@pytest.mark.parametrize("engine", ["fused", "transformers"])
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_cuda_scoring_equals_cpu(tiny_llama, engine):
    cpu, cuda = hf(tiny_llama, engine=engine), hf(tiny_llama, engine=engine, device="cuda")
    assert cuda.describe()["engine"] == engine
    assert str(next(cuda.model.parameters()).device).startswith("cuda")
    for a, b in zip(scored(cpu), scored(cuda), strict=True):
        assert isinstance(b, np.ndarray) and b.dtype == np.float64
        np.testing.assert_allclose(a, b, atol=1e-3)
    assert np.array_equal(np.argmax(scored(cpu)[0], 1), np.argmax(scored(cuda)[0], 1))
    # the naive reference and the prefix-cache path (second call) on the device too
    np.testing.assert_allclose(cuda.score_naive(PROMPTS[:2], [" a b", " c"]),
                               cpu.score_naive(PROMPTS[:2], [" a b", " c"]), atol=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_a_backend_made_from_a_cuda_model_runs_there(tiny_llama):
    from prompt_env.llm.hf import HFCausalLM

    loaded = hf(tiny_llama, device="cuda")
    bare = HFCausalLM(loaded.model, loaded.tokenizer, name="tiny", identity="tiny")  # no device given
    assert bare.device.startswith("cuda")
    np.testing.assert_allclose(bare.score(PROMPTS, [" a", " b c"]), loaded.score(PROMPTS, [" a", " b c"]))


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_cuda_bf16_rankings_agree_with_float32(tiny_llama):
    bf16_rankings_agree(tiny_llama, "cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_cuda_generation_and_embeddings(tiny_llama):
    cpu, cuda = hf(tiny_llama), hf(tiny_llama, device="cuda")
    texts = cuda.generate(PROMPTS[:3], max_new_tokens=5, stop=["\n"])
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    assert cuda.stats.generated_tokens > 0
    np.testing.assert_allclose(cuda.embed(["hello world", "a longer text here"]),
                               cpu.embed(["hello world", "a longer text here"]), atol=1e-4)
    bf16 = hf(tiny_llama, device="cuda", dtype="bfloat16")
    assert bf16.embed(["hello"]).dtype == np.float32
    assert len(bf16.generate(PROMPTS[:2], max_new_tokens=3)) == 2


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("engine", ["fused", "transformers"])
def test_cuda_vector_env_steps(tiny_llama, shared_data_dir, engine):
    import gymnasium as gym

    import prompt_env  # noqa: F401 - registers the env ids

    spec = {"backend": "hf", "model": tiny_llama, "device": "cuda", "engine": engine}
    envs = gym.make_vec("PromptEnv/SST2-Select-v0", num_envs=4, vectorization_mode="vector_entry_point",
                        llm=spec, encoder="llm", episode_length=3, max_examples=16)
    try:
        obs, _ = envs.reset(seed=0)
        assert np.all(np.isfinite(obs))
        for _ in range(4):
            obs, rewards, _, _, _ = envs.step(envs.action_space.sample())
            assert rewards.shape == (4,) and np.all(np.isfinite(rewards))
    finally:
        envs.close()
