"""The test tree itself: pytest imports test files by their base name, so each is unique."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_file_has_a_name_of_its_own() -> None:
    """Two test files of the same name in different folders would fail to import."""
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [] == sorted(name for name, count in names.items() if count > 1)
