"""Encoder-decoder task LLMs through transformers (T5, FLAN-T5, BART, ...).

Conventions, shared by scoring and generation:

* the **encoder** reads the prompt's text tokenized *with* the tokenizer's
  special tokens (T5 appends ``</s>``, BART wraps in ``<s> ... </s>``), as these
  models were trained; chats are rendered with the tokenizer's chat template
  when it has one, else as :func:`plain_chat_text` (one ``"role: content"``
  paragraph per message, separated by blank lines);
* the **decoder** starts from the model's ``decoder_start_token_id`` (its
  ``bos_token_id`` if that is unset). A choice is scored as its tokens
  ``tokenize(choice)`` (no special tokens, no end-of-sequence token) read after
  the start token, teacher-forced: the score is the sum of their log-probs.
  Greedy generation takes the argmax of the same distributions, step by step.

Batching: prompts are padded together for one encoder pass per batch, and all
(prompt, choice) rows of that batch share one decoder pass (one row per prompt
when every choice is a single token). The encoder reads at most ``max_length``
tokens (:func:`encoder_max_length`); a longer prompt raises
:class:`~prompt_env.errors.PromptTooLongError` naming the prompt and the limit.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np

from prompt_env.errors import LLMError, PromptTooLongError
from prompt_env.llm.base import (
    LLM,
    PromptInput,
    validate_choices,
    validate_prompts,
)
from prompt_env.llm.greedy import GreedyRows, consecutive_groups
from prompt_env.llm.threads import set_threads

TOKENS_PER_FORWARD = 4096
"""Rows x padded length per batch (encoder and decoder), to keep activations small on CPU."""
FALLBACK_MAX_LENGTH = 512
"""Encoder limit when neither the config nor the tokenizer gives one (T5's training length)."""
GENERATE_BATCH = 16
"""Prompts generated from together at most."""


def plain_chat_text(chat: list[dict[str, str]]) -> str:
    """A chat as plain text for models without a chat template: ``"role: content"`` per
    message, messages separated by a blank line."""
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in chat)


