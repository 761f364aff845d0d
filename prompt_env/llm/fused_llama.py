"""A lean forward pass of Llama-architecture models for scoring: the ``fused`` engine.

:class:`HFCausalLM` scores through one of two engines:

* ``"transformers"``: the model's own ``forward`` with a ``DynamicCache``, one pass per
  group of rows that share a prompt prefix (the reference);
* ``"fused"`` (this module; the default where it applies): the same computation written
  out for the Llama family (SmolLM2, Llama, TinyLlama, ...), in the model's own weights
  (no copy), with the same operations in the same order and precision: RMSNorm, rotary
  position embeddings, grouped-query attention, the SiLU-gated MLP. It is faster for
  three reasons, each measured in ``benchmarks/llm_throughput.py``:

  - **rows that continue different prompts share one pass**: each row brings its own
    cached prefix keys/values (or none) and its own positions; the prefixes are laid out
    side by side, padded and masked, so one forward serves prompts with nothing in
    common (an env step over eight pool prompts is one pass instead of eight);
  - **no repeated keys and values**: attention runs on the 3 key/value heads directly
    (``enable_gqa``) instead of copying them out to the 9 query heads, and the prefix
    keys/values are written once per pass into the buffer the new tokens extend;
  - **nothing per call but the math**: no cache objects, no mask factories, no output
    dataclasses, and only the positions whose logits are asked for reach the final norm
    and the LM head.

Exactness: log-probabilities agree with the ``transformers`` engine to float32 rounding
(tests check 1e-4 nats; measured differences are ~1e-5), and label rankings are the same.
"""

from __future__ import annotations

import dataclasses
from typing import Any

Layers = list[tuple[Any, Any]]
"""Per-layer (keys, values) of a prompt prefix, each of shape (1, kv_heads, length, head_dim),
as :class:`~prompt_env.llm.prefix_cache.PrefixCache` stores them."""


@dataclasses.dataclass
class PackedBatch:
    """Rows of tokens for one forward pass; a row may hold several sequences (packing).

    Each row's attention keys are its prefix slots (``past`` of them, cached prefixes laid
    side by side, zero where unused) followed by its own tokens; ``mask`` says which keys
    each token may see (its own prefix, and causally its own sequence).
    """

    tokens: Any
    """(rows, width) token ids."""
    positions: Any
    """(rows, width) position of each token in its own sequence (prefix included)."""
    mask: Any
    """(rows, 1, width, past + width) bool: key j visible to token i."""
    prefixes: list[list[tuple[Layers, int]]]
    """Per row: the cached prefixes placed in its slots, (layers, first slot)."""
    past: int
    """Prefix slots per row."""
    shared: Layers | None = None
    """The one prefix every row continues, in every row's slots from 0 (a broadcast), if so."""


