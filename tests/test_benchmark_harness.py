"""The benchmark harness (benchmarks/run.py): outputs, row keys and resumption.

The resumption mechanics run on the fake LLM (fast); one tiny cell runs the
real embedded default model so the harness is checked end to end on it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# the `harness` fixture (benchmarks/run.py as a module) is in conftest.py


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_fake_grid_writes_outputs_and_resumes(harness, tmp_path):
    out = tmp_path / "bench"
    argv = [
        "--tasks",
        "bbc-topic",
        "--policies",
        "random,manual,best-fixed-on-dev,per-query-oracle,ucb1,dqn",
        "--seeds",
        "0,1",
        "--budget",
        "30",
        "--test-limit",
        "6",
        "--llm",
        "fake",
        "--out",
        str(out),
        "--no-progress",
    ]
    first = harness.main(argv)
    assert first["new"] == 12 and first["skipped"] == 0
    rows = _lines(out / "results.jsonl")
    assert len(rows) == 12
    for row in rows:
        missing = [k for k in harness.REQUIRED_KEYS if k not in row]
        assert not missing, f"row {row['policy']} lacks {missing}"
        assert row["test_limit"] == 6 and row["metric"] == "accuracy"
        assert row["upper_bound"] == (row["policy"] == "per-query-oracle")
    learned = [r for r in rows if r["policy"] in ("ucb1", "dqn")]
    assert all(r["curve"]["llm_calls"] and r["llm_calls"] >= 30 for r in learned)
    for name in ("results.md", "score_vs_calls.png", "learning_curves.png"):
        assert (out / name).stat().st_size > 0, name
    report = (out / "results.md").read_text()
    assert "per-query-oracle (upper bound)" in report
    assert "fixed test subset of 6 examples" in report

    second = harness.main(argv)
    assert second["new"] == 0 and second["skipped"] == 12
    assert len(_lines(out / "results.jsonl")) == 12

    # one more seed: only its cells run; a torn last line (killed mid-write) is ignored
    with open(out / "results.jsonl", "a") as handle:
        handle.write('{"task": "bbc-top')
    third = harness.main([*argv[:5], "0,1,2", *argv[6:]])
    assert third["new"] == 6 and third["skipped"] == 12
    # the row after the torn line starts a line of its own (it was glued onto the fragment
    # and lost, so the next rerun ran that cell again)
    lines = (out / "results.jsonl").read_text().splitlines()
    assert lines[12] == '{"task": "bbc-top' and len([json.loads(x) for x in lines[13:]]) == 6
    assert harness.main([*argv[:5], "0,1,2", *argv[6:]])["new"] == 0


def test_parallel_processes_share_a_grid_without_duplicates(harness, tmp_path):
    """A (task, seed) claimed by a live process is skipped; a dead process's claim is taken over."""
    import subprocess

    out = tmp_path / "bench"
    argv = ["--tasks", "bbc-topic", "--policies", "random,manual", "--seeds", "0,1", "--budget", "10",
            "--test-limit", "4", "--llm", "fake", "--out", str(out), "--no-progress"]
    (out / ".claims").mkdir(parents=True)
    (out / ".claims" / "bbc-topic-0.pid").write_text("1")  # pid 1 is alive: another worker has seed 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".claims" / "bbc-topic-1.pid").write_text(str(dead.pid))  # a worker that died
    first = harness.main(argv)
    assert first["new"] == 2 and {r["seed"] for r in _lines(out / "results.jsonl")} == {1}
    assert not (out / ".claims" / "bbc-topic-1.pid").exists()  # released when done
    (out / ".claims" / "bbc-topic-0.pid").unlink()  # the other worker finished without rows
    second = harness.main(argv)
    assert second["new"] == 2 and len(_lines(out / "results.jsonl")) == 4
    assert harness.claim(out, "bbc-topic", 5) and harness.claim(out, "bbc-topic", 5)  # re-entrant
    harness.release(out, "bbc-topic", 5)
    assert not (out / ".claims" / "bbc-topic-5.pid").exists()


