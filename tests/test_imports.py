"""The packages depend on each other one way, as docs/design.md draws them:
plumbing <- nets, data <- dashboards <- training <- train.py. Derived from
the source (every import statement, inside functions too)."""

import ast
import os

from conftest import ROOT

PACKAGES = ("plumbing", "nets", "data", "dashboards", "training")
# What each package may import, besides itself (a package never imports one to its right).
ALLOWED = {
    "plumbing": set(),
    "nets": {"plumbing"},
    "data": {"plumbing"},
    "dashboards": {"plumbing", "nets", "data"},
    "training": {"plumbing", "nets", "data", "dashboards"},
}


def imports_of(package: str) -> dict[str, set[str]]:
    """{other package: the files of `package` that import it}."""
    found: dict[str, set[str]] = {}
    folder = os.path.join(ROOT, package)
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".py"):
            continue
        path = os.path.join(folder, name)
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in PACKAGES and top != package:
                    found.setdefault(top, set()).add(f"{package}/{name}")
    return found


def graph() -> dict[str, dict[str, set[str]]]:
    return {package: imports_of(package) for package in PACKAGES}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph `edges` (as a path back to its start), or None."""
    state: dict[str, str] = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node, [node])):
            return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_packages_import_each_other_one_way():
    imports = graph()
    assert cycle({p: set(others) for p, others in imports.items()}) is None
    wrong = {
        f"{package} -> {other} ({', '.join(sorted(files))})"
        for package, others in imports.items()
        for other, files in others.items()
        if other not in ALLOWED[package]
    }
    assert not wrong, sorted(wrong)
    assert set(imports["training"]) == ALLOWED["training"]  # (the test reads them all)
