"""Type-check the project with mypy, each file under the module name it is installed as.

pyproject.toml installs the folders core/ and tui/ as energy_console.core and energy_console.tui
(package-dir). The editable install resolves that with an import hook, which mypy does not run,
and mypy's command line names a file's module by its folder (`core.plan`), so `from
energy_console.core.spec.limits import ...` would not resolve. This script names every source file's
module from the same mapping and hands the list to mypy's build; settings come from [tool.mypy]
in pyproject.toml, extra command-line flags pass through. Run from anywhere:
`.venv/bin/python .ci/typecheck.py`; exit status 1 when mypy reports an error.
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

from mypy import build
from mypy.errors import CompileError
from mypy.main import process_options
from mypy.modulefinder import BuildSource

ROOT = Path(__file__).resolve().parent.parent


def package_dirs() -> dict[str, Path]:
    """Package name -> folder, as setuptools finds them: through the longest mapped parent."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = setuptools.get("package-dir", {})
    folders = {}
    for package in setuptools["packages"]:
        parts = package.split(".")
        for cut in range(len(parts), 0, -1):
            parent = ".".join(parts[:cut])
            if parent in mapping:
                folders[package] = Path(mapping[parent], *parts[cut:])
                break
        else:
            folders[package] = Path(*parts)
    return folders


def sources() -> list[BuildSource]:
    """Every module of every installed package, named as it is imported."""
    found = []
    for package, folder in package_dirs().items():
        for path in sorted((ROOT / folder).glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            found.append(BuildSource(str(path.relative_to(ROOT)), name))
    return found


def main() -> int:
    os.chdir(ROOT)  # pyproject.toml's [tool.mypy] is found from the working directory
    _, options = process_options(sys.argv[1:], require_targets=False)
    try:
        result = build.build(sources(), options)
        messages = result.errors
    except CompileError as error:
        messages = error.messages
    for line in messages:
        print(line)
    errors = sum(": error:" in line for line in messages)
    print(f"mypy: {errors} error(s) in {len(sources())} modules" if errors else
          f"mypy: no errors in {len(sources())} modules")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
