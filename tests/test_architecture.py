"""The layout rules: one import name in site-packages, light UI, core without the UI."""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def _tree(path: Path) -> ast.Module:
    """A file's syntax tree, parsed once for all the checks below (they only read it)."""
    return ast.parse(path.read_text(encoding="utf-8"))


@functools.cache
def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module imported, at module level?) for every import in a file."""
    tree = _tree(path)
    top = set(map(id, tree.body))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.module, id(node) in top))
    return out


def _sources(*folders: str) -> list[Path]:
    return [p for folder in folders for p in (ROOT / folder).rglob("*.py")]


def test_code_imports_the_project_only_through_its_namespace():
    bare = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in _sources("core", "tui", "tests", "bench", "energy_console")
        for module, _ in _imports(path)
        if module.split(".")[0] in ("core", "tui")
    ]
    assert bare == []


def test_core_never_imports_the_ui():
    offenders = [f"{p.relative_to(ROOT)}: {m}" for p in _sources("core")
                 for m, _ in _imports(p) if m.split(".")[0] == "textual"
                 or m.startswith("energy_console.tui")]
    assert offenders == []


def test_tui_never_imports_torch_or_transformers():
    offenders = [f"{p.relative_to(ROOT)}: {m}" for p in _sources("tui")
                 for m, _ in _imports(p) if m.split(".")[0] in ("torch", "transformers", "optimum")]
    assert offenders == []


def test_every_package_folder_is_installed_under_the_namespace():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = set(config["tool"]["setuptools"]["packages"])
    on_disk = {"energy_console"} | {
        "energy_console." + ".".join(p.parent.relative_to(ROOT).parts)
        for folder in ("core", "tui") for p in (ROOT / folder).rglob("__init__.py")
    }
    assert declared == on_disk


def test_the_install_claims_no_top_level_core_or_tui(tmp_path):
    # Run outside the checkout, so only what the install put on sys.path is importable.
    code = ("import importlib.util as u; "
            "print([n for n in ('core', 'tui') if u.find_spec(n)], "
            "bool(u.find_spec('energy_console.core.session.runner')), "
            "bool(u.find_spec('energy_console.tui.app')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "[] True True"


# ------------------------------------------------------------------ layers
# Each package of core/ and what it may import (besides itself); core/__init__.py says the same
# in words. A package imports only packages below it: every import counts, deferred ones inside
# functions and `if TYPE_CHECKING:` ones included.
BELOW_WORKER = {"spec", "models", "compression", "quality", "store"}
LAYERS: dict[str, set[str]] = {
    "spec": set(),
    "models": {"spec"},
    "compression": {"spec", "models"},
    "quality": {"spec", "models"},
    "store": {"spec", "quality"},
    "measure": {"spec", "store"},
    "worker": BELOW_WORKER,
    "analysis": {"spec", "store", "measure"},
    "session": BELOW_WORKER | {"measure", "worker", "analysis"},
    "scale": BELOW_WORKER | {"measure", "worker", "analysis", "session"},
    "cli": BELOW_WORKER | {"measure", "worker", "analysis", "session", "scale"},
    # the console: every package but the torch process
    "tui": BELOW_WORKER | {"measure", "analysis", "session", "scale", "cli"} - {"worker"},
}
MAX_MODULE_LINES = 400
MAX_CORE_ENTRIES = 12


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return "energy_console." + ".".join(parts)


def _project_modules() -> dict[str, Path]:
    return {_module_name(p): p for p in _sources("core", "tui")}


@functools.cache
def _import_graph() -> dict[str, set[str]]:
    """Module -> the project's modules it imports, anywhere in its file (relative imports
    resolved; `from package import name` counts the package and, if it is one, the submodule).
    Built once per test process: the checks below only read it."""
    modules = _project_modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(_tree(path)):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                if target.startswith("energy_console."):
                    hit = known(target)
                    if hit and hit != name:
                        found.add(hit)
        graph[name] = found
    return graph


def _layer(module: str) -> str:
    parts = module.split(".")
    return "tui" if parts[1] == "tui" else (parts[2] if len(parts) > 2 else "core")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_among_modules():
    assert _cycles(_import_graph()) == []


def test_no_import_cycle_among_packages():
    packages: dict[str, set[str]] = {}
    for module, targets in _import_graph().items():
        packages.setdefault(_layer(module), set()).update(
            _layer(t) for t in targets if _layer(t) != _layer(module))
    assert _cycles(packages) == []


def test_every_import_follows_the_layer_rules():
    wrong = sorted(f"{module} -> {target}" for module, targets in _import_graph().items()
                   for target in targets
                   if _layer(module) != _layer(target) and _layer(module) != "core"
                   and _layer(target) not in LAYERS[_layer(module)])
    assert wrong == []


def test_the_layer_rules_name_every_package_of_core():
    packages = {p.name for p in (ROOT / "core").iterdir()
                if (p / "__init__.py").is_file()}
    assert packages | {"tui"} == set(LAYERS)


def test_each_package_says_what_it_is_for():
    undocumented = [p.parent.relative_to(ROOT).as_posix() for p in _sources("core", "tui")
                    if p.name == "__init__.py"
                    and not ast.get_docstring(_tree(p))]
    assert undocumented == []


def test_the_layer_checks_catch_a_cycle_and_an_upward_import():
    graph = {"energy_console.core.spec.a": {"energy_console.core.store.b"},
             "energy_console.core.store.b": {"energy_console.core.spec.a"}}
    assert _cycles(graph) == [sorted(graph)]
    assert "store" not in LAYERS["spec"]


def test_core_top_level_holds_at_most_a_dozen_entries():
    entries = sorted(p.name for p in (ROOT / "core").iterdir() if p.name != "__pycache__")
    assert len(entries) <= MAX_CORE_ENTRIES, entries


def test_no_module_of_core_or_tui_is_over_400_lines():
    long = {p.relative_to(ROOT).as_posix(): n for p in _sources("core", "tui")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}
