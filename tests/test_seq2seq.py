"""The encoder-decoder backend on a tiny random T5 built here (no downloads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from prompt_env.errors import LLMError, LLMSpecError, PromptTooLongError
from prompt_env.llm import load_llm

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

SENTENCES = [
    "review : a funny and moving film . sentiment : positive",
    "review : a dull and boring mess . sentiment : negative",
    "the movie was very good and not bad at all",
    "question : what is the capital of france ? answer : paris",
    "user : say hello assistant : hello there",
]
PROMPTS = [
    "review : a funny film . sentiment :",
    "review : a boring and dull mess that was not good at all . sentiment :",
    "question : what is the capital of france ? answer :",
]
CHOICES = ["positive", "negative", "very good", "not bad at all"]


def build_tiny_t5(directory: Path) -> None:
    """Save a randomly initialised two-layer T5 and a word-level tokenizer in ``directory``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    specials = ["<pad>", "</s>", "<unk>"]
    raw = Tokenizer(models.WordLevel(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=specials))
    raw.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", raw.token_to_id("</s>"))]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    torch.manual_seed(0)
    config = T5Config(
        vocab_size=raw.get_vocab_size(), d_model=32, d_kv=8, d_ff=64, num_layers=2,
        num_decoder_layers=2, num_heads=4, relative_attention_num_buckets=8,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
    )
    model = T5ForConditionalGeneration(config).eval()
    with torch.no_grad():  # sharp random logits that never pick the padding token
        model.lm_head.weight.normal_(0.0, 1.0)
        model.lm_head.weight[tokenizer.pad_token_id] = 0.0
    model.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tiny-t5")
    build_tiny_t5(directory)
    return directory


@pytest.fixture()
def llm(t5_dir: Path, tmp_path: Path) -> Any:
    return load_llm(f"hf:{t5_dir}", cache_path=str(tmp_path / "cache.sqlite"))


def manual_logprob(backend: Any, prompt: str, choice: str) -> float:
    """Sum of the choice's token log-probs, one plain forward pass per token."""
    tokenizer, model = backend.tokenizer, backend.model
    encoder_ids = torch.tensor([tokenizer(prompt).input_ids])
    choice_ids = tokenizer(choice, add_special_tokens=False).input_ids
    start = model.config.decoder_start_token_id
    total = 0.0
    with torch.inference_mode():
        for t, token in enumerate(choice_ids):
            decoder_ids = torch.tensor([[start, *choice_ids[:t]]])
            logits = model(input_ids=encoder_ids, decoder_input_ids=decoder_ids).logits[0, -1]
            total += float(torch.log_softmax(logits.double(), dim=-1)[token])
    return total


def test_load_llm_picks_the_seq2seq_backend(llm: Any) -> None:
    from prompt_env.llm.seq2seq import HFSeq2SeqLM

    assert isinstance(llm.inner, HFSeq2SeqLM)
    info = llm.describe()
    assert info["architecture"] == "encoder-decoder" and info["identity"].startswith("hf:")
    assert llm.count_tokens(PROMPTS[0]) == len(PROMPTS[0].split()) + 1  # words and </s>


def test_scores_are_exact_log_probs(llm: Any) -> None:
    scores = llm.score(PROMPTS, CHOICES)
    assert scores.shape == (len(PROMPTS), len(CHOICES)) and scores.dtype == np.float64
    assert np.all(np.isfinite(scores)) and np.all(scores <= 0)
    for i, prompt in enumerate(PROMPTS):
        for j, choice in enumerate(CHOICES):  # "very good" and "not bad at all" are multi-token
            expected = manual_logprob(llm.inner, prompt, choice)
            assert scores[i, j] == pytest.approx(expected, abs=1e-4)
    naive = llm.inner.score_naive(PROMPTS, CHOICES)
    assert np.abs(scores - naive).max() <= 1e-4


