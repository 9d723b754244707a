"""The machine the tests see: no RAPL, no NVML, no CUDA, whichever machine runs them.

The product finds hardware at three low-level doors: RAPL zones under the powercap root
(ENERGY_CONSOLE_POWERCAP_ROOT, else /sys/class/powercap), NVIDIA GPUs through `import pynvml`, and
CUDA through torch (CUDA_VISIBLE_DEVICES). `bare_host_env` closes all three in an environment:

- ENERGY_CONSOLE_POWERCAP_ROOT is an empty folder: no zone, so RAPL is missing;
- PYTHONPATH starts with tests/fakes, so `import pynvml` is the fake (tests/fakes/pynvml), set to
  "library-not-found": what nvidia-ml-py says on a machine without an NVIDIA driver;
- CUDA_VISIBLE_DEVICES is empty: torch sees no GPU.

tests/conftest.py applies it to the test process for the whole run (`use_bare_host`): to os.environ,
which every runner, worker and CLI process a test starts inherits, and to sys.path and sys.modules
for what runs in the test process. A test that wants hardware builds it from fakes on top of that:
a powercap tree (monkeypatch.setenv ENERGY_CONSOLE_POWERCAP_ROOT), tests.fakes.pynvml with GPUs
(monkeypatch.setitem(sys.modules, "pynvml", ...)).

`lab_host_env` is the opposite, a fake lab machine: readable RAPL counters (one socket: package,
core, dram) and two NVIDIA GPUs. Run tests as if on such a machine (the suite must pass unchanged):

    python -m tests.fakes.host [PYTEST ARGS]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tests.fakes.powercap import build_powercap_tree
from tests.fakes.pynvml import FAKE_PYNVML_ENV

if TYPE_CHECKING:
    import pytest

FAKES_DIR = Path(__file__).resolve().parent
POWERCAP_ROOT_ENV = "ENERGY_CONSOLE_POWERCAP_ROOT"  # as core/sensors/rapl.py reads it


def _with_fakes_first(pythonpath: str | None) -> str:
    rest = [p for p in (pythonpath or "").split(os.pathsep) if p and Path(p) != FAKES_DIR]
    return os.pathsep.join([str(FAKES_DIR), *rest])


def bare_host_env(base: Mapping[str, str], empty_powercap_root: Path) -> dict[str, str]:
    """`base` with RAPL, NVML and CUDA taken away (see the module's docstring)."""
    return {
        **base,
        POWERCAP_ROOT_ENV: str(empty_powercap_root),
        "PYTHONPATH": _with_fakes_first(base.get("PYTHONPATH")),
        FAKE_PYNVML_ENV: "library-not-found",
        "CUDA_VISIBLE_DEVICES": "",
    }


def use_bare_host(patch: pytest.MonkeyPatch, empty_powercap_root: Path) -> None:
    """Make this process, and every process it starts, see a bare host (undone with `patch`)."""
    empty_powercap_root.mkdir(parents=True, exist_ok=True)
    for key, value in bare_host_env(os.environ, empty_powercap_root).items():
        if os.environ.get(key) != value:
            patch.setenv(key, value)
    patch.syspath_prepend(str(FAKES_DIR))
    patch.delitem(sys.modules, "pynvml", raising=False)  # the next `import pynvml` is the fake


def lab_host_env(base: Mapping[str, str], powercap_root: Path, gpus: int = 2) -> dict[str, str]:
    """`base` as a lab machine would look: a readable RAPL tree at `powercap_root` (built here)
    and `gpus` NVIDIA GPUs behind `import pynvml`. CUDA is left as the machine has it."""
    build_powercap_tree(powercap_root, sockets=1)
    env = {
        **base,
        POWERCAP_ROOT_ENV: str(powercap_root),
        "PYTHONPATH": _with_fakes_first(base.get("PYTHONPATH")),
        FAKE_PYNVML_ENV: f"gpus:{gpus}",
    }
    if base.get("CUDA_VISIBLE_DEVICES") == "":  # our own switch, not the machine's setting
        del env["CUDA_VISIBLE_DEVICES"]
    return env


def main(argv: list[str]) -> int:
    """pytest ARGV on a fake lab machine (RAPL and two GPUs); returns pytest's exit status."""
    with tempfile.TemporaryDirectory(prefix="energy-console-lab-host-") as folder:
        env = lab_host_env(os.environ, Path(folder) / "powercap")
        root = FAKES_DIR.parent.parent
        return subprocess.call([sys.executable, "-m", "pytest", *argv], cwd=root, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
