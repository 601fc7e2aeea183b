"""The import rules of DESIGN.md, read from the source with ``ast`` (every import statement,
also those inside functions, so a lazy import cannot slip past):

* imports go one way: ``service`` -> (``surrogate``, ``search_spaces``, ``evaluators``) ->
  ``paretonas_core`` (the ground floor); ``paretonas`` (the public face) sits on top; no cycle
  between top-level packages;
* ``search_spaces`` and ``evaluators`` do not import each other, nor ``service``;
* the engine (spec, resolve, runner, executors, stages, front, evaluation, fine-tuning, records,
  strategies, backends) imports neither SQLAlchemy nor the persistence modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("paretonas", "paretonas_core", "service", "surrogate", "search_spaces", "evaluators")
#: top-level package -> the project packages it may import
ALLOWED = {
    "paretonas_core": set(),
    "search_spaces": {"paretonas_core"},
    "evaluators": {"paretonas_core"},
    "surrogate": {"paretonas_core", "search_spaces"},
    "service": {"paretonas_core", "search_spaces", "evaluators", "surrogate"},
    "paretonas": {"service"},
}
ENGINE = ("service.spec", "service.resolve", "service.runner", "service.executors",
          "service.stages", "service.front", "service.evaluation", "service.finetune",
          "service.records", "service.strategies", "service.clock", "service.backends",
          "service.front_spread", "service.data_pruning")
PERSISTENCE = ("sqlalchemy", "alembic", "service.db", "service.models", "service.store",
               "service.queue", "service.crud", "service.measurement_cache", "service.devices",
               "service.migrations")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module ``source`` imports (absolute names; relative imports resolved)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.add(name)
            out.update(f"{name}.{alias.name}" for alias in node.names)  # `from pkg import mod`
    return out


def project_imports() -> dict[str, set[str]]:
    graph = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = module_name(path)
            graph[name] = imports_of(path.read_text(), name,
                                     is_package=path.name == "__init__.py")
    return graph


GRAPH = project_imports()


def under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_checker_sees_lazy_and_relative_imports():
    src = "import os\ndef f():\n    from sqlalchemy import select\nfrom . import stages\n"
    found = imports_of(src, "service.runner")
    assert {"os", "sqlalchemy", "service.stages"} <= found
    assert "service.x" in imports_of("from .x import y", "service", is_package=True)


def test_every_package_is_read():
    assert {name.split(".")[0] for name in GRAPH} == set(PACKAGES)
    assert "service.runner" in GRAPH and "paretonas_core.registry" in GRAPH


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_only_the_layers_below(package):
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items() if module.split(".")[0] == package
        for target in targets
        if target.split(".")[0] in PACKAGES and target.split(".")[0] != package
        and target.split(".")[0] not in ALLOWED[package]
    )
    assert not wrong, "\n".join(wrong)


def test_no_cycle_between_top_level_packages():
    edges = {p: set() for p in PACKAGES}
    for module, targets in GRAPH.items():
        for target in targets:
            top = target.split(".")[0]
            if top in PACKAGES and top != module.split(".")[0]:
                edges[module.split(".")[0]].add(top)
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            assert state.get(nxt) != "open", f"import cycle: {' -> '.join(path + [nxt])}"
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for package in PACKAGES:
        if package not in state:
            visit(package, [package])


def test_the_engine_imports_no_persistence():
    engine = [m for m in GRAPH if under(m, ENGINE)]
    assert "service.backends.ray_backend" in engine and "service.runner" in engine
    wrong = sorted(f"{m} imports {t}" for m in engine for t in GRAPH[m] if under(t, PERSISTENCE))
    assert not wrong, "\n".join(wrong)


def test_optuna_is_used_through_its_public_api_only():
    """Private Optuna modules and members change without notice between releases."""
    wrong = sorted(f"{m} imports {t}" for m, ts in GRAPH.items() for t in ts
                   if t.startswith("optuna.") and any(p.startswith("_") for p in t.split(".")))
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Attribute) and node.attr in ("_storage", "_trial_id"):
                    wrong.append(f"{module_name(path)}:{node.lineno} uses .{node.attr}")
    assert not wrong, "\n".join(wrong)
