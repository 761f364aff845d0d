"""The `prompt-env` command: list, train, eval, demo and its one-line errors.

Most tests call ``agents.cli.main([...])`` in-process; one runs the
installed command as a real subprocess. The train/eval round trip uses the
real default model on a tiny slice of bbc-topic (cached within the session).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.cli import main
from agents.experiments.files import redact

TABULAR_ID = "PromptEnv/BBCTopic-Select-Tabular-v0"
TINY_KWARGS = '{"max_examples": 6, "episode_length": 4}'
TRAIN_STEPS = 20


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Rich tables as wide as a big terminal, so names are not cut in the captured output."""
    monkeypatch.setenv("COLUMNS", "200")


def command_path() -> list[str]:
    script = Path(sys.executable).parent / "prompt-env"
    return [str(script)] if script.exists() else [sys.executable, "-m", "agents.cli"]


# --------------------------------------------------------------------------- list


def test_list_shows_tasks_env_kinds_agents_baselines_and_llm_specs(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for expected in ("bbc-topic", "BBCTopic", "classification", "sst2", "ii-antonyms",
                     "PromptEnv/BBCTopic-Select-v0", "PromptEnv/BBCTopic-Select-Tabular-v0",
                     "PromptEnv/BBCTopic-Edit-v0", "PromptEnv/BBCTopic-Edit-Tabular-v0",
                     "tabular-q", "dqn", "ucb1", "random", "manual", "best-fixed-on-dev",
                     "per-query-oracle", "UPPER BOUND", "hf:<model id or local path>", "fake:<seed>"):
        assert expected in out, expected
    # grouped: one example id per env kind, not one line per registered id
    assert sum("PromptEnv/" in line for line in out.splitlines()) < 10


def test_list_all_prints_every_env_id(capsys):
    import prompt_env

    assert main(["list", "--all"]) == 0
    lines = capsys.readouterr().out.split()
    assert lines == sorted(prompt_env.ENV_IDS) and len(lines) == len(prompt_env.ENV_IDS) > 100


def test_installed_command_runs_as_a_subprocess():
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run([*command_path(), "list"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "PromptEnv/BBCTopic-Select-v0" in done.stdout and "tabular-q" in done.stdout
    # a user mistake in a real process: exit status 2, one line and a hint, no traceback
    done = subprocess.run([*command_path(), "train", "--env", TABULAR_ID, "--policy", "tabq", "--steps", "5"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and "unknown agent 'tabq'" in lines[0] and lines[1].startswith("hint:")


# --------------------------------------------------------------------------- demo


def test_demo_calls_run_demo(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr("agents.experiments.demo.run_demo", lambda **kwargs: calls.append(kwargs))
    assert main(["demo"]) == 0
    assert calls == [{}]
    assert main(["demo", "--out", str(tmp_path), "--steps", "5", "--n-test", "3", "--llm", "fake",
                 "--seed", "1"]) == 0
    assert calls[1] == {"out": tmp_path, "steps": 5, "n_test": 3, "llm": "fake", "seed": 1}


# --------------------------------------------------------------------------- train and eval (real model)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(["train", "--env", TABULAR_ID, "--policy", "tabular-q", "--steps", str(TRAIN_STEPS),
                 "--seed", "0", "--out", str(out), "--env-kwargs", TINY_KWARGS])
    assert code == 0
    return out


def test_train_writes_agent_metrics_and_run_json(trained_run):
    from agents import TabularQAgent, load_agent

    agent = load_agent(trained_run / "agent.safetensors", env_id=TABULAR_ID)
    assert isinstance(agent, TabularQAgent) and agent.visits.sum() == TRAIN_STEPS
    with open(trained_run / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == list(range(1, TRAIN_STEPS + 1))
    assert set(rows[0]) == {"step", "reward", "llm_calls", "distinct", "cache_hits"}
    assert int(rows[-1]["llm_calls"]) == TRAIN_STEPS
    run = json.loads((trained_run / "run.json").read_text())
    assert run["status"] == "finished"
    assert run["env_id"] == TABULAR_ID and run["agent"] == "tabular-q"
    assert run["steps"] == run["steps_done"] == TRAIN_STEPS and run["seed"] == 0
    assert run["llm"] == "default"
    assert run["env_kwargs"] == json.loads(TINY_KWARGS)
    assert run["llm_calls"] == TRAIN_STEPS and 0 <= run["cache_hits"] <= TRAIN_STEPS
    assert run["wall_s"] > 0 and run["episodes"] == TRAIN_STEPS // 4


def test_eval_writes_json_and_prints_table(trained_run, capsys):
    code = main(["eval", "--run", str(trained_run), "--split", "test", "--limit", "8", "--dev-limit", "8"])
    assert code == 0
    out = capsys.readouterr().out
    report = json.loads((trained_run / "eval_test.json").read_text())
    rows = {r["policy"]: r for r in report["rows"]}
    assert set(rows) == {"random", "manual", "best-fixed-on-dev", "per-query-oracle", "tabular-q"}
    assert report["split"] == "test" and report["limit"] == 8 and report["env_id"] == TABULAR_ID
    assert all(r["n_test"] == 8 for r in rows.values())
    assert rows["per-query-oracle"]["upper_bound"] is True
    assert not any(r["upper_bound"] for name, r in rows.items() if name != "per-query-oracle")
    best = rows["per-query-oracle"]["test_score"]
    assert all(0.0 <= r["test_score"] <= best for r in rows.values())
    for name in rows:
        assert name in out
    assert "(upper bound)" in out and "eval_test.json" in out


# --------------------------------------------------------------------------- fake-LLM runs (fast)


def test_checkpoints_are_written_during_training(tmp_path, monkeypatch):
    from agents.base import Agent

    saved_at = []
    original_save = Agent.save

    def counting_save(self, path, *, env_id):
        saved_at.append(self.num_timesteps)
        return original_save(self, path, env_id=env_id)

    monkeypatch.setattr(Agent, "save", counting_save)
    out = tmp_path / "run"
    code = main(["train", "--env", TABULAR_ID, "--policy", "tabular-q", "--steps", "12", "--llm", "fake",
                 "--out", str(out), "--checkpoint-every", "5", "--env-kwargs", TINY_KWARGS])
    assert code == 0
    assert saved_at == [5, 10, 12]  # two checkpoints, then the final save
    assert json.loads((out / "run.json").read_text())["checkpoint_every"] == 5


def test_edit_run_is_evaluated_by_a_greedy_episode(tmp_path, capsys):
    out = tmp_path / "edit"
    code = main(["train", "--env", "PromptEnv/BBCTopic-Edit-v0", "--policy", "dqn", "--steps", "30",
                 "--llm", "fake", "--out", str(out),
                 "--env-kwargs", '{"minibatch_size": 2, "max_edits": 3, "n_candidates": 2}'])
    assert code == 0
    assert main(["eval", "--run", str(out), "--split", "dev", "--limit", "4"]) == 0
    report = json.loads((out / "eval_dev.json").read_text())
    manual, agent = report["rows"]
    assert manual["policy"] == "manual" and agent["policy"] == "dqn"
    assert manual["n_test"] == agent["n_test"] == 4
    trained = json.loads((out / "run.json").read_text())["llm_calls"]
    assert agent["train_calls"] == trained > 0 and manual["train_calls"] == 0  # as a Select run's row
    assert agent["llm_calls"] == trained + agent["eval_calls"]
    assert 1 <= len(report["edits"]) <= 3
    assert report["improvement"] == pytest.approx(agent["test_score"] - manual["test_score"], abs=1e-3)
    assert report["initial_prompt"]["instruction"] and report["final_prompt"]["instruction"]
    assert "manual" in capsys.readouterr().out


def test_select_run_with_a_box_agent_evaluates_with_box_observations(tmp_path):
    out = tmp_path / "dqn"
    assert main(["train", "--env", "PromptEnv/BBCTopic-Select-v0", "--policy", "dqn", "--steps", "10",
                 "--llm", "fake", "--out", str(out), "--env-kwargs", TINY_KWARGS]) == 0
    assert main(["eval", "--run", str(out), "--split", "dev", "--limit", "3", "--dev-limit", "3"]) == 0
    rows = json.loads((out / "eval_dev.json").read_text())["rows"]
    assert rows[-1]["policy"] == "dqn" and sum(rows[-1]["prompt_counts"]) == 3


def test_redact_removes_secrets():
    spec = {"backend": "openai", "base_url": "https://user:pw@host/v1", "model": "m", "api_key": "sk-123",
            "max_new_tokens": 8, "headers": {"Authorization": "Bearer x"}}
    cleaned = redact(spec)
    assert "sk-123" not in json.dumps(cleaned) and "pw@" not in json.dumps(cleaned)
    assert cleaned["max_new_tokens"] == 8 and cleaned["model"] == "m"
    assert "sk-123" not in redact(json.dumps(spec))
    assert redact("default") == "default"


# --------------------------------------------------------------------------- user mistakes


@pytest.fixture()
def no_data_dir(monkeypatch):
    monkeypatch.delenv("PROMPT_ENV_DATA", raising=False)


TRAIN = ["train", "--steps", "5", "--llm", "fake"]
MISTAKES = {
    "unknown env id": ([*TRAIN, "--env", "PromptEnv/BBCTopc-Select-v0", "--policy", "tabular-q"],
                       "unknown env id", "BBCTopic"),
    "unknown version": ([*TRAIN, "--env", "PromptEnv/BBCTopic-Select-v9", "--policy", "tabular-q"],
                        "unknown env id", "prompt-env list"),
    "unknown agent": ([*TRAIN, "--env", TABULAR_ID, "--policy", "tabq"], "unknown agent", "tabular-q"),
    "a policy train cannot train": ([*TRAIN, "--env", TABULAR_ID, "--policy", "hill-climb"],
                                    "'hill-climb' is a policy, not an agent", "optimize --policy hill-climb"),
    "missing data dir": ([*TRAIN, "--env", "PromptEnv/SST2-Select-Tabular-v0", "--policy", "tabular-q"],
                         "data directory", "PROMPT_ENV_DATA"),
    "bad llm spec": (["train", "--steps", "5", "--env", TABULAR_ID, "--policy", "tabular-q", "--llm", "gpt-9"],
                     "unknown LLM spec", "LLM spec forms"),
    "bad json": ([*TRAIN, "--env", TABULAR_ID, "--policy", "tabular-q", "--env-kwargs", "{max_examples: 6}"],
                 "not valid JSON", "JSON object"),
    "json not an object": ([*TRAIN, "--env", TABULAR_ID, "--policy", "tabular-q", "--env-kwargs", "[1]"],
                           "must be a JSON object", "JSON object"),
    "unknown env kwarg": ([*TRAIN, "--env", TABULAR_ID, "--policy", "tabular-q", "--env-kwargs", '{"colour": 1}'],
                          "'colour'", "max_examples"),
    "bad env kwarg value": ([*TRAIN, "--env", TABULAR_ID, "--policy", "tabular-q",
                             "--env-kwargs", '{"episode_length": 0}'], "episode_length", "--help"),
    "agent does not fit env": ([*TRAIN, "--env", "PromptEnv/BBCTopic-Select-v0", "--policy", "tabular-q"],
                               "Discrete observation", "-Tabular"),
    "reward of the wrong kind": ([*TRAIN, "--env", TABULAR_ID, "--policy", "tabular-q",
                                  "--env-kwargs", '{"reward": "f1"}'], "generation tasks", "accuracy"),
    "unknown agent kwarg": ([*TRAIN, "--env", TABULAR_ID, "--policy", "tabular-q", "--agent-kwargs", '{"alpha": 1}'],
                            "alpha", "--agent-kwargs"),
}


@pytest.mark.parametrize("case", list(MISTAKES))
def test_user_mistakes_give_one_line_and_exit_2(case, capsys, no_data_dir, tmp_path):
    argv, message, hint = MISTAKES[case]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 2, captured.err
    assert lines[0].startswith("prompt-env train: error: ") and message in lines[0]
    assert lines[1].startswith("hint: ") and hint in lines[1]
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "run" / "run.json").exists()


def test_eval_of_a_directory_without_run_json(tmp_path, capsys):
    assert main(["eval", "--run", str(tmp_path), "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "no run.json" in err and "prompt-env train" in err
    assert main(["eval", "--run", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_eval_of_a_run_with_a_damaged_agent_file(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--env", TABULAR_ID, "--policy", "tabular-q", "--steps", "4", "--llm", "fake",
                 "--out", str(out), "--env-kwargs", TINY_KWARGS]) == 0
    (out / "agent.safetensors").write_bytes(b"not an agent")
    capsys.readouterr()
    assert main(["eval", "--run", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "agent.safetensors" in err and "Traceback" not in err


def test_argparse_errors_return_2(capsys):
    assert main(["train", "--env", TABULAR_ID, "--policy", "tabular-q", "--steps", "0"]) == 2
    assert "positive integer" in capsys.readouterr().err
    assert main(["eval", "--run", ".", "--split", "validation"]) == 2


def test_the_hint_of_each_json_option_is_a_value_it_accepts(tmp_path, capsys, no_data_dir):
    """A malformed --task-options once hinted '{"max_examples": 20}', which optimize refuses."""
    from agents.cli.checks import JSON_EXAMPLES

    rows = [{"text": f"review {i}", "label": ["bad", "good"][i % 2]} for i in range(12)]
    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    optimize = ["optimize", "--data", str(data), "--llm", "fake", "--dry-run", "--task-options"]
    assert main([*optimize, "{split_seed: 1}"]) == 2
    assert f"'{JSON_EXAMPLES['--task-options']}'" in capsys.readouterr().err
    assert main([*optimize, JSON_EXAMPLES["--task-options"]]) == 0
    train = [*TRAIN, "--env", TABULAR_ID, "--policy", "tabular-q", "--out", str(tmp_path / "run")]
    assert main([*train, "--env-kwargs", JSON_EXAMPLES["--env-kwargs"],
                 "--agent-kwargs", JSON_EXAMPLES["--agent-kwargs"]]) == 0
    capsys.readouterr()
    assert main([*optimize, '{"max_examples": 20}']) == 2
    refused = capsys.readouterr().err
    assert "unknown option 'max_examples'; accepted:" in refused and "split_seed" in refused


def test_a_warning_about_the_data_is_one_line_naming_the_command(tmp_path, capsys):
    rows = [{"text": f"review {i}", "label": i % 2} for i in range(12)]
    data = tmp_path / "numbered.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["optimize", "--data", str(data), "--llm", "fake", "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("prompt-env optimize: warning: ") and "numbered.jsonl: the labels are integers" in err
    assert "UnnamedLabelsWarning" not in err and "_split_one" not in err


def test_training_into_a_used_run_directory_replaces_the_old_run_and_says_so(tmp_path, capsys):
    """The old run's evaluation described another agent (here of another env) and stayed."""
    out = tmp_path / "run"
    first = ["train", "--env", TABULAR_ID, "--policy", "tabular-q", "--steps", "5", "--llm", "fake",
             "--out", str(out)]
    assert main(first) == 0
    assert main(["eval", "--run", str(out), "--limit", "4", "--llm", "fake"]) == 0
    assert (out / "eval_test.json").exists()
    capsys.readouterr()
    edit = "PromptEnv/BBCTopic-Edit-Tabular-v0"
    assert main(["train", "--env", edit, "--policy", "tabular-q", "--steps", "5", "--llm", "fake",
                 "--out", str(out)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert f"held a tabular-q run on {TABULAR_ID}, status 'finished'; this run replaces it" in said
    assert "eval_test.json" in said and not (out / "eval_test.json").exists()
    assert json.loads((out / "run.json").read_text())["env_id"] == edit
