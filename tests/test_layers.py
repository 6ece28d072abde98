"""The import direction of the layers: ``seed_core`` <- ``distill`` <- ``seed_transfer`` <- ``tools``.

``seed_core`` (the foundation) imports neither the method nor the evaluation; ``distill`` never
imports ``seed_transfer``; no library imports ``tools`` (nor a script in it by its bare name, as
Python would find it with tools/ on sys.path). Every import counts,
also one inside a function, read from the source with ``ast``, relative imports resolved.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
PACKAGES = {"seed_core", "distill", "seed_transfer"}
# tools/ and its scripts by their bare names (tools/distill.py is the package's name: that import is the package)
TOOL_MODULES = {"tools", *(p.stem for p in (REPO / "tools").glob("*.py"))} - PACKAGES


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``."""
    package = list(path.relative_to(REPO).parts[:-1])  # relative imports start from the file's package
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                assert base, f"{path}:{node.lineno}: relative import above the top level"
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            found.append((node.lineno, name))
    return found


def violations(package: str, forbidden: set[str]) -> list[str]:
    return [
        f"{path.relative_to(REPO)}:{line}: imports {name}"
        for path in sorted((REPO / package).rglob("*.py"))
        for line, name in imported_modules(path)
        if name.split(".")[0] in forbidden
    ]


def test_seed_core_imports_no_other_package_of_the_project():
    assert violations("seed_core", {"distill", "seed_transfer", *TOOL_MODULES}) == []


def test_distill_imports_neither_seed_transfer_nor_tools():
    assert violations("distill", {"seed_transfer", *TOOL_MODULES}) == []


def test_seed_transfer_does_not_import_tools():
    assert violations("seed_transfer", TOOL_MODULES) == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from seed_transfer.finetune import x\n", "seed_transfer.finetune"),
        ("def f():\n    import seed_transfer\n", "seed_transfer"),
        ("from .. import backbones\n", "seed_transfer"),
        ("from ..cli.common import run_cli\n", "seed_transfer.cli.common"),
        ("from . import common\n", "seed_transfer.detection"),
    ],
)
def test_the_check_sees_every_kind_of_import(tmp_path, monkeypatch, source, expected):
    """The reader itself: absolute, lazy and relative imports (as from seed_transfer/detection/x.py)."""
    monkeypatch.setattr(__import__(__name__), "REPO", tmp_path)
    path = tmp_path / "seed_transfer" / "detection" / "x.py"
    path.parent.mkdir(parents=True)
    path.write_text(source)
    assert [name for _, name in imported_modules(path)] == [expected]
