"""benchmarks/tie_break_rule.py: replaying tie-break rules on recorded candidates.

The rows are built by hand (the script records them from the real model's search), so which
prompt each rule keeps can be checked exactly.
"""

from __future__ import annotations


def _row(**fields):
    row = {"task": "sst2", "seed": 13, "n_dev": 32, "n_held": 32,
           # dev scores are rewards over 32 inputs: one input is 1/32 = 0.03125
           "dev": [0.94, 0.92, 0.88, 0.85], "held": [0.70, 0.80, 0.95, 0.99],
           "validation": [0.80, 0.82, 0.90, 0.91]}
    return {**row, **fields}


def test_rules_keep_the_prompt_their_width_and_pooling_say(tie_break_rule):
    rules, row = tie_break_rule.RULES, _row()
    assert rules["dev only (no tie-break)"](row) == 0
    # within 1 input: #1 and #2; pooled (0.94*32+0.70*32) < (0.92*32+0.80*32)
    assert rules["within 1, dev + held-out (the default)"](row) == 1
    assert rules["within 1, held-out only"](row) == 1
    # within 2 inputs (0.0625) admits #3 (0.88); held-out alone prefers it
    assert rules["within 2, dev + held-out"](row) == 2
    assert rules["within 2, held-out only"](row) == 2
    # within 3 (0.09375) admits #4 (0.85, held-out 0.99)
    assert rules["within 3, held-out only"](row) == 3
    assert rules["within 3, dev + held-out"](row) == 3  # 0.85+0.99 > 0.88+0.95


def test_dev_weight_can_keep_the_dev_best(tie_break_rule):
    row = _row(dev=[0.97, 0.94], held=[0.80, 0.82], validation=[0.8, 0.7])
    assert tie_break_rule.RULES["within 1, dev + held-out (the default)"](row) == 0
    assert tie_break_rule.RULES["within 1, held-out only"](row) == 1


def test_report_is_paired_with_the_default(tie_break_rule):
    text = tie_break_rule.report([_row(), _row(task="agnews", dev=[0.8], held=[0.7], validation=[0.6])])
    lines = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert "+0.0 ± 0.0" in lines["within 1, dev + held-out (the default)"]
    # sst2: the default keeps #2 (82%), dev-only #1 (80%): -2 on sst2, 0 on agnews
    assert "-1.0 ± 1.4" in lines["dev only (no tie-break)"]
    assert "| 82.0 |" in lines["within 1, dev + held-out (the default)"]
