"""The README is the front page: short, and its Layout list matches what asr/ holds."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _layout_block() -> str:
    section = README.split("\n## Layout\n", 1)[1]
    return section.split("```", 2)[1]


def _listed_paths() -> set[str]:
    """Every asr/... path the Layout block names, at the start of a line or after '; '."""
    return set(re.findall(r"(?:^|;\s+)(asr/[\w./]+)", _layout_block(), flags=re.MULTILINE))


def _top_level_entries() -> set[str]:
    package = ROOT / "asr"
    modules = {f"asr/{p.name}" for p in package.glob("*.py") if p.name != "__init__.py"}
    packages = {f"asr/{p.name}/" for p in package.iterdir() if (p / "__init__.py").exists()}
    return modules | packages


def test_the_layout_lists_every_module_and_package_of_asr():
    missing = _top_level_entries() - _listed_paths()
    assert not missing, f"README Layout does not mention: {sorted(missing)}"


def test_the_layout_lists_nothing_that_is_not_there():
    stale = {path for path in _listed_paths() if not (ROOT / path).exists()}
    assert not stale, f"README Layout names paths that do not exist: {sorted(stale)}"


def test_the_readme_is_a_front_page_with_its_pages_present():
    assert len(README.splitlines()) <= 300
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)", README))
    assert linked, "the README links no docs/ page"
    assert not {page for page in linked if not (ROOT / page).exists()}
