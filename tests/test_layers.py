"""The import rules of DESIGN.md, read from the source with ``ast`` (every import statement,
also those inside functions, so a lazy import cannot slip past):

* imports go one way: ``service`` -> (``surrogate``, ``search_spaces``, ``evaluators``) ->
  ``paretonas_core`` (the ground floor); ``paretonas`` (the public face) sits on top; no cycle
  between top-level packages;
* ``search_spaces`` and ``evaluators`` do not import each other, nor ``service``;
* inside ``service``, three sub-packages: ``service.engine`` (spec, resolve, runner, executors,
  stages, front, evaluation, fine-tuning, records, strategies, backends) imports neither
  SQLAlchemy/Alembic nor ``service.persistence`` nor ``service.interfaces``;
  ``service.persistence`` may import the engine, not the interfaces; ``service.interfaces`` may
  import both; every ``service`` module lives in one of them (or is ``service.settings``).
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
#: ``service``'s three layers: the engine imports neither of the others (nor SQLAlchemy or
#: Alembic); persistence may import the engine (it implements the engine's ``TrialStore``);
#: interfaces wire the two together. ``service.settings`` (environment configuration, a leaf)
#: sits beside them and may be imported by any.
SERVICE_LAYERS = ("service.engine", "service.persistence", "service.interfaces")
SERVICE_ALLOWED = {
    "service.engine": set(),
    "service.persistence": {"service.engine"},
    "service.interfaces": {"service.engine", "service.persistence"},
}
SERVICE_SHARED = ("service", "service.settings")  # the package itself (version) and settings
DATABASE_LIBRARIES = ("sqlalchemy", "alembic")


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
    found = imports_of(src, "service.engine.runner")
    assert {"os", "sqlalchemy", "service.engine.stages"} <= found
    assert "service.x" in imports_of("from .x import y", "service", is_package=True)


def test_every_package_is_read():
    assert {name.split(".")[0] for name in GRAPH} == set(PACKAGES)
    assert "service.engine.runner" in GRAPH and "paretonas_core.registry" in GRAPH


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


def service_layer(name: str) -> str | None:
    return next((layer for layer in SERVICE_LAYERS if under(name, [layer])), None)


def test_every_service_module_is_in_a_layer():
    loose = sorted(m for m in GRAPH if m.split(".")[0] == "service"
                   and service_layer(m) is None and m not in SERVICE_SHARED)
    assert not loose, f"modules outside service.engine/persistence/interfaces: {loose}"


def test_service_layers_import_only_the_layers_they_may():
    engine = [m for m in GRAPH if service_layer(m) == "service.engine"]
    assert "service.engine.backends.ray_backend" in engine and "service.engine.runner" in engine
    wrong = []
    for module, targets in GRAPH.items():
        layer = service_layer(module)
        if layer is None:
            continue
        for target in targets:
            other = service_layer(target)
            if other not in (None, layer) and other not in SERVICE_ALLOWED[layer]:
                wrong.append(f"{module} imports {target}")
            if layer == "service.engine" and under(target, DATABASE_LIBRARIES):
                wrong.append(f"{module} imports {target}")
    assert not sorted(wrong), "\n".join(sorted(wrong))


def test_the_layer_check_would_catch_the_engine_importing_persistence():
    found = imports_of("from service.persistence.db import utcnow\nimport sqlalchemy\n",
                       "service.engine.runner")
    assert {service_layer(t) for t in found} >= {"service.persistence"}
    assert any(under(t, DATABASE_LIBRARIES) for t in found)


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