def unsupported_reason(model: Any) -> str | None:
    """Why the fused engine cannot run ``model`` (None when it can)."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) != "llama":
        return f"model type {getattr(config, 'model_type', None)!r} is not 'llama'"
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    checks = {
        "attention_bias": not getattr(config, "attention_bias", False),
        "mlp_bias": not getattr(config, "mlp_bias", False),
        "hidden_act silu": getattr(config, "hidden_act", "silu") == "silu",
        "rope_type default": rope.get("rope_type", rope.get("type", "default")) == "default",
        "pretraining_tp 1": getattr(config, "pretraining_tp", 1) == 1,
        "float32 weights": str(next(model.parameters()).dtype) == "torch.float32",
    }
    failed = [name for name, ok in checks.items() if not ok]
    return f"needs {', '.join(failed)}" if failed else None


class FusedLlama:
    """Scoring forward passes of a transformers ``LlamaForCausalLM`` (float32, any device).

    Args:
        model: a loaded ``LlamaForCausalLM`` (see :func:`unsupported_reason`); its weights
            are used in place, never copied.
    """

    def __init__(self, model: Any) -> None:
        import torch

        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"the fused engine cannot run this model: {reason}")
        config = model.config
        self.model = model
        self.heads = int(config.num_attention_heads)
        self.kv_heads = int(config.num_key_value_heads)
        self.head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // self.heads)
        self.eps = float(config.rms_norm_eps)
        rope = getattr(config, "rope_parameters", None) or {}
        theta = float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0)))
        device = next(model.parameters()).device
        steps = torch.arange(0, self.head_dim, 2, dtype=torch.int64).to(device=device, dtype=torch.float32)
        self.inv_freq = 1.0 / (theta ** (steps / self.head_dim))
        self.device = device
        inner = model.model
        self.embed = inner.embed_tokens.weight
        self.final_norm = inner.norm.weight
        self.lm_head = model.lm_head.weight
        self.layers = [
            (layer.input_layernorm.weight, layer.self_attn.q_proj.weight, layer.self_attn.k_proj.weight,
             layer.self_attn.v_proj.weight, layer.self_attn.o_proj.weight,
             layer.post_attention_layernorm.weight, layer.mlp.gate_proj.weight,
             layer.mlp.up_proj.weight, layer.mlp.down_proj.weight)
            for layer in inner.layers
        ]

    # ---------------------------------------------------------------- pieces
    def _norm(self, x: Any, weight: Any) -> Any:
        import torch

        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def _rotary(self, positions: Any) -> tuple[Any, Any]:
        """cos and sin of each position's angles, (rows, 1, length, head_dim); the first half of
        sin negated, so that rotating is ``x * cos + swap_halves(x) * sin``."""
        import torch

        freqs = positions[..., None].float() * self.inv_freq
        angles = torch.cat((freqs, freqs), dim=-1)[:, None]
        sin = angles.sin()
        sin[..., : self.head_dim // 2].neg_()
        return angles.cos(), sin

    def _rotate(self, x: Any, cos: Any, sin: Any) -> Any:
        import torch

        half = self.head_dim // 2
        return torch.addcmul(x * cos, torch.cat((x[..., half:], x[..., :half]), dim=-1), sin)

    # --------------------------------------------------------------- forward
    def forward(self, batch: PackedBatch, *, keep_rows: Any, keep_cols: Any,
                keep_kv: bool = False) -> tuple[Any, Layers]:
        """One pass over a packed batch.

        Returns the final-norm hidden states at ``(keep_rows[i], keep_cols[i])`` (float32,
        shape (len(keep_rows), hidden)) and, with ``keep_kv``, each layer's (keys, values)
        of the batch's own tokens, shape (rows, kv_heads, width, head_dim).
        """
        import torch
        import torch.nn.functional as F

        n, width = batch.tokens.shape
        past = batch.past
        cos, sin = self._rotary(batch.positions)
        h = self.embed[batch.tokens]
        kv: Layers = []
        for index, (norm1, wq, wk, wv, wo, norm2, wg, wu, wd) in enumerate(self.layers):
            x = self._norm(h, norm1)
            q = F.linear(x, wq).view(n, width, self.heads, self.head_dim).transpose(1, 2)
            k = F.linear(x, wk).view(n, width, self.kv_heads, self.head_dim).transpose(1, 2)
            v = F.linear(x, wv).view(n, width, self.kv_heads, self.head_dim).transpose(1, 2)
            q, k = self._rotate(q, cos, sin), self._rotate(k, cos, sin)
            if keep_kv:
                kv.append((k, v))
            if past:
                keys = torch.empty((n, self.kv_heads, past + width, self.head_dim), device=k.device,
                                   dtype=k.dtype)
                values = torch.empty_like(keys)
                if batch.shared is not None:  # every row continues the same prefix: broadcast it
                    pk, pv = batch.shared[index]
                    keys[:, :, :past] = pk
                    values[:, :, :past] = pv
                else:  # unused slots must hold finite values: masked weights are 0, 0 * nan is not
                    keys[:, :, :past] = 0.0
                    values[:, :, :past] = 0.0
                    for row, placed in enumerate(batch.prefixes):
                        for layers, offset in placed:
                            pk, pv = layers[index]
                            end = offset + int(pk.shape[2])
                            keys[row, :, offset:end] = pk[0]
                            values[row, :, offset:end] = pv[0]
                keys[:, :, past:] = k
                values[:, :, past:] = v
                k, v = keys, values
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=batch.mask, enable_gqa=True)
            h += F.linear(attended.transpose(1, 2).reshape(n, width, -1), wo)
            x = self._norm(h, norm2)
            h += F.linear(F.silu(F.linear(x, wg), inplace=True).mul_(F.linear(x, wu)), wd)
        return self._norm(h[keep_rows, keep_cols], self.final_norm), kv

    def log_probs(self, hidden: Any) -> Any:
        """Log-softmax over the vocabulary of the LM head at ``hidden`` (float32)."""
        import torch
        import torch.nn.functional as F

        return torch.log_softmax(F.linear(hidden, self.lm_head).float(), dim=-1)
