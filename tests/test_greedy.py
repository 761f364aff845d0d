"""Greedy generation of the causal backend against transformers' own ``generate``, on the
real default model, and the bookkeeping both in-process backends share."""

from __future__ import annotations

import pytest

from prompt_env.llm.base import cut_at_stop
from prompt_env.llm.greedy import GreedyRows, consecutive_groups
from prompt_env.llm.hf import HFCausalLM

REVIEWS = [
    "dull .",
    "a masterpiece : funny , moving and beautifully acted .",
    "the worst film i have ever seen , a total waste of time .",
    "an intelligent , funny and very humane film that lingers long after the credits roll , "
    "with performances that feel lived in and a script that never talks down to its audience .",
    "i loved every minute .",
    " ".join(["a sprawling , overlong and often confused epic that nonetheless has moments of "
              "real beauty ,"] * 8) + " and then it ends .",
]
INSTRUCTION = ("Summarize each movie review in a few words.\n\n"
               "Review: a gorgeous , witty movie .\nSummary: witty and gorgeous\n\n")


def alone(backend: HFCausalLM, prompt: str, max_new_tokens: int, stop: list[str] | None) -> str:
    """transformers' greedy ``generate`` on one prompt, no batch and no padding, cut at the
    first stop string after the answer's first visible character: the reference."""
    import torch

    ids = torch.tensor([backend.encode(prompt)])
    eos = backend.tokenizer.eos_token_id
    with torch.inference_mode():
        out = backend.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                     max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                     pad_token_id=eos, eos_token_id=[eos])
    tokens = [t for t in out[0, ids.shape[1]:].tolist() if t != eos]
    return cut_at_stop(backend.tokenizer.decode(tokens, skip_special_tokens=True), stop)


@pytest.mark.parametrize("prefix_reuse", [True, False])
def test_batched_greedy_answers_are_those_of_each_prompt_alone(default_backend, prefix_reuse):
    """Prompts of very different lengths (3 to 150 tokens after a shared instruction) are read
    in several buckets, laid side by side and decoded together: each answer is exactly what
    transformers' generate gives for that prompt on its own, with and without a stop string."""
    llm = HFCausalLM(default_backend.model, default_backend.tokenizer, name="t", identity="t",
                     prefix_reuse=prefix_reuse)
    prompts = [f"{INSTRUCTION}Review: {r}\nSummary:" for r in REVIEWS] + [
        f"Is this review good or bad? {REVIEWS[1]}\nAnswer:"]
    for stop in (["\n"], None):
        before = llm.stats.batches
        got = llm.generate(prompts, max_new_tokens=12, stop=stop)
        assert got == [alone(default_backend, p, 12, stop) for p in prompts]
        assert llm.stats.batches - before >= 3  # the prompt pass ran in buckets
    assert all(got[:len(REVIEWS)])  # every few-shot row answered something


def test_rows_finish_at_the_end_token_or_a_stop_string():
    text = {1: "a", 2: "b\n", 3: "c"}
    rows = GreedyRows(3, {0}, lambda tokens: "".join(text[t] for t in tokens), ["\n"])
    assert not rows.add([1, 0, 1])  # row 1 ends (the end token is not kept)
    assert not rows.add([2, 3, 3])  # row 0 meets the stop string
    assert not rows.add([3, 1, 3])  # finished rows take no more tokens
    assert rows.add([3, 3, 0])
    assert rows.tokens == [[1, 2], [], [1, 3, 3]] and rows.texts() == ["ab", "", "acc"]


def test_whitespace_before_an_answer_never_ends_it():
    """A stop string counts from the answer's first visible character on: a row that opens with
    a newline under a newline stop goes on, and ends at the newline after its text."""
    text = {1: "\n", 2: " ", 3: "yes", 4: "\n\n"}
    rows = GreedyRows(2, {0}, lambda tokens: "".join(text[t] for t in tokens), ["\n"])
    assert not rows.add([1, 2]) and not rows.add([4, 3]) and not rows.add([3, 1])
    assert rows.done == [False, True] and rows.add([1, 0])
    assert rows.texts() == ["\n\n\nyes", " yes"]
    assert cut_at_stop("\n\nA summary.\nMore", ["\n"]) == "\n\nA summary."
    assert cut_at_stop(" \n", ["\n"]) == " \n" and cut_at_stop("a\nb", ["\n"]) == "a"


