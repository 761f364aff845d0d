"""Soft prompts: virtual tokens trained by gradient descent through the frozen task model.

The white-box reference of the RL prompt papers: prompt tuning (Lester et al.
2021) and prefix tuning (Li & Liang 2021), built on Hugging Face ``peft``
(``PromptTuningConfig`` prepends N trainable input embeddings, initialised
from N sampled vocabulary embeddings; ``PrefixTuningConfig`` learns N key/value
pairs per layer, initialised from the model's keys and values of N sampled tokens). The task model's weights stay frozen; only those are learned.

What the model reads is the task's manual prompt rendered exactly as
:mod:`prompt_env.scoring` renders it, with the virtual tokens in front, and
the loss follows the task's scoring convention:

* classification: the log-probability of each label word of the prompt's
  verbalizer after the rendering (summed over its tokens), and cross-entropy
  over those label scores;
* generation: the teacher-forced negative log-likelihood (mean per token) of
  the first reference after the rendering, followed by the newline a plain
  prompt stops at (a chat prompt: the end-of-sequence token).

Scores use the same convention and the task's rewards: label log-probs for
classification, greedy generation cut at the first line for generation.

Cost is counted in :attr:`SoftPrompt.counts`, per (prompt, input) pair through
the model: ``forward_backward`` (training pairs: a forward and a backward pass
each), ``forward`` (pairs scored without gradients: dev losses, label scores)
and ``generated`` (pairs answered by greedy generation).

Files are agent files (:mod:`agents.checkpoint`: safetensors with a JSON
header, no pickle); the agent name is the method (``"soft-prompt"`` or
``"prefix"``), the arrays are peft's adapter state.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from agents.checkpoint import read_checkpoint, read_checkpoint_header, write_checkpoint
from prompt_env.errors import CheckpointError, PromptEnvError, PromptTooLongError
from prompt_env.llm import normalize_spec
from prompt_env.llm.base import cut_at_stop, stopped
from prompt_env.llm.threads import set_threads
from prompt_env.prompts import Prompt
from prompt_env.scoring import PLAIN_STOP, clean_generation, default_max_new_tokens, resolve_reward
from prompt_env.tasks.base import Example, Task

METHODS = ("soft-prompt", "prefix")
"""``soft-prompt``: peft prompt tuning; ``prefix``: peft prefix tuning."""
WHITE_BOX_BACKENDS = ("default", "hf")
"""LLM spec backends whose weights and gradients live in this process."""
TOKENS_PER_CHUNK = 2048
"""Rows x padded length per forward pass (bounds activation memory for the backward pass)."""

Row = tuple[list[int], list[int], list[int]]
"""(token ids, positions whose next-token log-probs are read, the tokens read there)."""


class WhiteBoxError(PromptEnvError, ValueError):
    """A white-box policy was asked to run on an LLM whose weights it cannot reach."""


def require_white_box(llm_spec: str | dict[str, Any], method: str) -> None:
    """Raise :class:`WhiteBoxError` unless ``llm_spec`` is a local transformers model."""
    backend = normalize_spec(llm_spec)["backend"]
    if backend not in WHITE_BOX_BACKENDS:
        raise WhiteBoxError(
            f"{method} is a white-box policy: it trains virtual tokens by backpropagating through "
            f"the task model, so it needs the model's weights and gradients in this process. The "
            f"LLM spec {llm_spec!r} ({backend} backend) only answers scoring and generation "
            "requests; run it with llm='default' or 'hf:<local causal model>' instead."
        )


def causal_model(llm: Any, method: str) -> Any:
    """The :class:`~prompt_env.llm.hf.HFCausalLM` behind ``llm`` (a CachedLLM or the backend)."""
    from prompt_env.llm.hf import HFCausalLM

    inner = getattr(llm, "inner", llm)
    if not isinstance(inner, HFCausalLM):
        raise WhiteBoxError(
            f"{method} is a white-box policy for causal transformers models; the task LLM "
            f"{getattr(inner, 'name', inner)!r} is a {type(inner).__name__}, whose weights and "
            "gradients it cannot use. Use llm='default' or 'hf:<local causal model>'."
        )
    return inner


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence transformers' and peft's deprecation chatter around their calls."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


class SoftPrompt:
    """N virtual tokens (peft) in front of a task's manual prompt, on a frozen causal LM."""

    def __init__(self, llm: Any, task: Task, prompt: Prompt, *, method: str = "soft-prompt",
                 num_virtual_tokens: int = 8, seed: int = 0) -> None:
        import torch
        from peft import (
            PrefixTuningConfig,
            PromptTuningConfig,
            PromptTuningInit,
            TaskType,
            get_peft_model,
        )

        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if num_virtual_tokens < 1:
            raise ValueError(f"num_virtual_tokens must be >= 1, got {num_virtual_tokens}")
        self.hf = causal_model(llm, method)
        self.task, self.prompt, self.method, self.seed = task, prompt, method, seed
        self.num_virtual_tokens = num_virtual_tokens
        self.counts = {"forward_backward": 0, "forward": 0, "generated": 0}
        config: Any
        if method == "soft-prompt":
            config = PromptTuningConfig(task_type=TaskType.CAUSAL_LM,
                                        num_virtual_tokens=num_virtual_tokens,
                                        prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB)
        else:
            config = PrefixTuningConfig(task_type=TaskType.CAUSAL_LM,
                                        num_virtual_tokens=num_virtual_tokens)
        with torch.random.fork_rng(devices=[]), _quiet():  # seeded, leaving torch's RNG alone
            torch.manual_seed(seed)  # the initial virtual tokens
            self.model = get_peft_model(self.hf.model, config)
        # prompt tuning puts the virtual tokens in the sequence; prefix tuning in the cache
        self.offset = num_virtual_tokens if method == "soft-prompt" else 0
        if method == "prefix":
            self._init_prefix()
        self._choice_ids = ([self.hf.encode(c) for c in prompt.choices()]
                            if task.kind == "classification" else [])

    def _init_prefix(self) -> None:
        """Li & Liang's initialisation: the keys and values of N sampled vocabulary tokens, as
        the frozen model computes them (peft's default, N(0, 1) keys, swamps the attention)."""
        import torch

        generator = torch.Generator().manual_seed(self.seed)  # drawn on the CPU: same tokens on any device
        ids = torch.randint(0, int(self.hf.model.config.vocab_size), (1, self.num_virtual_tokens),
                            generator=generator)
        with torch.no_grad(), _quiet():
            out = self.hf.model(input_ids=ids.to(self.hf.device), use_cache=True)
            cache = getattr(out, "cache", None) or out.past_key_values
            layers = torch.stack([torch.stack([layer.keys[0], layer.values[0]])
                                  for layer in cache.layers])  # (layers, 2, heads, N, head dim)
            weight = self.model.prompt_encoder[self.model.active_adapter].embedding.weight
            weight.copy_(layers.permute(3, 0, 1, 2, 4).reshape(self.num_virtual_tokens, -1))

    # ------------------------------------------------------------------ rows
    def context_ids(self, example: Example) -> list[int]:
        """Token ids of the manual prompt rendered on ``example`` (as the scorer renders it)."""
        ids = self.hf.encode(self.hf.prompt_text(self.prompt.render(example, self.task)))
        if len(ids) + self.num_virtual_tokens + 1 > self.hf.max_length:
            raise PromptTooLongError(
                f"input {example.source!r} has {len(ids)} prompt tokens + {self.num_virtual_tokens} "
                f"virtual ones; {self.hf.name} reads at most {self.hf.max_length}")
        return ids

    def target_ids(self, example: Example) -> list[int]:
        """Generation: the tokens of the first reference, then the stop (newline or EOS)."""
        if self.prompt.chat:
            return [*self.hf.encode(example.reference), int(self.hf.tokenizer.eos_token_id)]
        return self.hf.encode(f" {example.reference}{PLAIN_STOP[0]}")

    def rows(self, example: Example) -> list[Row]:
        """The sequences whose token log-probs make up this example's scores."""
        ctx = self.context_ids(example)
        last = len(ctx) - 1
        if self.task.kind == "classification":
            if all(len(c) == 1 for c in self._choice_ids):  # one pass reads every label word
                return [(ctx, [last] * len(self._choice_ids), [c[0] for c in self._choice_ids])]
            return [(ctx + c, list(range(last, last + len(c))), c) for c in self._choice_ids]
        target = self.target_ids(example)
        return [(ctx + target, list(range(last, last + len(target))), target)]

    def _token_logprobs(self, rows: Sequence[Row]) -> list[Any]:
        """One right-padded forward pass: the log-prob of each row's read tokens."""
        import torch

        set_threads()
        width = max(len(r[0]) for r in rows)
        pad = int(self.hf.tokenizer.pad_token_id)
        device = self.hf.device
        ids = torch.tensor([tokens + [pad] * (width - len(tokens)) for tokens, _, _ in rows],
                           dtype=torch.long, device=device)
        mask = torch.tensor([[1] * len(tokens) + [0] * (width - len(tokens)) for tokens, _, _ in rows],
                            dtype=torch.long, device=device)
        keep = sorted({self.offset + p for _, positions, _ in rows for p in positions})
        with _quiet():
            out = self.model(input_ids=ids, attention_mask=mask,
                             logits_to_keep=torch.tensor(keep, device=device))
        logits = out.logits if out.logits.shape[1] == len(keep) else out.logits[:, keep]
        column = {pos: c for c, pos in enumerate(keep)}
        result = []
        for r, (_, positions, targets) in enumerate(rows):
            logp = torch.log_softmax(logits[r, [column[self.offset + p] for p in positions]].float(), -1)
            result.append(logp[torch.arange(len(targets), device=logp.device),
                               torch.tensor(targets, device=logp.device)])
        return result

    def _chunks(self, examples: Sequence[Example]) -> Iterator[tuple[list[int], list[list[Row]]]]:
        """Example indices (and their rows) by length, ``TOKENS_PER_CHUNK`` tokens a pass."""
        rows = [self.rows(e) for e in examples]
        order = sorted(range(len(examples)), key=lambda i: max(len(r[0]) for r in rows[i]))
        chunk: list[int] = []
        for i in order:
            width = max(len(r[0]) for j in [*chunk, i] for r in rows[j]) + self.num_virtual_tokens
            if chunk and width * sum(len(rows[j]) for j in [*chunk, i]) > TOKENS_PER_CHUNK:
                yield chunk, [rows[j] for j in chunk]
                chunk = []
            chunk.append(i)
        if chunk:
            yield chunk, [rows[j] for j in chunk]

    def _scores_and_losses(self, rows: list[list[Row]], examples: Sequence[Example]) -> tuple[Any, Any]:
        """Per example: label scores (classification; else None) and the loss."""
        import torch

        flat = self._token_logprobs([r for example_rows in rows for r in example_rows])
        losses, scores, k = [], [], 0
        for example_rows, example in zip(rows, examples):
            parts = flat[k : k + len(example_rows)]
            k += len(example_rows)
            if self.task.kind == "classification":
                label_scores = parts[0] if len(parts) == 1 else torch.stack([p.sum() for p in parts])
                scores.append(label_scores)
                losses.append(-torch.log_softmax(label_scores, -1)[int(example.label or 0)])
            else:
                losses.append(-parts[0].mean())
        return (torch.stack(scores) if scores else None), torch.stack(losses)

    # ---------------------------------------------------------------- training
    def train_step(self, examples: Sequence[Example], optimizer: Any) -> float:
        """One optimizer step on the mean loss of ``examples``; returns that loss."""
        optimizer.zero_grad()
        total = 0.0
        for indices, rows in self._chunks(examples):
            _, losses = self._scores_and_losses(rows, [examples[i] for i in indices])
            (losses.sum() / len(examples)).backward()
            total += float(losses.detach().sum())
        optimizer.step()
        self.counts["forward_backward"] += len(examples)
        return total / len(examples)

    def mean_loss(self, examples: Sequence[Example]) -> float:
        """Mean loss on ``examples`` (no gradients)."""
        import torch

        total = 0.0
        with torch.inference_mode():
            for indices, rows in self._chunks(examples):
                total += float(self._scores_and_losses(rows, [examples[i] for i in indices])[1].sum())
        self.counts["forward"] += len(examples)
        return total / max(len(examples), 1)

    def parameters(self) -> list[Any]:
        """The trainable (virtual-token) parameters."""
        return [p for p in self.model.parameters() if p.requires_grad]

    # ---------------------------------------------------------------- scoring
    def label_logprobs(self, examples: Sequence[Example]) -> np.ndarray:
        """Classification: log-prob of each label word, shape ``(len(examples), num_labels)``."""
        import torch

        out = np.zeros((len(examples), len(self._choice_ids)), dtype=np.float64)
        with torch.inference_mode():
            for indices, rows in self._chunks(examples):
                scores, _ = self._scores_and_losses(rows, [examples[i] for i in indices])
                out[indices] = scores.double().cpu().numpy()
        self.counts["forward"] += len(examples)
        return out

    def generate(self, examples: Sequence[Example]) -> list[str]:
        """Generation: greedy answers (first non-empty line), one input at a time.

        Decoded here, step by step through the same peft forward pass the loss uses (the
        first pass reads the virtual tokens and the prompt, later ones one token on its
        cache): peft 0.21's ``generate`` under transformers 5 does not reproduce that
        forward pass for prompt learning (prefix tuning's prefix is dropped), so it is not used.
        """
        import torch

        set_threads()
        stop = None if self.prompt.chat else list(PLAIN_STOP)
        texts = []
        with torch.inference_mode(), _quiet():
            for example in examples:
                ids = torch.tensor([self.context_ids(example)], device=self.hf.device)
                out = self.model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True,
                                 logits_to_keep=1)
                texts.append(clean_generation(self._greedy(out, stop)))
        self.counts["generated"] += len(examples)
        return texts

    def _greedy(self, out: Any, stop: list[str] | None) -> str:
        """Greedy tokens after the first forward pass ``out``, until EOS, a stop after the
        answer's first visible character (the reading of :func:`~prompt_env.llm.base.cut_at_stop`)
        or the limit."""
        import torch

        tokenizer, new = self.hf.tokenizer, []
        for _ in range(default_max_new_tokens(self.task)):
            token = int(out.logits[0, -1].argmax())
            if token == tokenizer.eos_token_id:
                break
            new.append(token)
            if stop and stopped(tokenizer.decode(new, skip_special_tokens=True), stop):
                break
            cache = getattr(out, "cache", None) or out.past_key_values
            mask = torch.ones((1, cache.get_seq_length() + 1), dtype=torch.long, device=self.hf.device)
            out = self.hf._forward(torch.tensor([[token]], device=self.hf.device),
                                   mask, cache=cache, logits_to_keep=1)
        return cut_at_stop(tokenizer.decode(new, skip_special_tokens=True), stop)

    def scores(self, examples: Sequence[Example], reward: str | None = None) -> np.ndarray:
        """The reward (default: the task's metric) of each example under this soft prompt."""
        chosen = resolve_reward(self.task, reward)
        if self.task.kind == "classification":
            rows: Sequence[Any] = self.label_logprobs(examples)
        else:
            rows = self.generate(examples)
        return np.array([float(chosen(row, e)) for row, e in zip(rows, examples, strict=True)])

    # ------------------------------------------------------------------ files
    def arrays(self) -> dict[str, np.ndarray]:
        """peft's adapter state (``prompt_embeddings``) as float32 arrays."""
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(self.model)
        return {k: v.detach().cpu().float().numpy().copy() for k, v in state.items()}

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the adapter state from :meth:`arrays`' output."""
        import torch
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(self.model, {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})

    def header(self) -> dict[str, Any]:
        """What the file records besides the arrays (the model, task and prompt it fits)."""
        return {"method": self.method, "num_virtual_tokens": self.num_virtual_tokens,
                "seed": self.seed, "model": self.hf.name, "model_identity": self.hf.identity(),
                "task": self.task.name, "prompt": self.prompt.name}

    def save(self, path: str | os.PathLike[str], *, env_id: str,
             info: dict[str, Any] | None = None) -> Path:
        """Write an agent file (``info``: training facts to keep in the header)."""
        return write_checkpoint(path, agent=self.method, env_id=env_id,
                                config={**self.header(), "info": dict(info or {})},
                                arrays=self.arrays())

    @classmethod
    def load(cls, path: str | os.PathLike[str], llm: Any, task: Task, *,
             env_id: str | None = None) -> SoftPrompt:
        """A soft prompt from its file, on ``llm`` (the same model it was trained on) and ``task``."""
        method = read_checkpoint_header(path)["agent"]
        if method not in METHODS:
            raise CheckpointError(f"{path}: holds a {method!r} agent, not a soft prompt ({METHODS})")
        header, arrays = read_checkpoint(path, agent=method, env_id=env_id)
        config = header["config"]
        hf = causal_model(llm, method)
        if config.get("model_identity") != hf.identity():
            raise CheckpointError(f"{path}: trained on model {config.get('model')!r}, not on "
                                  f"{hf.name!r}; load it with the model it was trained on")
        if config.get("task") != task.name:
            raise CheckpointError(f"{path}: trained on task {config.get('task')!r}, not {task.name!r}")
        prompt = next((p for p in task.prompt_pool.candidates if p.name == config.get("prompt")), None)
        if prompt is None:
            raise CheckpointError(f"{path}: task {task.name!r} has no prompt {config.get('prompt')!r}")
        soft = cls(llm, task, prompt, method=method, num_virtual_tokens=int(config["num_virtual_tokens"]),
                   seed=int(config.get("seed", 0)))
        soft.load_arrays(arrays)
        return soft


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` did: steps, pairs, the dev-loss trace and where it stopped."""

    steps: int
    pairs: int
    """Training (prompt, input) pairs seen (each a forward and a backward pass)."""
    epochs: float
    dev_losses: list[tuple[int, float]]
    """(training pairs so far, mean dev loss), from before the first step on."""
    best_pairs: int
    """Training pairs when the kept (lowest dev loss) virtual tokens were reached."""
    stopped_early: bool

    @property
    def initial_dev_loss(self) -> float:
        return self.dev_losses[0][1]

    @property
    def best_dev_loss(self) -> float:
        return min(loss for _, loss in self.dev_losses)


def fit(soft: SoftPrompt, train: Sequence[Example], dev: Sequence[Example], *, max_pairs: int,
        batch_size: int = 8, lr: float = 1e-2, patience: int = 3, eval_every: int | None = None,
        seed: int = 0, on_step: Callable[[int], None] | None = None) -> FitResult:
    """Train ``soft`` on ``train`` (shuffled by ``seed``) for at most ``max_pairs`` pairs.

    AdamW on the virtual tokens only. The mean dev loss is measured before the first step
    and every ``eval_every`` steps (default: one epoch, at most 64 pairs); training stops
    after ``patience`` measurements without a new lowest one, and the virtual tokens with
    the lowest dev loss are kept. ``on_step(pairs)`` reports progress.
    """
    import torch

    if not train or not dev:
        raise ValueError("soft-prompt training needs train and dev examples")
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(soft.parameters(), lr=lr, weight_decay=0.0)
    every = eval_every or max(1, min(math.ceil(len(train) / batch_size), 64 // batch_size))
    losses = [(0, soft.mean_loss(dev))]
    best_state, best_pairs, bad = soft.arrays(), 0, 0
    order: list[int] = []
    steps = pairs = 0
    while pairs < max_pairs and bad < patience:
        if not order:
            order = rng.permutation(len(train)).tolist()
        size = min(batch_size, max_pairs - pairs, len(order))
        batch, order = [train[i] for i in order[:size]], order[size:]
        soft.train_step(batch, optimizer)
        steps, pairs = steps + 1, pairs + size
        if on_step is not None:
            on_step(pairs)
        if steps % every == 0 or pairs >= max_pairs:
            losses.append((pairs, soft.mean_loss(dev)))
            if losses[-1][1] < min(loss for _, loss in losses[:-1]) - 1e-6:
                best_state, best_pairs, bad = soft.arrays(), pairs, 0
            else:
                bad += 1
    soft.load_arrays(best_state)
    return FitResult(steps, pairs, round(pairs / len(train), 2), losses, best_pairs, bad >= patience)
