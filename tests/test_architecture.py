"""The layout rules: one import name in site-packages, light UI, core without the UI."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module imported, at module level?) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
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
