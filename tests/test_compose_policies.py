"""Policies on the Compose env: compose-dqn, compose-random-search and the fixed prompts.

Accounting and selection on the deterministic fake LLM; the DQN trains for a few dozen
episodes on tiny SST-2 data with the real default model; the harness reads the
``[compose]`` table of ``benchmarks/configs/compose.toml``.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.experiments import Setting, run_policy
from agents.experiments.compose_policies import CANDIDATES, CandidateLog, reduce_features

POLICIES = ["compose-random", "compose-empty", "compose-manual", "compose-random-search", "compose-dqn"]
OPTIONS = {"vocab_size": 30, "prompt_length": 2, "minibatch_size": 2, "position": "after",
           "allow_stop": False}


@pytest.fixture(autouse=True)
def _data(shared_data_dir):
    """Every test here reads the SST-2 16-shot split of the shared data."""


def setting(llm: str, **options) -> Setting:
    return Setting("PromptEnv/SST2-Select-v0",
                   {"llm": llm, "task_options": {"few_shot_seed": 13}, "max_examples": 4},
                   seed=13, train_reward="margin", test_limit=4, dev_limit=4,
                   compose_id="PromptEnv/SST2-Compose-v0", compose_options={**OPTIONS, **options})


def test_every_compose_policy_stays_in_budget_and_returns_a_prompt():
    s = setting("fake", zscore=True, zscore_prompts=2)
    rows = {name: run_policy(s, name, 60) for name in POLICIES}
    for name in ("compose-random-search", "compose-dqn"):
        row = rows[name]
        assert 0 < row["train_calls"] <= 60 and row["eval_calls"] == row["n_test"] == 4
        assert row["episodes"] >= 5 and len(row["candidates"]) == CANDIDATES
        assert row["final_prompt"]["name"] == f"compose:{row['prompt_words']}"
        assert len(row["prompt_words"].split()) == 2  # full length: stop is not allowed
    for name in ("compose-random", "compose-empty", "compose-manual"):
        assert rows[name]["train_calls"] == 0 and rows[name]["llm_calls"] == 4
    assert rows["compose-empty"]["prompt_words"] == "empty"
    assert rows["compose-manual"]["test_score"] == run_policy(s, "manual", 0)["test_score"]


def test_candidate_log_ranks_by_mean_training_reward():
    log = CandidateLog()
    for ids, score in (((1, 2), 0.5), ((3, 4), 0.9), ((1, 2), 0.7), ((5, 6), 0.1), ((7, 8), 0.9)):
        log.add({"prompt_ids": list(ids), "score": score}, {"env_calls": 2})
    log.add({"prompt_ids": [9], "budget_exhausted": True}, {})  # cut short: not a candidate
    assert log.episodes == 5 and log.best(3) == [(3, 4), (7, 8), (1, 2)]
    assert log.best(2, exclude=((3, 4),)) == [(7, 8), (1, 2)]


def test_reduced_features_keep_the_stop_row_zero():
    rng = np.random.default_rng(0)
    features = np.vstack([rng.normal(size=(20, 8)), np.zeros((1, 8))]).astype(np.float32)
    reduced = reduce_features(features, 3)
    assert reduced.shape == (21, 3) and not reduced[-1].any()
    np.testing.assert_allclose(reduced[:-1].mean(axis=0), 0.0, atol=1e-6)


def test_compose_dqn_trains_on_the_real_model():
    row = run_policy(setting("default"), "compose-dqn", 60)
    assert row["train_calls"] <= 60 and row["episodes"] >= 10 and row["n_test"] == 4
    assert 0.0 <= row["test_score"] <= 1.0 and row["curve"]["reward"]
    assert row["final_prompt"]["template"] == "review+prompt"  # the words sit before the cue


def test_harness_reads_the_compose_config(harness):
    plan = harness.build_plan(harness.parse_args(["--config", str(harness.CONFIG_DIR / "compose.toml")]))
    (sst2,) = plan.tasks
    assert sst2.seeds == [13, 21, 42, 87, 100] and sst2.test_limit == 500 and sst2.policies == POLICIES
    assert plan.compose_options["position"] == "after" and plan.compose_options["prompt_length"] == 5
    s = harness.setting_of(plan, sst2, 21, harness.ProgressReporter(enabled=False))
    assert s.compose_id == "PromptEnv/SST2-Compose-v0" and s.compose_options == plan.compose_options


def test_cli_trains_and_evaluates_a_compose_run(tmp_path):
    import json

    from agents.cli import main

    run = tmp_path / "run"
    kwargs = json.dumps({"vocab_size": 12, "prompt_length": 2, "minibatch_size": 2, "max_examples": 4})
    assert main(["train", "--env", "PromptEnv/SST2-Compose-v0", "--policy", "dqn", "--steps", "20",
                 "--llm", "fake", "--env-kwargs", kwargs, "--out", str(run)]) == 0
    assert main(["eval", "--run", str(run), "--split", "test", "--limit", "3"]) == 0
    report = json.loads((run / "eval_test.json").read_text())
    assert [r["policy"] for r in report["rows"]] == ["compose-manual", "empty prompt", "dqn"]
    assert all(r["n_test"] == 3 for r in report["rows"]) and report["prompt_words"]
