"""The committed pages of `benchmarks/optimize_grid.py`: what the script writes from the rows."""

from __future__ import annotations


def pages(optimize_grid):
    """(folder, budget) of every committed optimize grid: the heavy runs and each budget-N."""
    root = optimize_grid.DEFAULT_OUT
    yield root, "heavy"
    for folder in sorted(root.glob("budget-*")):
        yield folder, folder.name.removeprefix("budget-")


def test_each_committed_page_is_what_its_rows_give_with_the_command_that_wrote_them(optimize_grid):
    for folder, budget in pages(optimize_grid):
        page = (folder / "README.md").read_text(encoding="utf-8")
        assert page == optimize_grid.summary(folder, budget), folder
        for task in {run[0] for run in optimize_grid.runs(folder)}:
            line = f"optimize_grid.py --tasks {task} --budget {budget}"
            assert line in page, (folder, line)
        assert ("--out benchmarks/results/optimize/" in page) == (folder != optimize_grid.DEFAULT_OUT)
