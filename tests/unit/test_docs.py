"""The documentation points only at files inside the repository, and they exist."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
DOCUMENTS = [
    REPO / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    # Not the hidden folders' (.pytest_cache writes a README.md of its own).
    *sorted(p for p in REPO.glob("*/README.md") if not p.parent.name.startswith(".")),
    *sorted(REPO.glob("tests/*/README.md")),
]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(REPO)))
def test_every_local_link_names_a_file_in_the_repository(document: Path) -> None:
    """A relative link resolves inside the repository to a file or folder that is there."""
    broken = []
    for target in LINK.findall(document.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        resolved = (document.parent / target).resolve()
        if not resolved.is_relative_to(REPO) or not resolved.exists():
            broken.append(target)
    assert [] == broken


def test_nothing_in_the_project_reads_from_beside_the_repository() -> None:
    """No source, test, benchmark, DAG or Makefile names ../shared (a clone alone must work)."""
    offenders = [
        str(path.relative_to(REPO))
        for folder in ("src", "tests", "benchmarks", "dags", "docs")
        for path in (REPO / folder).rglob("*")
        if path.suffix in {".py", ".md", ".toml", ".txt", ".cfg"}
        and "../shared" in path.read_text(encoding="utf-8", errors="replace")
        and path != Path(__file__).resolve()
    ]
    offenders += [
        name
        for name in ("Makefile", "airflow.mk", "README.md")
        if "../shared" in (REPO / name).read_text(encoding="utf-8")
    ]
    assert [] == offenders


def test_every_setting_is_in_the_readme() -> None:
    """Each FRAUDOPS_ variable the settings read has its row in the README."""
    from fraudops.config import Settings  # noqa: PLC0415

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    names = [f"FRAUDOPS_{field.upper()}" for field in Settings.model_fields]
    assert [] == [name for name in names if f"`{name}`" not in readme]
