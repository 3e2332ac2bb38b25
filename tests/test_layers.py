"""Imports point one way: domain ← integrations ← approvals, tasks, intake, reporting ← flows ←
deployments, api — and no two modules import each other, not even through an import inside a
function (the way cycles used to be dodged). Read from the source with ``ast``; nothing is imported."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "aftersales"
LAYERS = {"domain": 0, "integrations": 1, "approvals": 2, "tasks": 2, "intake": 2, "reporting": 2,
          "flows": 3, "deployments": 4, "api": 4}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "migrations" in parts:
            continue  # Alembic's scripts: run by Alembic, imported by nobody
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its source (top level or in a function)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name and candidate != "aftersales":
                targets.add(candidate)
    return targets


@cache  # the tree is read once for all the checks
def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def layer(name: str) -> int | None:
    parts = name.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_every_import_points_down_or_sideways():
    upward = sorted(f"{source} → {target}" for source, targets in import_graph().items() for target in targets
                    if layer(source) is not None and layer(target) is not None and layer(target) > layer(source))
    assert upward == []


def test_no_two_modules_import_each_other_even_inside_functions():
    graph = import_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert [" → ".join(cycle) for cycle in cycles] == []


def test_the_domain_imports_no_prefect_and_nothing_above_it():
    for path in (PACKAGE / "domain").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for imported in names:
                assert imported.split(".")[0] != "prefect", f"{path.name} imports {imported}"
                assert not imported.startswith("aftersales.") or imported.startswith("aftersales.domain"), f"{path.name} imports {imported}"


def test_no_production_module_imports_the_sandbox():
    """The sandbox platform is a test double: `make run` starts it as a process of its own."""
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(name.split(".")[0] == "sandbox_platform" for name in names), f"{path} imports the sandbox"


def test_the_checker_sees_an_import_inside_a_function(tmp_path):
    """The graph is read from every import statement, so a cycle hidden in a function is found."""
    known = {"aftersales.flows.a": tmp_path / "a.py", "aftersales.deployments.b": tmp_path / "b.py"}
    known["aftersales.flows.a"].write_text("def later():\n    from aftersales.deployments.b import thing\n", encoding="utf-8")
    assert imports_of("aftersales.flows.a", known["aftersales.flows.a"], known) == {"aftersales.deployments.b"}


MOVES_MONEY = {"refund", "charge", "reship", "issue_coupon"}  # the platform calls that move money or goods


def platform_movements(path: Path) -> list[str]:
    """Where ``path`` calls one of the platform's money or goods calls (``….refund(…)`` and so on)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MOVES_MONEY:
            found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} .{node.func.attr}()")
    return found


def test_money_and_goods_move_only_through_the_one_money_task():
    """Refunds, charges, coupons and parcels reach the platform from ``tasks/money.py`` alone (its
    ``move_money``: idempotency key → platform → ledger → event → message); the platform clients
    themselves define the calls."""
    allowed = {PACKAGE / "tasks" / "money.py"} | set((PACKAGE / "integrations" / "platform").glob("*.py"))
    elsewhere = [where for name, path in modules().items() if path not in allowed for where in platform_movements(path)]
    assert elsewhere == []
    assert platform_movements(PACKAGE / "tasks" / "money.py"), "the checker must see the money task's own calls"
