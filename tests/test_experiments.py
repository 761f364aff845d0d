"""The experiment layer: registry, settings, one results row per policy, honest accounting."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from agents.experiments import POLICIES, Setting, get_policy, run_policy
from agents.experiments.report import policy_table, summary_tables
from agents.progress import ProgressReporter

FAKE = {"llm": "fake", "task_options": {"n_dev": 4}}


def fake_setting(**overrides) -> Setting:
    options = {"seed": 0, "train_reward": "margin", "test_limit": 5,
               "edit_id": "PromptEnv/BBCTopic-Edit-v0", "edit_minibatch": 2, **overrides}
    return Setting("PromptEnv/BBCTopic-Select-v0", dict(FAKE), **options)


def test_unknown_policy_names_close_matches() -> None:
    with pytest.raises(ValueError, match="did you mean best-fixed-on-dev"):
        get_policy("best-fixed-on-de")


SELECT_POLICIES = [n for n, p in POLICIES.items()
                   if (p.kind in ("baseline", "agent") and not n.startswith(("edit-", "compose-")))
                   or n == "sb3-ppo"]
"""Policies that choose pool prompts on the Select env (the edit, compose, search and white-box
policies have tests of their own)."""


@pytest.mark.parametrize("name", SELECT_POLICIES)
def test_every_select_policy_gives_one_consistent_row(name: str) -> None:
    """Machinery on the deterministic fake LLM: the accounting adds up for every policy."""
    row = run_policy(fake_setting(), name, 12)
    assert row["policy"] == name and row["n_test"] == 5 and 0.0 <= row["test_score"] <= 1.0
    assert row["llm_calls"] == row["train_calls"] + row["eval_calls"]
    assert 0 < row["distinct_pairs"] <= row["llm_calls"]
    assert row["wall_s"] >= 0.0 and 0.0 <= row["cache_hit_rate"] <= 1.0
    if POLICIES[name].trains:
        assert row["train_calls"] == 12 and row["curve"]["reward"]
    if name == "per-query-oracle":
        assert row["upper_bound"] and row["llm_calls"] == 5 * 11


def test_calibrated_variant_uses_calibrated_tables(default_backend, shared_data_dir) -> None:
    """On the real model: "manual@content-free" is the manual prompt under contextual
    calibration, and its score is the calibrated score table's column 0."""
    setting = Setting("PromptEnv/SST2-Select-v0",
                      {"llm": "default", "data_dir": str(shared_data_dir),
                       "task_options": {"few_shot_seed": 13}}, metric="accuracy", test_limit=6)
    raw = run_policy(setting, "manual", 0)
    calibrated = run_policy(setting, "manual@content-free", 0)
    assert raw["calibration"] is None and calibrated["calibration"] == "content-free"
    table = setting.select_env(calibration="content-free").score_table("test", "accuracy", limit=6)
    assert calibrated["test_score"] == pytest.approx(float(table[:, 0].mean()), abs=1e-4)
    assert setting.calibrated("content-free") is setting.calibrated("content-free")


def test_a_row_counts_the_distinct_pairs_its_policy_would_cost_alone(shared_data_dir) -> None:
    """On the real model and real SST-2: policies run one after another on one setting (as
    the harness runs a seed) each count their own distinct pairs. hill-climb run a second time
    ships the same prompt as the first; its test pairs were evaluated already, yet its row
    counts them, as a run of it alone does."""
    from agents.experiments.tie_break import TieBreak

    def sst2() -> Setting:
        return Setting.for_task("sst2", seed=13, data_dir=str(shared_data_dir), search_space=True,
                                edit_options={"minibatch_size": 8}, test_limit=6,
                                tie_break=TieBreak(prompts=3, inputs=4))

    shared = sst2()
    rows = [run_policy(shared, name, 60) for name in ("manual", "hill-climb", "hill-climb")]
    alone = run_policy(sst2(), "hill-climb", 60)
    assert rows[1]["final_prompt"] == rows[2]["final_prompt"] == alone["final_prompt"]
    assert rows[1]["distinct_pairs"] == rows[2]["distinct_pairs"] == alone["distinct_pairs"]
    assert alone["distinct_pairs"] >= alone["eval_calls"] == 6
    assert rows[0]["distinct_pairs"] == rows[0]["llm_calls"]  # read from the pool's tables


def test_a_dev_split_smaller_than_the_minibatch_is_what_a_new_prompt_costs() -> None:
    """4 dev inputs under a minibatch of 32: the env scores 4 per new prompt, so the policies
    plan with 4 (they used to plan 60 // 32 = 1 new prompt and leave the budget unspent)."""
    setting = fake_setting(edit_minibatch=32, edit_options={"fixed_minibatch": True, "max_edits": 3})
    assert setting.edit_cost() == 4
    assert fake_setting(edit_minibatch=32, edit_options={"max_examples": 3}).edit_cost() == 3
    assert fake_setting(edit_minibatch=None).edit_cost() == 4
    row = run_policy(setting, "edit-tabular-q", 60)
    assert row["train_calls"] > 40 and "minibatch of 4," in row["notes"]


