"""The README and the manual in docs/ stay true to the tree: every link between them reaches a
file and a heading, every path they name exists, and the architecture page names every package
of core/ with the files it says each holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_architecture import LAYERS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_PATH = re.compile(
    r"(?<![\w./-])((?:core|tui|bench|tests|data|docs)/[\w/.-]*\w\.(?:py|md|csv|yaml))(?!\w)")


def anchors(markdown: str) -> set[str]:
    """GitHub's ids of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    return {re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
            for title in re.findall(r"^#+ (.+)$", prose(markdown), flags=re.M)}


def prose(markdown: str) -> str:
    """The page without its fenced blocks (a `#` comment in a shell block is no heading)."""
    return re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in _LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        file, _, anchor = target.partition("#")
        linked = (page.parent / file).resolve() if file else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(
                linked.read_text(encoding="utf-8")):
            broken.append(f"{target}: no such heading")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_link_reaches_a_file_and_a_heading(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_path_named_exists(page):
    named = set(_PATH.findall(page.read_text(encoding="utf-8")))
    assert sorted(p for p in named if not (ROOT / p).exists()) == []


def test_the_readme_links_every_page_of_the_manual():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = {target.partition("#")[0] for target in _LINK.findall(readme)}
    assert {p.relative_to(ROOT).as_posix() for p in PAGES[1:]} <= linked


def layout_claims() -> dict[str, list[str]]:
    """docs/architecture.md's layout block: folder -> the names its lines give (`x.py`, `sub/`)."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = text.split("\n## Layout\n", 1)[1].split("```\n", 2)[1]
    claims: dict[str, list[str]] = {}
    top = folder = ""
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip())
        first = line.split()[0] if line.strip() else ""
        if indent == 0:
            top = folder = first
            claims[folder] = []
            continue
        if indent == 2:
            folder = top + first
            claims[folder] = []
        if folder.startswith(("core/", "tui/")):
            claims[folder] += re.findall(r"(?<![\w./-])(\w+\.py|\w+/)", line)
    return claims


def test_the_layout_names_only_files_that_exist():
    missing = []
    for folder, names in layout_claims().items():
        if not (ROOT / folder).is_dir():
            missing.append(folder)
        for name in names:
            if name != folder.rstrip("/").rpartition("/")[2] + "/" and not any(
                    (ROOT / folder).rglob(name.rstrip("/"))):
                missing.append(f"{folder}{name}")
    assert missing == []


def test_the_architecture_page_names_every_package_of_core():
    claims = layout_claims()
    packages = {p.name for p in (ROOT / "core").iterdir() if (p / "__init__.py").is_file()}
    assert {f"core/{p}/" for p in packages} <= set(claims)
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = set(re.findall(r"^\| `(\w+)/` \|", text, flags=re.M))
    assert table == set(LAYERS)


def test_the_checks_catch_a_broken_link_and_a_missing_file(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [gone](missing.md) [bad](#nothing)\n"
                    "```bash\n# not a heading\n```\n", encoding="utf-8")
    assert broken_links(page) == ["missing.md: no such file", "#nothing: no such heading"]
    assert anchors("## Sweeps over many GPUs\n## What Ray costs, measured\n") == {
        "sweeps-over-many-gpus", "what-ray-costs-measured"}
    assert _PATH.findall("see core/store/gone.py and core/uncore") == ["core/store/gone.py"]
