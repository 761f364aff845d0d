"""White-box policies: soft prompts trained by gradient descent (``soft-prompt``, ``prefix``).

Unlike every other registered policy, these need the task model's weights and
gradients (:mod:`agents.soft_prompt`), so they run only on a local
transformers model (``llm="default"`` or ``"hf:<causal model>"``); any other
LLM spec raises :class:`~agents.soft_prompt.WhiteBoxError` before anything loads.

``budget`` is the number of training (prompt, input) pairs, each a forward
and a backward pass through the model (the white-box analogue of a training
LLM call). The virtual tokens go in front of the task's manual prompt (pool
candidate 0); early stopping on the dev split (``setting.dev_limit``) keeps
the tokens with the lowest dev loss.

A soft prompt cannot be sent through the LLM protocol, so the policy scores
its trained model itself on the setting's evaluation inputs (``split``,
``test_limit``: the same inputs as the score tables) with the task's metric,
and returns that as ``expected_score`` with the measured cost in
``evaluation``. In the row, ``llm_calls`` / ``train_calls`` / ``eval_calls``
count model passes over (prompt, input) pairs, not LLM-protocol calls;
``train_pairs_forward_backward``, ``dev_pairs_forward`` and ``eval_pairs`` split them.
"""

from __future__ import annotations

import os
import time
from typing import Any

from agents.experiments.registry import Policy, PolicyResult, register_policy
from agents.experiments.setting import Setting
from agents.experiments.usage import Usage
from agents.soft_prompt import SoftPrompt, fit, require_white_box

NUM_VIRTUAL_TOKENS = 8
LEARNING_RATE = 1e-2
BATCH_SIZE = 8
PATIENCE = 3
SAVE_DIR_VAR = "PROMPT_ENV_SOFT_PROMPT_DIR"
"""When set, each trained soft prompt is saved there as ``<task>-<method>-seed<seed>.safetensors``."""


def train_soft_prompt(setting: Setting, method: str, budget: int, *,
                      num_virtual_tokens: int = NUM_VIRTUAL_TOKENS, lr: float = LEARNING_RATE,
                      batch_size: int = BATCH_SIZE, patience: int = PATIENCE) -> PolicyResult:
    """Train ``method`` virtual tokens on the setting's train split, then score the test subset."""
    require_white_box(setting.env_kwargs.get("llm", "default"), method)
    if setting.env_kwargs.get("calibration"):
        raise ValueError(f"{method} trains its own label scores; it takes no calibration")
    env = setting.select_env()
    task, reporter = env.task, setting.reporter
    soft = SoftPrompt(env.llm, task, env.prompts[0], method=method,
                      num_virtual_tokens=num_virtual_tokens, seed=setting.seed)
    train, dev = task.split("train"), task.split("dev")[: setting.dev_limit]
    bar = reporter.add(f"  {method} (training pairs)", budget) if reporter is not None else None

    def on_step(pairs: int) -> None:
        if reporter is not None and bar is not None:
            reporter.update(bar, completed=pairs, visible=pairs < budget)

    start = time.perf_counter()
    result = fit(soft, train, dev, max_pairs=budget, batch_size=batch_size, lr=lr,
                 patience=patience, seed=setting.seed, on_step=on_step)
    if reporter is not None and bar is not None:
        reporter.update(bar, visible=False)
    trained, train_wall = dict(soft.counts), time.perf_counter() - start
    inputs = task.split(setting.split)[: setting.test_limit]
    start = time.perf_counter()
    scores = soft.scores(inputs, setting.resolved_metric)
    eval_wall = time.perf_counter() - start
    train_pairs = trained["forward_backward"] + trained["forward"]
    distinct = min(result.pairs, len(train)) + len(dev)
    info = {
        "white_box": True,
        "method": method,
        "num_virtual_tokens": num_virtual_tokens,
        "trained_parameters": int(sum(p.numel() for p in soft.parameters())),
        "train_pairs_forward_backward": trained["forward_backward"],
        "dev_pairs_forward": trained["forward"],
        "eval_pairs": len(inputs),
        "eval_by": "greedy generation" if task.kind != "classification" else "label log-probs",
        "loss": ("cross-entropy over the label words" if task.kind == "classification"
                 else "teacher-forced NLL of the first reference"),
        "epochs": result.epochs,
        "steps": result.steps,
        "best_at_pairs": result.best_pairs,
        "stopped_early": result.stopped_early,
        "dev_loss_initial": round(result.initial_dev_loss, 4),
        "dev_loss_best": round(result.best_dev_loss, 4),
        "dev_losses": [[pairs, round(loss, 4)] for pairs, loss in result.dev_losses],
        "score_source": "the policy's own scoring of its soft prompt on the evaluation inputs",
    }
    save_dir = os.environ.get(SAVE_DIR_VAR)
    if save_dir:
        name = f"{task.name}-{method}-seed{setting.seed}.safetensors"
        info["saved_to"] = str(soft.save(os.path.join(save_dir, name), env_id=setting.select_id,
                                         info={k: v for k, v in info.items() if k != "dev_losses"}))
    notes = (f"white-box: {num_virtual_tokens} virtual tokens ({method}, peft) before the manual "
             f"prompt, {result.pairs} training pairs ({result.epochs} epochs), dev loss "
             f"{result.initial_dev_loss:.3f} -> {result.best_dev_loss:.3f}; calls count model "
             "passes over (prompt, input) pairs (training: forward+backward, dev: forward)")
    return PolicyResult(
        expected_score=float(scores.mean()), eval_calls=len(inputs),
        train=Usage(calls=train_pairs, distinct=distinct, model_calls=train_pairs, wall_s=train_wall),
        evaluation=Usage(calls=len(inputs), distinct=len(inputs), model_calls=len(inputs),
                         wall_s=eval_wall),
        notes=notes, extra=info)


def _runner(method: str) -> Any:
    def run(setting: Setting, budget: int) -> PolicyResult:
        return train_soft_prompt(setting, method, budget)

    return run


register_policy(Policy("soft-prompt", "white-box",
                       "WHITE-BOX: 8 virtual input tokens (peft prompt tuning) trained by gradient "
                       "descent before the manual prompt; needs the model's weights",
                       _runner("soft-prompt")))
register_policy(Policy("prefix", "white-box",
                       "WHITE-BOX: 8 virtual key/value tokens per layer (peft prefix tuning) trained "
                       "by gradient descent; needs the model's weights", _runner("prefix")))
