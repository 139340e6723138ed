"""The layering of the code, checked on the source (an AST walk, no imports run).

- Each test helper (slack_harness, fake_openai, ...) is imported under one module name:
  imported as both `slack_harness` and `tests.slack_harness`, it is two modules, with two
  timestamp counters and two `FakeSlackAPI` classes.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "knowledge", "retrieval", "decision", "strategy_bot", "prompts")
HELPERS = {p.stem for p in (REPO / "tests").glob("*.py") if not p.stem.startswith(("test_", "conftest"))}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (REPO / package).rglob("*.py")}


def imported_names(path: Path, module: str) -> set[str]:
    """Every module name `path` imports, anywhere in the file (absolute form)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    return names


def test_each_test_helper_is_imported_under_one_name():
    names: dict[str, set[str]] = defaultdict(set)
    for path in [*(REPO / "tests").glob("*.py"), *(REPO / "benchmarks").glob("*.py")]:
        for name in imported_names(path, path.stem):
            helper = name.removeprefix("tests.")
            if helper in HELPERS and name.split(".")[-1] == helper:
                names[helper].add(name)
    assert {helper: sorted(found) for helper, found in names.items() if len(found) > 1} == {}
