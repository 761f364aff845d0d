"""benchmarks/proposer_summary.py: the comparison tables of issue #27 from hand-built rows."""

from __future__ import annotations


def _row(policy, seed, score, instruction=None, **extra):
    row = {"task": "sst2", "metric": "accuracy", "n_test": 500, "policy": policy, "seed": seed,
           "test_score": score, "llm_calls": 1000, "distinct_pairs": 900, **extra}
    if instruction is not None:
        row["final_prompt"] = {"instruction": instruction}
    return row


def test_reference_is_the_best_pool_only_search_and_deltas_are_paired(proposer_summary):
    rows = [_row("evolution", 13, 0.86), _row("evolution", 21, 0.84),
            _row("random-search", 13, 0.80), _row("random-search", 21, 0.82),
            # ape has seed 13 only: its delta is against evolution's seed 13, not its mean
            _row("ape", 13, 0.90, "Say the sentiment.", proposer_calls=40)]
    table, reference = proposer_summary.task_table(rows)
    assert reference == "evolution"
    by_policy = {r[0]: r for r in table.rows}
    assert by_policy["ape"][3] == "+4.0"
    assert by_policy["random-search"][3] == "-4.0"
    assert by_policy["evolution"][3] == ""
    assert by_policy["ape"][6] == "40" and by_policy["evolution"][6] == "0"
    assert by_policy["evolution"][2] == "85.0 ± 1.4"


def test_instructions_are_ordered_and_marked_written_or_pool(proposer_summary):
    pool = {"Decide whether the movie review is negative or positive."}
    rows = [_row("gepa", 21, 0.80, "Decide whether the movie review is negative or positive."),
            _row("ape", 100, 0.86, "The answer | is 1."),
            _row("ape", 13, 0.84, "Say the sentiment."),
            _row("evolution", 13, 0.86)]           # not a writer: not listed
    table = proposer_summary.instructions(rows, pool)
    assert [(r[0], r[1]) for r in table.rows] == [("ape", "13"), ("ape", "100"), ("gepa", "21")]
    assert [r[4] for r in table.rows] == ["written", "written", "pool"]
    assert table.rows[1][3] == "The answer / is 1."     # a pipe would break the markdown table
    # without the pool (no data here) the source is unknown, not guessed
    assert {r[4] for r in proposer_summary.instructions(rows, set()).rows} == {"?"}


def test_summary_reads_every_task(proposer_summary):
    rows = [_row("evolution", 13, 0.86), _row("ape", 13, 0.9, "x"),
            {**_row("evolution", 0, 0.3), "task": "ii-antonyms", "metric": "exact_match", "n_test": 50}]
    text = proposer_summary.summary(rows, data_dir="/nonexistent")
    assert "## sst2 (accuracy, first 500 test inputs)" in text
    assert "## ii-antonyms (exact_match, first 50 test inputs)" in text
    assert "| ape | 1 | 90.0 ± 0.0 | +4.0 |" in text
