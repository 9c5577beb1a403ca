"""The layers point one way: the core never imports its adapters, training never the registry."""

import ast
from pathlib import Path

import pytest

import fraudops

PACKAGE = Path(fraudops.__file__).parent
CORE = (
    "data",
    "features",
    "training",
    "scoring",
    "storage",
    "monitoring",
    "lifecycle",
    "registry",
    "simulate",
    "alerts",
)
ADAPTERS = (
    "fraudops.cli",
    "fraudops.api",
    "fraudops.ingest",
    "fraudops.client",
    "fraudops.console",
    "dags",
)


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function, resolved to its full name."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            modules.add(base)
            modules.update(f"{base}.{alias.name}" for alias in node.names)
    return modules


def within(module: str, prefix: str) -> bool:
    """Whether a module is `prefix` or inside it."""
    return module == prefix or module.startswith(prefix + ".")


def imports_of(package: str) -> list[tuple[str, str]]:
    """(file, imported module) for every import in a package of fraudops."""
    found = []
    for path in sorted((PACKAGE / package).rglob("*.py")):
        found += [(str(path.relative_to(PACKAGE)), module) for module in imported_modules(path)]
    return found


@pytest.mark.parametrize("package", CORE)
def test_the_core_never_imports_an_adapter(package: str) -> None:
    """No module of a core package imports the CLI, the API, the ingester, the console or DAGs."""
    wrong = sorted(
        (file, module)
        for file, module in imports_of(package)
        if any(within(module, adapter) for adapter in ADAPTERS)
    )
    assert [] == wrong


def test_training_never_imports_the_registry() -> None:
    """Training knows nothing of the registry (lifecycle.registration joins them)."""
    wrong = sorted(
        (file, module)
        for file, module in imports_of("training")
        if within(module, "fraudops.registry")
    )
    assert [] == wrong


def test_the_check_sees_imports_inside_functions() -> None:
    """An import inside a function counts as much as one at the top of the module."""
    module = PACKAGE / "scoring" / "service.py"
    assert "fraudops.scoring.metrics" in imported_modules(module)
    lazy = PACKAGE / "ingest" / "app.py"
    assert "fraudops.scoring.factory" in imported_modules(lazy)
