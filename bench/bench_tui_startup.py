"""Start-up time of the console: from launching a process until its first screen is ready.

Run: .venv/bin/python bench/bench_tui_startup.py [REPEATS]
The child builds the app `energy-console` alone builds (setup screen, technique registry, demo
model list) headless and exits on Textual's `ready` event, so the figure includes interpreter
start and all imports. The default profile, the models named in saved profiles and the run count
arrive just after that first paint. A bare `python -c 'import textual'` is timed beside it: on a
shared, loaded machine the ratio of the two says more than either figure.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import sys
from energy_console.tui.app import EnergyConsoleApp

class FirstScreenProbe(EnergyConsoleApp):
    def on_ready(self):
        print('torch loaded' if 'torch' in sys.modules else 'torch not loaded', flush=True)
        self.exit()

FirstScreenProbe(open_default=True).run(headless=True, size=(80, 24))
"""
BARE = "import textual"


def launch_s(code: str) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return time.perf_counter() - start, out.stdout.strip()


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    times_s, bare_s, said = [], [], ""
    for _ in range(repeats):  # interleaved: both see the same load
        took, said = launch_s(PROBE)
        times_s.append(took)
        bare_s.append(launch_s(BARE)[0])
    median, bare = statistics.median(times_s), statistics.median(bare_s)
    print(
        f"first screen ready: median {median:.3f} s, min {min(times_s):.3f} s, "
        f"max {max(times_s):.3f} s over {repeats} launches ({said}); target < 0.6 s\n"
        f"bare `python -c 'import textual'`: median {bare:.3f} s; ratio {median / bare:.1f}"
    )


if __name__ == "__main__":
    main()