def test_tables_render_for_terminal_and_markdown() -> None:
    rows = [run_policy(fake_setting(seed=s), name, 8) | {"task": "bbc-topic"}
            for s in (0, 1) for name in ("manual", "ucb1", "per-query-oracle")]
    markdown = summary_tables(rows)["bbc-topic"].to_markdown()
    assert "| ucb1 |" in markdown and "(upper bound)" in markdown and "± " in markdown
    single = policy_table(rows[:3], "one seed", notes=True)
    assert single.headers[:4] == ["policy", "test score", "LLM calls", "distinct pairs"]
    assert len(single.rows) == 3 and single.to_rich().row_count == 3


def test_an_80_column_terminal_shows_every_policy_name_whole() -> None:
    """The demo's table in a log or an 80-column terminal: headers wrap, names are not cut."""
    from agents.experiments.report import ResultTable

    table = ResultTable(["policy", "test score", "LLM calls", "distinct pairs", "cache hit rate",
                         "proposer calls", "wall s (measured)"], ["left"] + ["right"] * 6)
    table.rows = [["best-fixed-on-dev", "0.640", "380", "380", "0%", "0", "43.7"],
                  ["edit-tabular-q-propose", "0.660", "1296", "1161", "63%", "27", "1261.6"],
                  ["per-query-oracle (upper bound)", "0.960", "550", "550", "0%", "0", "75.0"]]
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=False, width=80).print(table.to_rich())
    text = buffer.getvalue()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    for cell in ("best-fixed-on-dev", "per-query-oracle", "(upper bound)", "1261.6", "(measured)"):
        assert cell in text
    assert "edit-tabular-q-p" in text and "ropose" in text  # longer than the room left: folded
    table.rows = [["manual", "0.5", "[bold]x[/] [benchmarks/results]", "1", "0%", "0", "1.0"]]
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=False, width=200).print(table.to_rich())
    assert "[bold]x[/] [benchmarks/results]" in buffer.getvalue()  # cells are text, not markup


def test_progress_reporter_prints_plain_lines_in_a_log() -> None:
    buffer = io.StringIO()
    reporter = ProgressReporter(console=Console(file=buffer, force_terminal=False, width=100),
                                log_every_s=3600)
    with reporter:
        bar = reporter.add("scoring", 4)
        for _ in range(4):
            reporter.update(bar, advance=1, status="ok")
    lines = buffer.getvalue().splitlines()
    assert lines == ["scoring: 1/4 (ok)", "scoring: 4/4 (ok)"]  # first, then throttled, then done
    silent = ProgressReporter(enabled=False)
    silent.update(silent.add("x", 1), advance=1)


def test_a_quiet_reporter_silences_the_libraries_bars_and_gives_them_back() -> None:
    """--no-progress / progress=False: no transformers bar, not even the GGUF reader's own
    tqdm bar of the default model's one-time conversion; the setting is restored after."""
    import transformers.modeling_gguf_pytorch_utils as gguf_reader
    from transformers.utils import logging as hf_logging

    from prompt_env.llm.default_model import _gguf_bar_as_configured

    hf_logging.enable_progress_bar()  # as on a terminal with no HF_HUB_DISABLE_PROGRESS_BARS
    with ProgressReporter(enabled=False), ProgressReporter(enabled=False):
        assert not hf_logging.is_progress_bar_enabled()
        with _gguf_bar_as_configured():
            assert gguf_reader.tqdm(range(3)).disable
        assert not gguf_reader.tqdm(range(3), file=io.StringIO()).disable
    assert hf_logging.is_progress_bar_enabled()
    with ProgressReporter(enabled=True, console=Console(file=io.StringIO())), _gguf_bar_as_configured():
        assert hf_logging.is_progress_bar_enabled()
        assert not gguf_reader.tqdm(range(3), file=io.StringIO()).disable


def test_usage_meter_counts_distinct_requests_and_phases() -> None:
    from prompt_env.llm import load_llm

    llm = load_llm("fake", cache=False)
    with llm.stats.phase("dev"):
        llm.score(["a", "b", "a"], [" x", " y"])
    with llm.stats.phase("test"):
        llm.score(["a", "c"], [" x", " y"])
    assert llm.stats.calls == 5 and llm.stats.distinct == 3
    assert llm.stats.phases["dev"]["calls"] == 3 and llm.stats.phases["dev"]["distinct"] == 2
    assert llm.stats.phases["test"]["distinct"] == 1 and llm.stats.phases["test"]["cache_hits"] == 0
    llm.stats.forget_seen()  # a new job on the same LLM counts its own distinct requests
    llm.score(["a", "d"], [" x", " y"])
    assert llm.stats.calls == 7 and llm.stats.distinct == 5
    assert np.isfinite(llm.score(["a"], [" x"])).all()
