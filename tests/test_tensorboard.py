"""TensorBoard event files from training (``tensorboard_log=`` / ``--tensorboard DIR``), read back."""

from __future__ import annotations

import json

from agents.cli import main
from agents.experiments.tensorboard import next_run_dir, read_scalars
from agents.experiments.train import train


def test_train_writes_event_files_per_run_sb3_style(tmp_path):
    kwargs = {"llm": "fake", "max_examples": 6, "episode_length": 4}
    first = train("PromptEnv/BBCTopic-Select-v0", "ucb1", 10, env_kwargs=kwargs, progress=False,
                  tensorboard_log=tmp_path)
    second = train("PromptEnv/BBCTopic-Select-v0", "ucb1", 5, env_kwargs=kwargs, progress=False,
                   tensorboard_log=tmp_path)
    assert first.tensorboard_dir == tmp_path / "ucb1_1" and second.tensorboard_dir == tmp_path / "ucb1_2"
    assert next_run_dir(tmp_path, "ucb1") == tmp_path / "ucb1_3"
    scalars = read_scalars(first.tensorboard_dir)
    rewards = [value for _, value in scalars["train/reward"]]
    assert [step for step, _ in scalars["train/reward"]] == list(range(1, 11))
    assert rewards == [c["reward"] for c in first.curve]
    assert [v for _, v in scalars["llm/calls"]] == [c["llm_calls"] for c in first.curve]
    assert {"train/reward_mean_50", "llm/distinct", "llm/cache_hits"} <= set(scalars)


def test_cli_train_tensorboard_next_to_the_csv(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "run"
    assert main(["train", "--env", "PromptEnv/BBCTopic-Select-Tabular-v0", "--agent", "tabular-q",
                 "--steps", "8", "--llm", "fake", "--env-kwargs", '{"max_examples": 6}',
                 "--out", str(out), "--tensorboard", str(out / "tb")]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["files"]["tensorboard"] == str(out / "tb" / "tabular-q_1")
    assert len(read_scalars(out / "tb" / "tabular-q_1")["train/reward"]) == 8
    assert (out / "metrics.csv").is_file()
