"""benchmarks/recount_distinct.py: the test pairs a pre-fix row left out, added back only where
the row's own fields prove them missing."""

from __future__ import annotations

import json

import pytest

from agents.experiments.files import read_jsonl


def _row(policy: str, distinct: int, train: int, test: int, curve: tuple[int, int] | None,
         tie_break_calls: int = 0) -> dict:
    row = {"task": "sst2", "seed": 21, "policy": policy, "distinct_pairs": distinct,
           "train_calls": train, "eval_calls": test, "llm_calls": train + test,
           "final_prompt": {"instruction": "Decide."}}
    if curve is not None:
        row["search_curve"] = {"llm_calls": [32, curve[0]], "distinct": [32, curve[1]], "best": [0.8, 0.9]}
    if tie_break_calls:
        row["tie_break_calls"] = tie_break_calls
    return row


def test_rows_get_their_missing_test_pairs_back_only_when_proven(recount_distinct, tmp_path) -> None:
    rows = [
        {"task": "sst2", "seed": 21, "policy": "manual", "distinct_pairs": 500, "train_calls": 0,
         "eval_calls": 500, "llm_calls": 500},                          # read the score tables
        _row("opro", 96, 96, 500, (96, 96)),                            # shipped a pool prompt
        _row("edit-tabular-q", 2307, 1967, 500, (1967, 1807)),          # counted in full
        _row("evolution", 1660, 1692, 500, (1692, 1660)),                # no tie on dev: missing
        _row("random-search", 1770, 1770, 500, (1692, 1692), 78),       # missing; tie-break all in
        _row("hill-climb", 2316, 1816, 500, (1700, 1700), 116),         # all counted
        _row("edit-tabular-q", 2209, 1770, 500, (1705, 1705), 65),      # tie-break: 4 of 65 pairs
        _row("maskable-ppo", 1200, 1240, 500, None),                     # either could hold
    ]
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = recount_distinct.main([str(path), "--write"])
    verdicts = [recount_distinct.classify(r)[0] for r in rows]
    assert verdicts == ["table", "recounted", "exact", "recounted", "recounted", "exact",
                        "test pairs counted, tie-break unchecked", "unresolved"]
    after = read_jsonl(path)
    assert [r["distinct_pairs"] for r in after] == [500, 596, 2307, 2160, 2270, 2316, 2209, 1200]
    assert "+500 test pairs" in after[1]["distinct_recount"] and "distinct_recount" not in after[2]
    assert "2 exact" in text and "| sst2 | 21 | opro | recounted | 96 | 500 |" in text
    recount_distinct.main([str(path), "--write"])  # a recounted row is never counted twice
    assert read_jsonl(path) == after


def test_a_row_rerun_alone_gives_its_measured_count(recount_distinct, tmp_path) -> None:
    committed = _row("edit-tabular-q", 2113, 1770, 500, (1705, 1609), 65)  # tie-break: 4 of 65
    assert recount_distinct.classify(committed)[0] == "test pairs counted, tie-break unchecked"
    path, rerun = tmp_path / "results.jsonl", tmp_path / "alone.jsonl"
    path.write_text(json.dumps(committed) + "\n")
    rerun.write_text(json.dumps({**committed, "distinct_pairs": 2143, "wall_s": 73.0}) + "\n")
    text = recount_distinct.main([str(path), "--measured", str(rerun), "--write"])
    (row,) = read_jsonl(path)
    assert row["distinct_pairs"] == 2143 and row["distinct_recount"].startswith("measured")
    assert "1 measured" in text and recount_distinct.classify(row) == ("measured", 0)
    rerun.write_text(json.dumps({**committed, "test_score": 0.85}) + "\n")  # another run
    with pytest.raises(SystemExit):
        recount_distinct.main([str(path), "--measured", str(rerun)])
    assert read_jsonl(path) == [row]
