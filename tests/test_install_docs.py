"""The README's install commands against pyproject.toml: every extra they name exists, the console
script they run is the one installed, the torch pin is the `cpu` extra's, the Python version is the
one declared, and CI runs the README's own install command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from energy_console.core.cli.commands import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS = set(PYPROJECT["project"]["optional-dependencies"])
SCRIPTS = set(PYPROJECT["project"]["scripts"])

INSTALLERS = ("pip install", "pipx install", "uv tool install", "uv pip install")
_SPEC = re.compile(r"(?:^|[\s'\"])(?:\.|energy-console)\[([^\]]*)\]")


def code_blocks(markdown: str, lang: str = "bash") -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", markdown, flags=re.S | re.M)


def commands(block: str) -> list[str]:
    """Command lines without their trailing comments; comment lines dropped."""
    out = []
    for line in block.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def install_commands(markdown: str) -> list[str]:
    return [c for block in code_blocks(markdown) for c in commands(block)
            if any(installer in c for installer in INSTALLERS)]


def extras_named(command: str) -> set[str]:
    return {extra.strip() for group in _SPEC.findall(command) for extra in group.split(",")}


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def test_the_install_section_documents_every_path():
    install = section("Install, start, test")
    joined = "\n".join(install_commands(install))
    assert "--index-url https://download.pytorch.org/whl/cpu" in joined  # CPU box
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in joined  # cpu extra
    assert "pipx install" in joined and "uv tool install" in joined  # no root
    assert re.search(r"pip install -e '\.\[[^\]]*torchao", joined)  # CUDA box, default wheels


def test_every_extra_the_readme_installs_exists_in_pyproject():
    named = {extra for c in install_commands(README) for extra in extras_named(c)}
    assert named, "no install command with extras found in the README"
    assert named <= EXTRAS, f"README names extras pyproject lacks: {named - EXTRAS}"


def test_the_extras_table_matches_pyproject():
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|", section("Install, start, test"), flags=re.M)
    assert set(rows) <= EXTRAS and set(rows) >= EXTRAS - {"test"}


def test_the_torch_pin_is_the_cpu_extras():
    (pin,) = [r for r in PYPROJECT["project"]["optional-dependencies"]["cpu"]
              if r.startswith("torch")]
    pins = set(re.findall(r"torch==[\w.]+", "\n".join(install_commands(README))))
    assert pins == {pin.replace(" ", "")}


def test_the_commands_it_runs_are_installed():
    (script,) = SCRIPTS
    first = code_blocks(README)[0]  # the set-up a reader sees first: install, then start
    lines = commands(first)
    assert "pip install -e" in lines[0] and any(line == script for line in lines[1:])
    named = set(re.findall(rf"^{script} (\w+)", "\n".join(
        c for block in code_blocks(section("First hour on a lab box")) for c in commands(block)),
        flags=re.M))
    assert named and named <= set(COMMANDS)
    assert (ROOT / "bench" / "gpu_acceptance.py").exists()
    assert "bench/gpu_acceptance.py" in section("First hour on a lab box")


def test_the_python_versions_stated_are_pyprojects():
    required = PYPROJECT["project"]["requires-python"]
    assert required == ">=3.11"
    assert f'`requires-python = "{required}"`' in section("Install, start, test")
    ruff_target = PYPROJECT["tool"]["ruff"]["target-version"]
    assert ruff_target == "py" + required.removeprefix(">=").replace(".", "")


def test_ci_runs_the_readmes_install_command():
    ci = (ROOT / ".ci" / "run").read_text()
    (install,) = re.findall(r"^python3 -m venv .*?pip install -e '[^']*'", ci, flags=re.M)
    assert install in code_blocks(README)[0]


@pytest.mark.parametrize("command, extras", [
    ("pip install -e '.[cpu,all]' --extra-index-url X", {"cpu", "all"}),
    ("pipx install 'energy-console[all, torchao]'", {"all", "torchao"}),
    ("pip install -e .", set()),
])
def test_the_extras_parser(command, extras):
    assert extras_named(command) == extras


def test_a_misspelt_extra_would_be_caught():
    named = extras_named("pip install -e '.[cpu,gpu]'")
    assert named - EXTRAS == {"gpu"}