def test_batch_equals_one_at_a_time(llm: Any) -> None:
    for choices in (CHOICES, ["positive", "negative"]):  # multi-token rows, then single-token
        batch = llm.inner.score(PROMPTS, choices)
        alone = np.vstack([llm.inner.score([p], choices) for p in PROMPTS])
        assert np.abs(batch - alone).max() <= 1e-4
        assert np.abs(batch - llm.inner.score_naive(PROMPTS, choices)).max() <= 1e-4
    batch_text = llm.inner.generate(PROMPTS, max_new_tokens=6)
    assert batch_text == [llm.inner.generate([p], max_new_tokens=6)[0] for p in PROMPTS]


def test_generation_is_greedy_and_respects_limits_and_stop(llm: Any) -> None:
    backend = llm.inner
    first = backend.generate(PROMPTS, max_new_tokens=5)
    assert first == backend.generate(PROMPTS, max_new_tokens=5)
    assert first == list(reversed(backend.generate(list(reversed(PROMPTS)), max_new_tokens=5)))
    for text in first:
        assert len(backend.encode(text)) <= 5
    before = backend.stats.generated_tokens
    long = backend.generate(PROMPTS[:1], max_new_tokens=8)[0]
    unstopped = backend.stats.generated_tokens - before
    words = long.split()
    assert len(words) >= 2 and unstopped == 8, f"the tiny model stopped early: {long!r}"
    before = backend.stats.generated_tokens
    cut = backend.generate(PROMPTS[:1], max_new_tokens=8, stop=["zzz", " "])[0]
    assert cut == words[0]  # cut at the first space, the first stop string that occurs
    assert backend.stats.generated_tokens - before < unstopped  # and decoding stopped there
    chat = [{"role": "user", "content": "say hello"}]
    assert backend.prompt_text(chat) == "user: say hello"
    assert isinstance(backend.generate([chat], max_new_tokens=3)[0], str)


def test_second_identical_call_is_a_cache_hit(llm: Any) -> None:
    backend = llm.inner.stats  # the backend is shared by this process's wrappers: use deltas
    start = backend.model_calls
    scores = llm.score(PROMPTS, CHOICES)
    text = llm.generate(PROMPTS, max_new_tokens=4, stop=["."])
    model_calls, batches = backend.model_calls, backend.batches
    assert model_calls - start == 2 * len(PROMPTS)
    assert llm.stats.model_calls == 2 * len(PROMPTS) and llm.stats.batches >= 2
    assert np.array_equal(llm.score(PROMPTS, CHOICES), scores)
    assert llm.generate(PROMPTS, max_new_tokens=4, stop=["."]) == text
    assert backend.model_calls == model_calls and backend.batches == batches
    assert llm.stats.cache_hits == 2 * len(PROMPTS) and llm.stats.calls == 4 * len(PROMPTS)


def test_bad_input_gives_typed_errors(t5_dir: Path, tmp_path: Path) -> None:
    llm = load_llm({"backend": "hf", "model": str(t5_dir), "max_length": 8}, cache=False)
    with pytest.raises(PromptTooLongError, match=r"prompt 1 has \d+ tokens.*at most 8"):
        llm.score(["hello there", PROMPTS[1]], CHOICES)
    with pytest.raises(LLMError, match="empty"):
        llm.generate([""], max_new_tokens=2)
    with pytest.raises(LLMError, match="max_new_tokens"):
        llm.generate(["hello"], max_new_tokens=0)
    with pytest.raises(LLMSpecError, match="prefix_reuse"):
        load_llm({"backend": "hf", "model": str(t5_dir), "prefix_reuse": False}, cache=False)


def test_loading_failures_are_typed(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match="could not load transformers model"):
        load_llm(f"hf:{tmp_path}", cache=False)  # an empty directory
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(LLMError, match="no-such-architecture"):
        load_llm(f"hf:{tmp_path}", cache=False)
