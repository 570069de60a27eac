"""Dependencies point one way (STYLE.md): api, web -> schemas, services -> models -> core."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import runs_service

PACKAGE = Path(runs_service.__file__).parent
CORE = ("config", "extensions", "errors", "catalogue")


def imported_modules(path: Path) -> set[str]:
    """Every runs_service module a file imports, at any depth of the file."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("runs_service")}


def modules_of(layer: str) -> list[Path]:
    root = PACKAGE / layer
    return sorted(root.rglob("*.py")) if root.is_dir() else [PACKAGE / f"{layer}.py"]


def imports_layer(path: Path, layer: str) -> list[str]:
    prefix = f"runs_service.{layer}"
    return sorted(
        name for name in imported_modules(path) if name == prefix or name.startswith(prefix + ".")
    )


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("services", "schemas"),
        ("schemas", "services"),
        ("services", "api"),
        ("schemas", "api"),
        ("models", "services"),
        ("models", "schemas"),
        ("models", "api"),
    ],
)
def test_a_layer_does_not_import_its_peer_or_what_is_above_it(layer, forbidden):
    offenders = {
        str(path.relative_to(PACKAGE)): imports_layer(path, forbidden)
        for path in modules_of(layer)
        if imports_layer(path, forbidden)
    }
    assert offenders == {}


@pytest.mark.parametrize("module", CORE)
def test_the_core_imports_nothing_above_it(module):
    above = {"models", "schemas", "services", "api", "web", "cli"}
    imported = imported_modules(PACKAGE / f"{module}.py")
    assert {name.split(".")[1] for name in imported if name.count(".")} & above == set()


def test_the_catalogue_imports_nothing_from_the_package():
    assert imported_modules(PACKAGE / "catalogue.py") == set()


def test_the_import_scanner_sees_both_kinds_of_import():
    # A check that finds nothing must be able to find something.
    path = PACKAGE / "services" / "loading.py"
    assert "runs_service.services.ingest" in imported_modules(path)
    assert "runs_service.catalogue" in imported_modules(path)
