"""The package's subpackages import one another without cycles (function-level imports included)."""

import ast
import importlib.util
from pathlib import Path

import equiformer_lite

PACKAGE = Path(equiformer_lite.__file__).parent


def _imports() -> dict[str, set[str]]:
    """Top-level module or subpackage of the package -> those it imports (relative imports)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        if parts == ("__init__.py",):
            continue  # the package's front door imports everything it re-exports
        module = ".".join(("equiformer_lite",) + parts).removesuffix(".py").removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.level):
                continue
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            names = [base] if node.module else [f"{base}.{alias.name}" for alias in node.names]
            for name in names:
                target = name.split(".")[1] if name.count(".") else None
                if target and target != parts[0].removesuffix(".py"):
                    graph.setdefault(parts[0].removesuffix(".py"), set()).add(target)
    return graph


def test_the_subpackage_imports_form_no_cycle():
    graph = _imports()
    assert "calculators" not in graph.get("models", set()), "models must not import the calculator"
    state: dict[str, int] = {}

    def visit(node, trail):
        if state.get(node) == 1:
            raise AssertionError(f"import cycle: {' -> '.join(trail + [node])}")
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, trail + [node])
        state[node] = 2

    for node in sorted(graph):
        visit(node, [])
    assert {"data", "models", "calculators"} <= set(graph)  # the walk saw the package
