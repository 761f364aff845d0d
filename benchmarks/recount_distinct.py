"""Recount the distinct pairs of results rows written before each row counted its own.

    python benchmarks/recount_distinct.py benchmarks/results/proposer/results.jsonl [--write]

Until commit d35cf9e the harness counted distinct (prompt, input) pairs on one LLM meter
per (task, seed) process: a policy that shipped a prompt an earlier policy of the process
had already scored on the test inputs (the manual prompt, a pool prompt, another search's
winner) counted none of its test pairs, and a tie-break rescoring pairs another policy's
tie-break had scored counted none of those. This script finds, from a row's own fields and
no LLM calls, which rows that touched and adds the missing test pairs back where the row
proves how many they are:

- a row's test evaluation is all or nothing (one prompt on the same inputs): its recorded test
  pairs are 0 or ``eval_calls``;
- its training pairs are at most ``train_calls`` and at least the last ``distinct`` of its
  search curve (counted on the policy's own Edit env), exactly that when the curve covers
  every training call but the tie-break's (``tie_break_calls``), so what remains is the
  tie-break's pairs and the test pairs.

A row whose count can only be right is **exact**; one whose count can only hold no test pairs
is **recounted** (``distinct_pairs`` + ``eval_calls``, and ``distinct_recount`` names what
was added); one that could be either is **unresolved** and stays as it is: rerun it alone to
count it. A tie-break that counted fewer distinct pairs than calls is marked **tie-break
unchecked** (see :func:`classify`). ``--measured RERUN.jsonl`` gives rows rerun alone with
the fixed harness: where one reproduces a row (test score, calls, prompt), its count replaces
the row's, marked **measured**. Rows that read the pool's score tables counted their test pairs in full already.
``--write`` rewrites the file in place (atomically); without it the script only reports.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from agents.experiments.files import read_jsonl, save_text  # noqa: E402
from agents.experiments.report import ResultTable  # noqa: E402

RECOUNT_FIELD = "distinct_recount"
MEASURED = "measured"
SAME_RUN = ("test_score", "llm_calls", "train_calls", "eval_calls", "final_prompt", "tie_break_calls")
"""Fields a rerun of a row must reproduce for its count to replace the row's."""


def counted(row: dict[str, Any]) -> tuple[bool | None, bool | None]:
    """(are the row's test pairs in its ``distinct_pairs``?, are all its tie-break's calls?);
    None where the row's fields cannot tell."""
    distinct, train, test = (int(row[k]) for k in ("distinct_pairs", "train_calls", "eval_calls"))
    tie_break = int(row.get("tie_break_calls") or 0)
    curve = row.get("search_curve") or {}
    own = int(curve["distinct"][-1]) if curve.get("distinct") else 0
    if curve.get("llm_calls") and int(curve["llm_calls"][-1]) == train - tie_break:
        rest = distinct - own  # the curve saw every search call: the rest is tie-break + test
        tested = True if rest > tie_break else False if rest < test else None
        if tested is None or not tie_break:
            return tested, None if tested is None else True
        return tested, rest - (test if tested else 0) == tie_break
    tested = False if distinct - test < own else True if distinct > train else None
    return tested, True if not tie_break else None


def classify(row: dict[str, Any]) -> tuple[str, int]:
    """(verdict, test pairs to add): ``"table"`` (read the pool's score tables, counted in
    full), ``"exact"``, ``"recounted"``, ``"unresolved"``; ``", tie-break unchecked"`` follows
    when the row's tie-break, scored on the shared meter, counted fewer distinct pairs than
    calls: another policy's tie-break may have scored them first, or a prompt and its
    calibrated twin shared them, and the row's fields cannot tell which."""
    if row.get("final_prompt") is None:
        return "table", 0
    if str(row.get(RECOUNT_FIELD, "")).startswith(MEASURED):
        return "measured", 0
    tested, tie_break = counted(row)
    unchecked = "" if tie_break else ", tie-break unchecked"
    if RECOUNT_FIELD in row:
        return "recounted" + unchecked, 0
    if tested is None:
        return "unresolved", 0
    if tested:
        return ("exact" if not unchecked else "test pairs counted" + unchecked), 0
    return "recounted" + unchecked, int(row["eval_calls"])


def _key(row: dict[str, Any]) -> tuple[Any, Any, str]:
    return row.get("task"), row.get("seed"), row["policy"]


def measure(row: dict[str, Any], alone: dict[str, Any], source: Path) -> dict[str, Any]:
    """``row`` with the distinct pairs its rerun ``alone`` (same row, fixed harness) counted."""
    for field in SAME_RUN:
        if row.get(field) != alone.get(field):
            raise ValueError(f"{source}: the rerun of {_key(row)} differs in {field!r} "
                             f"({alone.get(field)!r}, committed {row.get(field)!r}), so it is "
                             "not the same run; rerun that row again or leave it out")
    return {**row, "distinct_pairs": int(alone["distinct_pairs"]),
            RECOUNT_FIELD: f"{MEASURED}: the row rerun alone counted {alone['distinct_pairs']} "
                           f"(was {row['distinct_pairs']})"}


def recount(rows: list[dict[str, Any]], measured: dict[tuple[Any, Any, str], dict[str, Any]] | None = None,
            source: Path = Path("rerun")) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str, int]]]:
    """The rows with their missing test pairs added back, or with the count of their rerun
    alone where ``measured`` has one, and each row's verdict."""
    out, verdicts = [], []
    for row in rows:
        alone = (measured or {}).get(_key(row))
        if alone is not None:
            row = measure(row, alone, source)
        verdict, add = classify(row)
        verdicts.append((row, verdict, add))
        if add:
            row = {**row, "distinct_pairs": int(row["distinct_pairs"]) + add,
                   RECOUNT_FIELD: f"+{add} test pairs an earlier policy of its process had scored "
                                  "(benchmarks/recount_distinct.py)"}
        out.append(row)
    return out, verdicts


def report(verdicts: list[tuple[dict[str, Any], str, int]]) -> str:
    """How many rows got each verdict, and a table of those not plainly exact."""
    counts = Counter(v for _, v, _ in verdicts)
    table = ResultTable(["task", "seed", "policy", "verdict", "distinct pairs", "test pairs added"],
                        ["left", "right", "left", "left", "right", "right"])
    for row, verdict, add in verdicts:
        if verdict not in ("table", "exact"):
            table.rows.append([str(row.get("task")), str(row.get("seed")), row["policy"], verdict,
                       str(row["distinct_pairs"]), str(add)])
    summary = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
    return f"{summary}\n\n{table.to_markdown()}\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=Path, help="a results.jsonl of the benchmark harness")
    parser.add_argument("--measured", type=Path, action="append", default=[],
                        help="results.jsonl of rows rerun alone with the fixed harness: their "
                             "counts replace the rows' (test score, calls and prompt must match)")
    parser.add_argument("--write", action="store_true", help="rewrite the file with the recounts")
    args = parser.parse_args(argv)
    for path in [args.rows, *args.measured]:
        if not path.is_file():
            parser.error(f"{path}: no such results file")
    rows = read_jsonl(args.rows)
    measured = {_key(r): r for path in args.measured for r in read_jsonl(path)}
    try:
        new, verdicts = recount(rows, measured, Path(", ".join(map(str, args.measured))))
    except ValueError as error:
        parser.error(str(error))
    text = report(verdicts)
    if args.write and new != rows:
        save_text("".join(json.dumps(r) + "\n" for r in new), args.rows)
    print(text)
    return text


if __name__ == "__main__":
    main()
