"""The white-box soft-prompt policy: peft prompt tuning on the real default model.

Trains a few steps on a handful of SST-2 sentences (16-shot split of seed 13),
checks that the dev loss falls, that a saved soft prompt reloads to the same
scores, that a non-local LLM spec is refused with a clear error, and that
``run_policy`` gives a row whose costs add up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents.experiments import Setting, run_policy
from agents.soft_prompt import SoftPrompt, WhiteBoxError, fit
from prompt_env.errors import CheckpointError
from prompt_env.registration import env_id
from prompt_env.tasks import load_task

SST2 = env_id("SST2", "Select")


@pytest.fixture(scope="module")
def sst2(shared_data_dir: Path) -> Any:
    return load_task("sst2", data_dir=str(shared_data_dir), few_shot_seed=13)


def test_dev_loss_falls_and_saved_prompt_reloads(sst2: Any, default_llm: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPT_ENV_THREADS", "1")
    train = sst2.split("train")[:4] + sst2.split("train")[16:20]  # both labels
    dev = sst2.split("dev")[:4] + sst2.split("dev")[16:20]
    soft = SoftPrompt(default_llm, sst2, sst2.prompt_pool.candidates[0], num_virtual_tokens=4, seed=13)
    result = fit(soft, train, dev, max_pairs=16, batch_size=4, lr=3e-2, eval_every=2, seed=13)
    assert [pairs for pairs, _ in result.dev_losses] == [0, 8, 16]
    assert result.best_dev_loss < result.initial_dev_loss
    assert soft.counts == {"forward_backward": 16, "forward": 24, "generated": 0}
    assert sum(p.numel() for p in soft.parameters()) == 4 * 576  # only the virtual tokens

    inputs = sst2.split("test")[:6]
    scores = soft.label_logprobs(inputs)
    path = soft.save(tmp_path / "soft.safetensors", env_id=SST2, info={"pairs": result.pairs})
    loaded = SoftPrompt.load(path, default_llm, sst2, env_id=SST2)
    np.testing.assert_array_equal(loaded.label_logprobs(inputs), scores)
    np.testing.assert_array_equal(loaded.scores(inputs), soft.scores(inputs))
    # the kept tokens are the best ones on dev, and the reloaded prompt has them
    assert loaded.mean_loss(dev) == pytest.approx(result.best_dev_loss, abs=1e-5)
    with pytest.raises(CheckpointError, match="trained on task"):
        SoftPrompt.load(path, default_llm, load_task("bbc-topic"))


@pytest.mark.parametrize("spec", ["openai:http://127.0.0.1:9/v1#some-model", "fake"])
def test_white_box_error_without_local_weights(spec: str) -> None:
    setting = Setting(SST2, {"llm": spec}, seed=13, test_limit=4)
    with pytest.raises(WhiteBoxError, match="white-box policy.*weights and gradients"):
        run_policy(setting, "soft-prompt", 8)


def test_run_policy_row_is_consistent(shared_data_dir: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPT_ENV_THREADS", "1")
    kwargs = {"llm": "default", "data_dir": str(shared_data_dir),
              "task_options": {"few_shot_seed": 13}}
    setting = Setting(SST2, kwargs, seed=13, test_limit=4, dev_limit=4)
    row = run_policy(setting, "soft-prompt", 8)
    assert row["policy"] == "soft-prompt" and row["white_box"] is True
    assert row["test_score"] in {0.0, 0.25, 0.5, 0.75, 1.0}  # accuracy on 4 inputs
    assert row["n_test"] == row["eval_calls"] == row["eval_pairs"] == 4
    assert row["train_pairs_forward_backward"] == 8
    # dev loss before training and after the one (last) step: 2 x 4 dev pairs
    assert row["dev_pairs_forward"] == 8 and len(row["dev_losses"]) == 2
    assert row["train_calls"] == 8 + 8
    assert row["llm_calls"] == row["train_calls"] + row["eval_calls"]
    assert row["distinct_pairs"] == 8 + 4 + 4  # train pairs seen, dev inputs, test inputs
    assert row["wall_s"] > 0 and row["cache_hit_rate"] == 0.0
    assert row["budget"] == 8 and row["prompt_counts"] == []
    assert "white-box" in row["notes"]


def test_generation_task_trains_on_references_and_generates(shared_data_dir: Path, default_llm: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPT_ENV_THREADS", "1")
    task = load_task("ii-translation_en-de", data_dir=str(shared_data_dir))
    soft = SoftPrompt(default_llm, task, task.prompt_pool.candidates[0], method="prefix",
                      num_virtual_tokens=2, seed=0)
    example = task.split("train")[0]
    target = soft.target_ids(example)
    assert default_llm.tokenizer.decode(target) == f" {example.reference}\n"
    result = fit(soft, task.split("train")[:4], task.split("dev")[:2], max_pairs=4, batch_size=4,
                 seed=0)
    assert len(result.dev_losses) == 2 and all(np.isfinite(loss) for _, loss in result.dev_losses)
    inputs = task.split("test")[:3]
    texts = soft.generate(inputs)
    assert len(texts) == 3 and all(isinstance(t, str) and "\n" not in t for t in texts)
    assert set(soft.scores(inputs).tolist()) <= {0.0, 1.0}  # exact match
    assert soft.counts["generated"] == 6
