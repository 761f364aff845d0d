"""The documentation stays a front door: short README, no broken links, results with their commands.

* README.md has at most :data:`MAX_README_LINES` lines.
* Every relative link and image in README.md, ``docs/*.md`` and
  ``benchmarks/results/**/README.md`` points to a file that exists; an anchor (``#...``) into
  a Markdown file names one of its headings.
* Every line of the README's "Results at a glance" table links to a
  ``benchmarks/results/<name>/README.md`` that exists and holds a fenced command.
* User-facing docs (README.md, ``docs/*.md``) cite no issue numbers.

Reads text files only (no model, no network): well under a second.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 450
GLANCE_HEADING = "Results at a glance"

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
ISSUE_REFERENCE = re.compile(r"\bissues?\s*#?\s*\d+|(?<![\w&/#])#\d+\b", re.IGNORECASE)
COMMAND = re.compile(r"(^|\s|/)(python|prompt-env|make)\b")


def user_docs() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def linked_docs() -> list[Path]:
    return [*user_docs(), *sorted((ROOT / "benchmarks" / "results").glob("**/README.md"))]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, inline code blanked out."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, INLINE_CODE.sub("code", line)))
    return lines


def fenced_blocks(text: str) -> list[str]:
    blocks, current = [], None
    for line in text.splitlines():
        if FENCE.match(line):
            if current is None:
                current = []
            else:
                blocks.append("\n".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            name, n = base, 0
            while name in found:
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


def links(path: Path) -> list[tuple[int, str]]:
    return [(number, target) for number, line in prose_lines(path.read_text(encoding="utf-8"))
            for target in LINK.findall(line)]


def is_external(target: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) is not None


def broken(path: Path, target: str) -> str | None:
    """Why a relative link from ``path`` is broken, or None."""
    file_part, _, anchor = target.partition("#")
    destination = (path.parent / file_part).resolve() if file_part else path
    if not destination.exists():
        return "no such file or directory"
    if ROOT not in destination.parents and destination != ROOT:
        return "points outside the repository"
    if anchor and destination.suffix == ".md" and anchor.lower() not in anchors(destination):
        return f"no heading with anchor #{anchor} in {destination.relative_to(ROOT)}"
    return None


def glance_rows() -> list[str]:
    """The table rows of the README's "Results at a glance" section (header and rule left out)."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"## {GLANCE_HEADING}")
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("|"):
            rows.append(line)
    return rows[2:]


def test_readme_is_short() -> None:
    count = len(README.read_text(encoding="utf-8").splitlines())
    assert count <= MAX_README_LINES, (
        f"README.md has {count} lines, more than {MAX_README_LINES}: move details to docs/ or to "
        "a benchmarks/results/<name>/README.md and link them")


@pytest.mark.parametrize("path", linked_docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    problems = [f"{path.relative_to(ROOT)}:{number}: ({target}) {why}"
                for number, target in links(path) if not is_external(target)
                for why in [broken(path, target)] if why]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_results_at_a_glance_link_results_with_commands() -> None:
    rows = glance_rows()
    assert len(rows) >= 5, f'the "{GLANCE_HEADING}" table has {len(rows)} rows'
    results = ROOT / "benchmarks" / "results"
    for row in rows:
        targets = [t for t in LINK.findall(row) if re.fullmatch(r"benchmarks/results/[^/]+/README\.md", t)]
        assert targets, f"row links no benchmarks/results/<name>/README.md: {row}"
        assert "`" not in row, f"a claim at a glance carries no command or code: {row}"
        for target in targets:
            page = ROOT / target
            assert page.is_file() and page.parent.parent == results, f"{target} does not exist"
            blocks = fenced_blocks(page.read_text(encoding="utf-8"))
            assert any(COMMAND.search(line) for block in blocks for line in block.splitlines()), (
                f"{target} has no fenced command that produced its rows")


@pytest.mark.parametrize("path", user_docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_issue_numbers_in_user_docs(path: Path) -> None:
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if ISSUE_REFERENCE.search(line)]
    assert not found, "issue references in user-facing docs:\n" + "\n".join(found)


def test_the_checks_catch_what_they_should(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# A title\n\n## Tasks, your data and rewards\n\n[x](page.md#a-title) "
                    "[y](missing.md) `[z](not-a-link.md)`\n```\n[w](in-a-fence.md)\n```\n")
    assert slug("Tasks, your data and rewards") == "tasks-your-data-and-rewards"
    assert anchors(page) == {"a-title", "tasks-your-data-and-rewards"}
    assert [t for _, t in links(page)] == ["page.md#a-title", "missing.md"]
    assert ISSUE_REFERENCE.search("as issue #13 asked") and ISSUE_REFERENCE.search("see #16")
    assert not ISSUE_REFERENCE.search("[faults](docs/serving.md#faults-and-secrets) and #my-model")
