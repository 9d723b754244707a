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
CPU time (user + system) is printed beside the wall time: it moves far less with the load.
"""

from __future__ import annotations

import os
import resource
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
        print(time.time(), time.process_time(),
              'torch loaded' if 'torch' in sys.modules else 'torch not loaded', flush=True)
        self.exit()

FirstScreenProbe(open_default=True).run(headless=True, size=(80, 24))
"""
BARE = "import textual"


def launch(code: str) -> tuple[float, float, float, str]:
    """When the child started (Unix time), its wall and CPU seconds until it exited, and what it
    printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.time()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True,
                         text=True, check=True)
    wall_s = time.time() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return start, wall_s, cpu_s, out.stdout.strip()


def summary(label: str, values: list[float]) -> str:
    return (f"{label} median {statistics.median(values):.3f} s, min {min(values):.3f} s, "
            f"max {max(values):.3f} s")


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    ready_s, ready_cpu_s, exit_s, bare_s, bare_cpu_s, torch = [], [], [], [], [], ""
    launch(PROBE)  # writes the bytecode caches
    for _ in range(repeats):  # interleaved: both see the same load
        start, wall_s, _, said = launch(PROBE)
        ready_at, cpu_s, torch = said.split(" ", 2)
        ready_s.append(float(ready_at) - start)
        ready_cpu_s.append(float(cpu_s))
        exit_s.append(wall_s)
        _, wall_s, cpu, _ = launch(BARE)
        bare_s.append(wall_s)
        bare_cpu_s.append(cpu)
    median, bare = statistics.median(ready_s), statistics.median(bare_s)
    cpu, bare_cpu = statistics.median(ready_cpu_s), statistics.median(bare_cpu_s)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"{summary('first screen ready: wall', ready_s)} over {repeats} launches ({torch}); "
        f"target < 0.6 s\n"
        f"  {summary('CPU', ready_cpu_s)}\n"
        f"  with the default profile opened, exit: wall median {statistics.median(exit_s):.3f} s\n"
        f"bare `python -c 'import textual'`: wall median {bare:.3f} s, "
        f"CPU median {bare_cpu:.3f} s\n"
        f"ratio to the bare import: wall {median / bare:.2f}, CPU {cpu / bare_cpu:.2f}\n"
        f"load average {load} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