def test_a_model_that_opens_with_a_newline_still_answers(default_backend, shared_data_dir):
    """Real XSum articles under the task's manual prompt: the default model often opens its
    summary with a newline, which a newline stop used to turn into an empty answer. Every
    answer now has text, and each equals generate's on that prompt alone."""
    from prompt_env.tasks import load_task

    task = load_task(str(shared_data_dir / "summarization" / "xsum_100.jsonl"))
    prompt = task.prompt_pool.candidates[0]
    texts = [default_backend.prompt_text(prompt.render(e, task)) for e in task.split("test")[:4]]
    raw = [alone(default_backend, t, 12, None) for t in texts]
    assert any(r.startswith("\n") for r in raw)  # the case at stake occurs on these articles
    got = default_backend.generate(texts, 12, ["\n"])
    assert got == [alone(default_backend, t, 12, ["\n"]) for t in texts] and all(g.strip() for g in got)


def test_consecutive_groups_grow_while_they_fit():
    assert consecutive_groups([5, 1, 2, 9, 3], lambda g: len(g) <= 2) == [[5, 1], [2, 9], [3]]
    assert consecutive_groups([4, 4, 4], lambda g: False) == [[4], [4], [4]]  # one always stands
    assert consecutive_groups([], lambda g: True) == []


@pytest.mark.parametrize("family", ["gpt2", "qwen2", "gemma2"])
def test_other_architectures_generate_what_generate_gives(default_backend, family):
    """Learned absolute positions (GPT-2), rotary with grouped keys (Qwen2), and sliding-window
    layers beside full ones (Gemma2), random weights in tiny shapes: batched answers equal
    transformers' generate on each prompt alone."""
    import torch
    from transformers import (
        Gemma2Config,
        Gemma2ForCausalLM,
        GPT2Config,
        GPT2LMHeadModel,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    tokenizer = default_backend.tokenizer
    ids = {"vocab_size": len(tokenizer), "bos_token_id": tokenizer.bos_token_id,
           "eos_token_id": tokenizer.eos_token_id}
    torch.manual_seed(0)
    if family == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(n_positions=512, n_embd=32, n_layer=2, n_head=2, **ids))
    elif family == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                             num_attention_heads=4, num_key_value_heads=2,
                                             max_position_embeddings=512, **ids))
    else:
        model = Gemma2ForCausalLM(Gemma2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                               num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                               max_position_embeddings=512, sliding_window=4096, **ids))
    prompts = [f"{INSTRUCTION}Review: {r}\nSummary:" for r in REVIEWS]
    for prefix_reuse in (True, False):
        llm = HFCausalLM(model.eval(), tokenizer, name=family, identity=family, prefix_reuse=prefix_reuse)
        assert llm.generate(prompts, max_new_tokens=8) == [alone(llm, p, 8, None) for p in prompts]


def test_the_decode_writes_new_tokens_into_room_allocated_once(default_backend):
    """The decode's cache holds the prompt's keys and values and writes each new token's into
    the room after them, in place: what attention reads equals the concatenation, and no
    layer's storage moves (transformers' DynamicLayer copies the whole cache per token)."""
    import torch

    llm = HFCausalLM(default_backend.model, default_backend.tokenizer, name="t", identity="t")
    config = default_backend.model.config
    shape = (2, config.num_key_value_heads, 9, config.hidden_size // config.num_attention_heads)
    room = [(torch.randn(shape), torch.randn(shape)) for _ in range(config.num_hidden_layers)]
    cache = llm._decode_cache(room, 5)
    assert cache.get_seq_length() == 5
    storage = [layer.keys.data_ptr() for layer in cache.layers]
    for n in range(6, 10):
        new_k, new_v = torch.randn(*shape[:2], 1, shape[3]), torch.randn(*shape[:2], 1, shape[3])
        keys, values = cache.layers[0].update(new_k, new_v)
        assert keys.shape[2] == n and torch.equal(keys[:, :, -1:], new_k) and torch.equal(values[:, :, -1:], new_v)
        assert torch.equal(keys[:, :, :5], room[0][0][:, :, :5])
    assert [layer.keys.data_ptr() for layer in cache.layers] == storage
