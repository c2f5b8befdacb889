"""The house rules a reviewer checks by reading, checked by reading the code (`make check`).

- no import circle among the project's modules (lazy imports inside functions count too,
  `if __name__ == "__main__":` blocks do not);
- no `from mrfbatch.x import _private` from another module (tests included);
- no module of the package over MAX_LINES lines (split by job when one grows);
- the package imports nothing from tests/.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGES = ("mrfbatch", "snakemake_logger_plugin_mrfbatch")
MAX_LINES = 500
# Private modules that are meant to be imported: the C extensions, named with a leading
# underscore as accelerators are, each imported by the module that wraps it.
C_EXTENSIONS = {"mrfbatch._jsonscan", "mrfbatch._rows"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((SRC / package).rglob("*.py"))
    }


def imports(path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, str, int]]:
    """(imported module, imported name or "", line) of every import in `path`, lazy ones too."""
    this = module_name(path) if path.is_relative_to(SRC) else ""
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    for node in _nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, "", node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules or submodule in C_EXTENSIONS:
                    yield submodule, "", node.lineno
                else:
                    yield base, alias.name, node.lineno


def _nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, but those of an `if __name__ == "__main__":` block: a module run as a
    script (`python -m mrfbatch.run_extraction`) is not imported, so its block is no edge."""
    for node in ast.iter_child_nodes(tree):
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name)
            and node.test.left.id == "__name__"
        ):
            continue
        yield node
        yield from _nodes(node)


def test_no_import_circle_among_the_packages_modules() -> None:
    modules = package_modules()
    edges = {
        name: sorted({target for target, _, _ in imports(path, modules) if target in modules})
        for name, path in modules.items()
    }
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in edges[name]:
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert circles == [], "\n".join(" -> ".join(circle) for circle in circles)


def test_no_private_name_is_imported_from_another_module() -> None:
    modules = package_modules()
    found = []
    files = [*modules.values(), *sorted((ROOT / "tests").rglob("*.py"))]
    for path in files:
        this = module_name(path) if path.is_relative_to(SRC) else str(path.relative_to(ROOT))
        for target, name, line in imports(path, modules):
            if not target.startswith(PACKAGES) or target == this:
                continue
            private_module = any(part.startswith("_") for part in target.split(".")[1:])
            if (name.startswith("_") or private_module) and target not in C_EXTENSIONS:
                found.append(f"{path.relative_to(ROOT)}:{line}: {target} {name}".rstrip())
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("name", sorted(package_modules()))
def test_no_module_is_over_the_line_limit(name: str) -> None:
    lines = len(package_modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines; split it by job"


def test_the_package_imports_nothing_from_tests() -> None:
    modules = package_modules()
    test_modules = {path.stem for path in (ROOT / "tests").rglob("*.py")} | {"tests", "support"}
    found = [
        f"{path.relative_to(ROOT)}:{line}: {target}"
        for path in modules.values()
        for target, _, line in imports(path, modules)
        if target.split(".")[0] in test_modules
    ]
    assert found == [], "\n".join(found)