def encoder_max_length(model: Any, tokenizer: Any) -> int:
    """The most tokens the encoder reads: the config's ``max_position_embeddings`` or
    ``n_positions``, else the tokenizer's ``model_max_length`` when it is a real limit,
    else :data:`FALLBACK_MAX_LENGTH` (T5's relative positions have no hard limit)."""
    config = model.config
    for field in ("max_position_embeddings", "n_positions"):
        value = getattr(config, field, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < 1_000_000:
        return value
    return FALLBACK_MAX_LENGTH


class HFSeq2SeqLM(LLM):
    """An encoder-decoder LM from transformers, scored and generated on CPU (or GPU if given).

    Args:
        model: a transformers ``AutoModelForSeq2SeqLM`` model.
        tokenizer: its tokenizer.
        name: the name used in reports and errors.
        identity: a string that changes whenever the weights could (see ``hf_identity``).
        device: torch device the model is on (default: where its weights are).
        max_length: the most tokens the encoder reads (default: :func:`encoder_max_length`).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        identity: str,
        device: str | None = None,
        max_length: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self._identity = identity
        # where the weights are, unless told: every tensor of a call is made there
        self.device = device or str(next(model.parameters()).device)
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise LLMError(f"max_length must be a positive integer, got {max_length!r}")
        self.max_length = max_length or encoder_max_length(model, tokenizer)
        config = model.config
        generation = getattr(model, "generation_config", None)
        self.eos_ids = _token_ids(getattr(config, "eos_token_id", None),
                                  getattr(generation, "eos_token_id", None),
                                  getattr(tokenizer, "eos_token_id", None))
        self.pad_id = _first_id(getattr(config, "pad_token_id", None),
                                getattr(tokenizer, "pad_token_id", None), *sorted(self.eos_ids))
        self.start_id = _first_id(
            getattr(config, "decoder_start_token_id", None),
            getattr(generation, "decoder_start_token_id", None),
            getattr(config, "bos_token_id", None),
        )
        if self.start_id is None or self.pad_id is None:
            raise LLMError(
                f"model {name} has no decoder_start_token_id (nor bos_token_id) or no pad token; "
                "set decoder_start_token_id and pad_token_id in its config.json"
            )
        self._cache_kwarg = (
            "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        )

    # ------------------------------------------------------------------ helpers
    def identity(self) -> str:
        return self._identity

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "identity": self.identity(), "architecture": "encoder-decoder",
                "max_length": self.max_length}

    def prompt_text(self, prompt: PromptInput) -> str:
        """The exact text the encoder reads for ``prompt`` (see the module docstring for chats)."""
        if isinstance(prompt, str):
            return prompt
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                prompt, tokenize=False, add_generation_prompt=True
            )
        return plain_chat_text(prompt)

    def encode_prompt(self, prompt: PromptInput) -> list[int]:
        """Encoder token ids of ``prompt``, with the tokenizer's special tokens."""
        return list(self.tokenizer(self.prompt_text(prompt), add_special_tokens=True).input_ids)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without special tokens (how choices are read by the decoder)."""
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    def count_tokens(self, prompt: PromptInput) -> int:
        """Tokens the encoder reads for ``prompt``."""
        return len(self.encode_prompt(prompt))

    def _encode_checked(self, prompts: list[PromptInput], decoder_tokens: int) -> list[list[int]]:
        """Encoder ids of each prompt; typed errors for empty or too long prompts."""
        if decoder_tokens + 1 > self.max_length:
            raise PromptTooLongError(
                f"the answer needs {decoder_tokens} decoder tokens; model {self.name} decodes at "
                f"most {self.max_length - 1}. Use shorter choices or fewer max_new_tokens."
            )
        special = int(self.tokenizer.num_special_tokens_to_add(pair=False))
        encoded = []
        for i, prompt in enumerate(prompts):
            ids = self.encode_prompt(prompt)
            if len(ids) <= special:
                raise LLMError(f"prompt {i} is empty after tokenization; give it some text")
            if len(ids) > self.max_length:
                raise PromptTooLongError(
                    f"prompt {i} has {len(ids)} tokens; the encoder of model {self.name} reads at "
                    f"most {self.max_length}. Shorten the prompt or use fewer exemplars."
                )
            encoded.append(ids)
        return encoded

    def _padded(self, rows: list[list[int]]) -> tuple[Any, Any]:
        """Right-padded ids and attention mask of ``rows``, on the model's device."""
        import torch

        width = max(len(r) for r in rows)
        ids = [list(tokens) + [self.pad_id] * (width - len(tokens)) for tokens in rows]
        mask = [[1] * len(tokens) + [0] * (width - len(tokens)) for tokens in rows]
        return (torch.tensor(ids, dtype=torch.long, device=self.device),
                torch.tensor(mask, dtype=torch.long, device=self.device))

    def _encoder(self, ids: Any, mask: Any) -> Any:
        """Last hidden states of the encoder over padded ``ids``."""
        return self.model.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state

    def _decoder_logits(self, hidden: Any, enc_mask: Any, dec_ids: Any, dec_mask: Any = None, *,
                        use_cache: bool = False, cache: Any = None) -> tuple[Any, Any]:
        """Decoder logits (float32) given encoder states, and the key/value cache it returns
        with ``use_cache`` (pass it back as ``cache`` to decode the next step only)."""
        kwargs: dict[str, Any] = {
            "encoder_outputs": (hidden,), "attention_mask": enc_mask, "decoder_input_ids": dec_ids,
            "use_cache": use_cache,
        }
        if dec_mask is not None:
            kwargs["decoder_attention_mask"] = dec_mask
        if cache is not None:
            kwargs[self._cache_kwarg] = cache
        out = self.model(**kwargs)
        new_cache = None
        if use_cache:
            new_cache = getattr(out, "cache", None)
            if new_cache is None:  # transformers before the rename to "cache"
                new_cache = getattr(out, "past_key_values", None)
        return out.logits.float(), new_cache

    @staticmethod
    def _chunks(order: list[int], cost: Any) -> list[list[int]]:
        """Consecutive groups of ``order`` whose ``cost(group)`` stays within the token budget."""
        return consecutive_groups(order, lambda group: cost(group) <= TOKENS_PER_FORWARD)

    # ------------------------------------------------------------------ scoring
    def _score(self, prompts: list[PromptInput], choices: list[str]) -> np.ndarray:
        choice_ids = [self.encode(c) for c in choices]
        for j, ids in enumerate(choice_ids):
            if not ids:
                raise LLMError(f"choice {j} ({choices[j]!r}) has no tokens for model {self.name}")
        contexts = self._encode_checked(prompts, max(len(c) for c in choice_ids))
        import torch

        single = all(len(c) == 1 for c in choice_ids)
        rows_per_prompt = 1 if single else len(choice_ids)
        dec_width = 1 + max(len(c) for c in choice_ids)

        def cost(group: list[int]) -> int:
            enc_width = max(len(contexts[i]) for i in group)
            return len(group) * max(enc_width, rows_per_prompt * dec_width)

        result = np.zeros((len(prompts), len(choices)), dtype=np.float64)
        order = sorted(range(len(prompts)), key=lambda i: len(contexts[i]))
        set_threads()
        with torch.inference_mode():
            for chunk in self._chunks(order, cost):
                result[chunk] = self._score_chunk([contexts[i] for i in chunk], choice_ids, single)
        return result

    def _score_chunk(self, contexts: list[list[int]], choice_ids: list[list[int]],
                     single: bool) -> np.ndarray:
        """One encoder pass over ``contexts`` and one decoder pass over all their choice rows."""
        import torch

        enc_ids, enc_mask = self._padded(contexts)
        hidden = self._encoder(enc_ids, enc_mask)
        n, k = len(contexts), len(choice_ids)
        if single:
            dec_rows = [[self.start_id]] * n
            row_of = torch.arange(n, device=hidden.device)
        else:
            dec_rows = [[self.start_id, *c[:-1]] for _ in range(n) for c in choice_ids]
            row_of = torch.arange(n, device=hidden.device).repeat_interleave(k)
        dec_ids, dec_mask = self._padded(dec_rows)
        logits, _ = self._decoder_logits(hidden[row_of], enc_mask[row_of], dec_ids, dec_mask)
        logp = torch.log_softmax(logits, dim=-1)
        self.stats.batches += 1
        self.stats.prompt_tokens += int(enc_mask.sum()) + int(dec_mask.sum())
        out = np.zeros((n, k), dtype=np.float64)
        if single:
            first = torch.tensor([c[0] for c in choice_ids], device=logp.device)
            out[:] = logp[:, 0, first].double().cpu().numpy()
            return out
        picked = []  # read back once for the whole chunk
        for r in range(n * k):
            cont = torch.tensor(choice_ids[r % k], device=logp.device)
            positions = torch.arange(len(cont), device=logp.device)
            picked.append(logp[r, positions, cont].double().sum())
        out[:] = torch.stack(picked).cpu().numpy().reshape(n, k)
        return out

    def score_naive(self, prompts: Sequence[PromptInput], choices: Sequence[str]) -> np.ndarray:
        """Reference path: one unpadded full forward pass per (prompt, choice)."""
        import torch

        prompts = validate_prompts(prompts)
        choices = validate_choices(choices)
        choice_ids = [self.encode(c) for c in choices]
        contexts = self._encode_checked(prompts, max(len(c) for c in choice_ids))
        out = np.zeros((len(prompts), len(choices)), dtype=np.float64)
        set_threads()
        with torch.inference_mode():
            for i, ctx in enumerate(contexts):
                for j, cont in enumerate(choice_ids):
                    logits = self.model(
                        input_ids=torch.tensor([ctx], device=self.device),
                        decoder_input_ids=torch.tensor([[self.start_id, *cont[:-1]]],
                                                       device=self.device),
                    ).logits[0].float()
                    logp = torch.log_softmax(logits, dim=-1)
                    picked = logp[torch.arange(len(cont), device=logp.device),
                                  torch.tensor(cont, device=logp.device)]
                    out[i, j] = float(picked.double().sum().cpu())
                    self.stats.batches += 1
                    self.stats.prompt_tokens += len(ctx) + len(cont)
        self.stats.calls += len(prompts)
        self.stats.model_calls += len(prompts)
        return out

    # --------------------------------------------------------------- generation
    def _generate(self, prompts: list[PromptInput], max_new_tokens: int, stop: list[str] | None) -> list[str]:
        contexts = self._encode_checked(prompts, max_new_tokens)
        stops = [s for s in (stop or []) if s]
        import torch

        def cost(group: list[int]) -> int:
            width = max(len(contexts[i]) for i in group) + max_new_tokens
            return len(group) * width if len(group) <= GENERATE_BATCH else TOKENS_PER_FORWARD + 1

        outputs = [""] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: len(contexts[i]))
        set_threads()
        with torch.inference_mode():
            for chunk in self._chunks(order, cost):
                texts = self._generate_chunk([contexts[i] for i in chunk], max_new_tokens, stops)
                for i, text in zip(chunk, texts, strict=True):
                    outputs[i] = text
        return outputs

    def _generate_chunk(self, contexts: list[list[int]], max_new_tokens: int,
                        stops: list[str]) -> list[str]:
        """Greedy decoding of padded ``contexts`` together, with a key/value cache; a row
        stops at the end-of-sequence token or once its text contains a stop string."""
        import torch

        enc_ids, enc_mask = self._padded(contexts)
        hidden = self._encoder(enc_ids, enc_mask)
        n = len(contexts)
        found = GreedyRows(n, self.eos_ids, self._decode, stops)
        step_ids = torch.full((n, 1), self.start_id, dtype=torch.long, device=hidden.device)
        cache: Any = None
        for _ in range(max_new_tokens):
            logits, cache = self._decoder_logits(hidden, enc_mask, step_ids, use_cache=True,
                                                 cache=cache)
            best = logits[:, -1].argmax(dim=-1).tolist()
            if found.add(best):
                break
            step_ids = torch.tensor([[t] for t in best], dtype=torch.long, device=hidden.device)
        self.stats.batches += 1
        self.stats.prompt_tokens += int(enc_mask.sum())
        self.stats.generated_tokens += sum(len(t) for t in found.tokens)
        return found.texts()

    def _decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    # --------------------------------------------------------------- embedding
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled last encoder hidden states (float32), one row per text."""
        import torch

        if not texts:
            width = getattr(self.model.config, "d_model", None) or self.model.config.hidden_size
            return np.zeros((0, int(width)), dtype=np.float32)
        limit = min(self.max_length, 512)
        encoded = [self.encode_prompt(t)[:limit] or [self.pad_id] for t in texts]
        ids, mask = self._padded(encoded)
        set_threads()
        with torch.inference_mode():
            hidden = self._encoder(ids, mask).float()
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return pooled.cpu().numpy().astype(np.float32)


def _token_ids(*candidates: Any) -> set[int]:
    """Every token id among the candidates (ints or lists of ints)."""
    ids: set[int] = set()
    for value in candidates:
        values = value if isinstance(value, (list, tuple)) else [value]
        ids.update(v for v in values if isinstance(v, int))
    return ids


def _first_id(*candidates: Any) -> int | None:
    """The first candidate that is a token id (the first of a list of ids)."""
    for value in candidates:
        if isinstance(value, (list, tuple)) and value:
            value = value[0]
        if isinstance(value, int):
            return value
    return None
