"""The console's templates and static files ship in the package (pyproject's package data)."""

import fnmatch
import tomllib
from pathlib import Path

import fraudops

PACKAGE = Path(fraudops.__file__).parent
PYPROJECT = PACKAGE.parents[1] / "pyproject.toml"


def test_every_template_and_static_file_is_package_data() -> None:
    """A file under console/templates or console/static that no pattern names would be
    missing from an installed fraudops."""
    patterns = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"
    ]["fraudops"]
    files = [
        path.relative_to(PACKAGE).as_posix()
        for folder in ("console/templates", "console/static")
        for path in (PACKAGE / folder).rglob("*")
        if path.is_file()
    ]
    assert files
    assert [] == [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
