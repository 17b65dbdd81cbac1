"""The layering of the packages, read from every module's imports (ast): imports only point down
(cli -> algos -> policies / core -> envs), an algorithm never imports another one, there are no
import cycles, a function-level import is a heavy or optional third-party package with its
reason beside it, and ``python -m agents.train --help`` loads neither torch nor transformers."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agents", "envs")
SHARED_ALGO_MODULES = {"agents.algos", "agents.algos.configs", "agents.algos.registry"}
# What each layer may import from the project (its own layer included).
ALLOWED = {
    "envs": {"envs"},
    "core": {"core", "envs"},
    "policies": {"policies", "core", "envs"},
    "algos": {"algos", "policies", "core", "envs"},
    "cli": {"cli", "algos", "policies", "core", "envs"},
    "package": set(),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def layer(module: str) -> str:
    if module.startswith("envs"):
        return "envs"
    parts = module.split(".")
    if len(parts) == 1:
        return "package"
    if parts[1] in ("core", "policies", "algos", "cli"):
        return parts[1]
    return "cli"  # agents.train, agents.evaluate, ...: the thin `python -m` entry points


def project_target(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The project modules an import statement loads (``from pkg import submodule`` included)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    return sorted({n for n in names if n.split(".")[0] in PACKAGES})


def imports(module: str) -> list[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    """Every import statement of a module, whether it sits inside a function, and whether only a
    type checker runs it (``if TYPE_CHECKING:``)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))

    def inside(kind: type | tuple[type, ...], test: bool = False) -> set[int]:
        blocks = [b for b in ast.walk(tree) if isinstance(b, kind)
                  and (not test or (isinstance(b.test, ast.Name) and b.test.id == "TYPE_CHECKING"))]
        return {id(n) for b in blocks for n in ast.walk(b) if isinstance(n, ast.Import | ast.ImportFrom)}

    nested = inside((ast.FunctionDef, ast.AsyncFunctionDef))
    typing_only = inside(ast.If, test=True)
    return [(n, id(n) in nested, id(n) in typing_only)
            for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]


GRAPH = {m: sorted({t for node, _, typing_only in imports(m) if not typing_only for t in project_target(node)} - {m})
         for m in MODULES}


def test_the_layout_is_what_the_readme_describes() -> None:
    assert {"agents.core", "agents.policies", "agents.algos", "agents.cli", "envs.protocol"} <= set(MODULES)
    algorithms = {m for m in MODULES if layer(m) == "algos"} - SHARED_ALGO_MODULES
    assert algorithms == {f"agents.algos.{n}" for n in ("sft", "bc", "grpo", "trpo", "filtered", "dpo")}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_point_down(module: str) -> None:
    for target in GRAPH[module]:
        assert layer(target) in ALLOWED[layer(module)], f"{module} ({layer(module)}) imports {target}"
        if layer(module) == "algos" and module not in SHARED_ALGO_MODULES:
            assert layer(target) != "algos" or target in SHARED_ALGO_MODULES, \
                f"algorithm {module} imports another algorithm, {target}"
        if module in SHARED_ALGO_MODULES:
            assert layer(target) != "algos" or target in SHARED_ALGO_MODULES, \
                f"{module} imports the algorithm {target} (the registry names agents as strings)"


def test_no_import_cycles() -> None:
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in GRAPH.get(module, []):
            if target not in MODULES:
                continue
            assert state.get(target) != "open", "import cycle: " + " -> ".join([*path, module, target])
            if target not in state:
                visit(target, [*path, module])
        state[module] = "done"

    for module in MODULES:
        if module not in state:
            visit(module, [])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_function_level_imports_are_heavy_third_party_packages_with_a_reason(module: str) -> None:
    lines = MODULES[module].read_text(encoding="utf-8").splitlines()
    for node, in_function, _ in imports(module):
        if not in_function:
            continue
        assert not project_target(node), f"{module}:{node.lineno} imports a project module inside a function"
        assert any("#" in line for line in lines[node.lineno - 1:node.end_lineno]), \
            f"{module}:{node.lineno}: a function-level import needs its reason as a comment on the line"


def test_train_help_imports_neither_torch_nor_transformers() -> None:
    code = ("import runpy, sys; sys.argv = ['agents.train', '--help']\n"
            "try:\n    runpy.run_module('agents.train', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert "sft keys" in result.stdout and result.stdout.strip().splitlines()[-1] == "[]"
