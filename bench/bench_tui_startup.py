"""Start-up time of the console: from launching a process until its first screen is ready.

Run: .venv/bin/python bench/bench_tui_startup.py [REPEATS]
The child builds the real app (setup screen, technique registry, demo model list) headless and
exits on Textual's `ready` event, so the figure includes interpreter start and all imports. The
models named in saved profiles and the run count arrive just after that first paint.
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

FirstScreenProbe().run(headless=True, size=(80, 24))
"""


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    times_s = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
        )
        times_s.append(time.perf_counter() - start)
    print(
        f"first screen ready: median {statistics.median(times_s):.3f} s, "
        f"min {min(times_s):.3f} s, max {max(times_s):.3f} s over {repeats} launches "
        f"({out.stdout.strip()}); target < 1.5 s"
    )


if __name__ == "__main__":
    main()