def test_protocol_config_sets_few_shot_seed_and_subset(harness):
    plan = harness.build_plan(
        harness.parse_args(["--config", str(harness.CONFIG_DIR / "protocol.toml")])
    )
    sst2 = next(t for t in plan.tasks if t.name == "sst2")
    assert sst2.seeds == [13, 21, 42, 87, 100] and sst2.test_limit == 500
    setting = harness.setting_of(plan, sst2, 21, harness.ProgressReporter(enabled=False))
    assert setting.env_kwargs["task_options"] == {"few_shot_seed": 21}
    assert setting.select_id == "PromptEnv/SST2-Select-v0" and setting.edit_id == "PromptEnv/SST2-Edit-v0"
    cells = list(plan.cells())
    assert {c[0].name for c in cells[: 3 * len(sst2.policies)]} == {"sst2", "agnews", "squad"}
    quick = harness.build_plan(harness.parse_args(["--quick"]))
    assert [t.name for t in quick.tasks] == ["bbc-topic"] and len(quick.tasks[0].seeds) == 2


def test_real_model_tiny_cell(harness, tmp_path):
    """One tiny grid on the real default model (SmolLM2-135M): bbc-topic works offline."""
    out = tmp_path / "real"
    argv = [
        "--tasks",
        "bbc-topic",
        "--policies",
        "random,manual,ucb1",
        "--seeds",
        "0",
        "--budget",
        "8",
        "--test-limit",
        "3",
        "--task-options",
        '{"n_dev": 3}',
        "--out",
        str(out),
        "--no-progress",
    ]
    result = harness.main(argv)
    assert result["new"] == 3
    rows = {r["policy"]: r for r in _lines(out / "results.jsonl")}
    assert set(rows) == {"random", "manual", "ucb1"}
    for row in rows.values():
        assert 0.0 <= row["test_score"] <= 1.0 and row["llm"] == "default"
    assert rows["ucb1"]["llm_calls"] == 8 + 3
    assert rows["ucb1"]["train_calls"] == 8 and rows["ucb1"]["eval_calls"] == 3
    assert rows["ucb1"]["distinct_pairs"] <= 8 + 3 and rows["manual"]["distinct_pairs"] == 3
    assert harness.main(argv)["skipped"] == 3


def test_a_config_mistake_is_one_line_before_any_work(harness, tmp_path):
    """A misspelt key once kept its default silently (test_limt: 40 test inputs, not 10); a
    missing file, bad TOML or unreadable data was a traceback."""
    import re

    import pytest

    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps({"review": f"r{i}", "label": ["bad", "good"][i % 2]}) + "\n"
                            for i in range(12)), encoding="utf-8")
    cases = {
        'test_limt = 10\n[[tasks]]\nname = "bbc-topic"\n': "unknown key 'test_limt' (did you mean 'test_limit'?)",
        f'[[tasks]]\npath = "{data}"\ninput_fields = "review"\n':
            "[[tasks]] #1: unknown key 'input_fields' (did you mean 'input_field'?)",
        f'[[tasks]]\npath = "{data}"\ninput_field = "review"\nlabel_field = "stars"\n':
            "expected a 'stars' field",
        "budget = \n": "not valid TOML",
    }
    for text, message in cases.items():
        config = tmp_path / "bench.toml"
        config.write_text(text, encoding="utf-8")
        with pytest.raises(SystemExit, match=re.escape(message)):
            harness.main(["--config", str(config), "--llm", "fake", "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit, match="no such file"):
        harness.main(["--config", str(tmp_path / "nope.toml")])
    assert not (tmp_path / "out").exists()
    for committed in sorted((Path(harness.__file__).parent / "configs").glob("*.toml")):
        assert harness.read_config(committed)["tasks"]  # every committed config passes the check
