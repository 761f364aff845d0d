"""benchmarks/sample_efficiency.py: the table-reading searchers (paired subsets, paired halving).

Both read a dev score table that the benchmark computes on the real model; here the table is
built by hand so the selection and the cost accounting can be checked exactly.
"""

from __future__ import annotations

import numpy as np


def _table(n_dev: int = 40, k: int = 11, best: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    quality = np.linspace(0.5, 0.7, k)
    quality[best] = 0.95
    table = (rng.random((n_dev, k)) < quality).astype(float)
    labels = np.arange(n_dev) % 2
    return table, labels


def test_paired_halving_finds_a_clear_winner_within_budget(sample_efficiency):
    table, labels = _table()
    n_dev, k = table.shape
    budget = int(0.3 * n_dev * k)
    hits = 0
    for seed in range(20):
        arm, usage = sample_efficiency.paired_halving(table, labels, budget, seed)
        assert 0 <= arm < k
        assert usage["env_calls"] == usage["distinct"] <= budget
        assert usage["env_calls"] >= 0.8 * budget  # spends (nearly) what it was given
        hits += arm == 3
    assert hits >= 16


def test_paired_halving_pairs_and_survivors(sample_efficiency):
    # prompt 0 is right on every input, the rest on none: the first round already separates them
    table = np.zeros((16, 5))
    table[:, 0] = 1.0
    labels = np.arange(16) % 2
    arm, usage = sample_efficiency.paired_halving(table, labels, budget=40, seed=1)
    assert arm == 0
    # 3 rounds (ceil log2 5), each an even share of what is left: 5 prompts x 2 inputs (40 // 3
    # = 13 pairs), 3 x 5 new (30 // 2 = 15), 2 x 7 new (15): 10 + 15 + 14 pairs
    assert usage["env_calls"] == 39


def test_paired_halving_tiny_budget_still_names_a_prompt(sample_efficiency):
    table, labels = _table(n_dev=8, k=11)
    arm, usage = sample_efficiency.paired_halving(table, labels, budget=5, seed=0)
    assert 0 <= arm < 11 and usage["env_calls"] == 0


def test_balanced_subset_alternates_labels(sample_efficiency):
    labels = np.array([0] * 10 + [1] * 10)
    rows = sample_efficiency.balanced_subset(labels, 6, np.random.default_rng(0))
    assert sorted(labels[rows].tolist()) == [0, 0, 0, 1, 1, 1]
    assert len(set(rows.tolist())) == 6
