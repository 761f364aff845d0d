"""The benchmark harness on a user's own data (a path in the TOML or --tasks), with TensorBoard rows.

The grid runs on the fake LLM (what is tested is how paths and their options
reach the envs); the data is a CSV of real SST-2 sentences with named columns
and integer labels named in the config.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from agents.experiments.task_ids import task_entry
from agents.experiments.tensorboard import read_scalars
from prompt_env.errors import UnnamedLabelsWarning

# the `harness` fixture (benchmarks/run.py as a module) is in conftest.py


@pytest.fixture()
def reviews_csv(tmp_path: Path, shared_data_dir: Path) -> Path:
    with open(shared_data_dir / "classification" / "sst-2" / "test.tsv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))[:24]
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review", "stars"])
        writer.writerows([r["sentence"], r["label"]] for r in rows)
    return path


def test_toml_task_path_with_label_options_and_tensorboard(harness, reviews_csv, tmp_path):
    config = tmp_path / "mine.toml"
    config.write_text(
        'policies = ["random", "manual", "best-fixed-on-dev", "ucb1"]\n'
        "budget = 12\ntest_limit = 4\n\n[[tasks]]\n"
        f'path = "{reviews_csv}"\nname = "my-reviews"\ninput_field = "review"\n'
        'label_field = "stars"\nlabel_names = ["negative", "positive"]\nseeds = [0]\n'
    )
    out = tmp_path / "bench"
    summary = harness.main(["--config", str(config), "--llm", "fake", "--out", str(out),
                            "--no-progress", "--tensorboard", str(tmp_path / "tb")])
    assert summary["new"] == 4
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["task"] for r in rows} == {"my-reviews"}
    assert all(r["task_path"] == str(reviews_csv) for r in rows)
    assert rows[0]["task_options"]["label_names"] == ["negative", "positive"]
    ucb1 = next(r for r in rows if r["policy"] == "ucb1")
    assert ucb1["train_reward"] == "margin" and ucb1["test_limit"] == 4
    assert "## my-reviews" in (out / "results.md").read_text()
    runs = sorted(p.name for p in (tmp_path / "tb").iterdir())
    assert runs == sorted(f"my-reviews_{r['policy']}_seed0_1" for r in rows)
    scalars = read_scalars(tmp_path / "tb" / "my-reviews_ucb1_seed0_1")
    assert scalars["test/score"] == [(ucb1["llm_calls"], pytest.approx(ucb1["test_score"], abs=1e-6))]
    assert len(scalars["train/reward_smoothed"]) == len(ucb1["curve"]["reward"])


def test_tasks_flag_takes_a_path_and_bad_entries_say_why(harness, reviews_csv, tmp_path):
    out = tmp_path / "flag"
    with pytest.warns(UnnamedLabelsWarning, match="without names"):  # no label_names given here
        summary = harness.main(["--tasks", str(reviews_csv), "--policies", "manual", "--test-limit", "3",
                                "--task-options", '{"input_field": "review", "label_field": "stars"}',
                                "--llm", "fake", "--out", str(out), "--no-progress"])
    assert summary["new"] == 1 and summary["rows"][0]["task"] == "reviews"
    assert task_entry({"name": "sst2"}) == ("sst2", None, {})
    with pytest.raises(ValueError, match="needs name = <a catalog task"):
        task_entry({"name": "nope"})
    with pytest.raises(FileNotFoundError, match="neither a catalog task"):
        task_entry({"path": str(tmp_path / "missing.jsonl")})
