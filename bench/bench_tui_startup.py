"""Start-up time of the console: from launching a process until its first screen is ready.

Run: .venv/bin/python bench/bench_tui_startup.py [REPEATS]
The child builds the app `energy-console` alone builds (setup screen, technique registry, demo
model list) headless, at 80x24, and says the wall-clock time of Textual's `ready` event (the
first screen laid out and painted), so the figure includes interpreter start and all imports.
The default profile, the models named in saved profiles and the run count arrive just after that
first paint: the child's exit, timed too, includes them (and the app's shutdown). A bare
`python -c 'import textual'` is timed beside it: on a shared, loaded machine the ratio of the two
says more than either figure. A first, untimed launch writes the bytecode caches, as any install's
first run does (with PYTHONDONTWRITEBYTECODE set, every launch would compile what changed).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
PROBE = """
import sys, time
from energy_console.tui.app import EnergyConsoleApp

class FirstScreenProbe(EnergyConsoleApp):
    def on_ready(self):
        print(time.time(), 'torch loaded' if 'torch' in sys.modules else 'torch not loaded',
              flush=True)
        self.exit()

FirstScreenProbe(open_default=True).run(headless=True, size=(80, 24))
"""
BARE = "import textual"


def launch(code: str) -> tuple[float, str]:
    """Seconds until the child exited, and what it printed."""
    start = time.time()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True,
                         text=True, check=True)
    return time.time() - start, out.stdout.strip()


def first_screen(code: str) -> tuple[float, float, str]:
    """Seconds until the first screen was ready, until the child exited, and whether torch was
    imported."""
    start = time.time()
    exited_s, said = launch(code)
    ready_at, torch = said.split(" ", 1)
    return float(ready_at) - start, exited_s, torch


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    ready_s, exit_s, bare_s, torch = [], [], [], ""
    launch(PROBE)  # writes the bytecode caches
    for _ in range(repeats):  # interleaved: both see the same load
        ready, exited, torch = first_screen(PROBE)
        ready_s.append(ready)
        exit_s.append(exited)
        bare_s.append(launch(BARE)[0])
    median, bare = statistics.median(ready_s), statistics.median(bare_s)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"first screen ready: median {median:.3f} s, min {min(ready_s):.3f} s, "
        f"max {max(ready_s):.3f} s over {repeats} launches ({torch}); target < 0.6 s\n"
        f"with the default profile opened, exit: median {statistics.median(exit_s):.3f} s\n"
        f"bare `python -c 'import textual'`: median {bare:.3f} s; ratio {median / bare:.2f}\n"
        f"load average {load} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
