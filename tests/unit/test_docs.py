"""The docs: README.md stays a short entry point, every relative markdown link in README.md, docs/*.md and
roles/*/README.md resolves (the file, and the heading when the link names one), and every role has a README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README_MAX_BYTES = 12_288

# [text](target) and ![alt](target), target up to the first space or ")"; and reference definitions [id]: target.
INLINE_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
FENCE = re.compile(r"^\s{0,3}(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def doc_files() -> list[Path]:
    return sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "roles").glob("*/README.md")])


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with code spans removed (links there are not links)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(CODE_SPAN.sub("", line))
    return lines


def links(text: str) -> list[str]:
    prose = "\n".join(prose_lines(text))
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped (not - and _), spaces to -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match:
            base = slug(match.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def broken_links(path: Path) -> list[str]:
    problems = []
    for target in links(path.read_text(encoding="utf-8")):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            problems.append(f"{target}: no such file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{target}: {dest.relative_to(ROOT)} has no heading with anchor #{anchor}")
    return problems


def test_readme_is_at_most_12_kib():
    size = (ROOT / "README.md").stat().st_size
    assert size <= README_MAX_BYTES, (
        f"README.md is {size} bytes, more than {README_MAX_BYTES}: move details into roles/<role>/README.md or docs/"
    )


def test_the_docs_are_found():
    files = doc_files()
    assert ROOT / "README.md" in files
    assert len(files) > 2, f"only {files}"


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path):
    assert not broken_links(path), f"{path.relative_to(ROOT)}: broken links: {broken_links(path)}"


def test_every_role_has_a_readme():
    roles = sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir())
    assert roles, "no role directories under roles/"
    missing = [p.name for p in roles if not (p / "README.md").is_file()]
    assert not missing, f"roles without README.md: {missing}"


def test_the_link_checker_sees_links_and_ignores_code():
    text = "\n".join(
        [
            "[a](a.md) ![b](img/b.png) [c](https://example.com) [d](#here)",
            "`[not](inline-code.md)`",
            "```",
            "[not](fenced.md)",
            "```",
            "[ref]: ref.md",
        ]
    )
    assert links(text) == ["a.md", "img/b.png", "https://example.com", "#here", "ref.md"]
    assert slug("`kafka_exporter` and cAdvisor") == "kafka_exporter-and-cadvisor"
    assert slug("Why Kafka messages are not backed up, and what to do instead") == (
        "why-kafka-messages-are-not-backed-up-and-what-to-do-instead"
    )
