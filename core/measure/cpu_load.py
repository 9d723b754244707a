"""How busy the rest of the machine was while a window was timed.

The runner opens a `CpuLoadWindow` at a window's start edge and closes it at the end edge: the CPU
time every process spent, less the worker's own, over the window's length and all cores. A high
figure means the energy of the window includes other work (RAPL and the estimate are box-wide).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psutil

# Other processes' CPU use over this share of all cores during the idle baseline: the baseline
# holds their power, and the dynamic energy (total minus idle) of every run loses its meaning.
IDLE_BUSY_PCT = 10.0
# no `;`: a run's warnings are `;`-separated in runs.csv
IDLE_FIX = ("measure at a quieter moment, or stop what keeps the machine busy "
            "(`energy-console doctor` shows it)")


def busy_idle_warning(other_cpu_load_pct: float | None) -> str | None:
    """The warning for an idle baseline taken while other processes kept the CPU busy."""
    if other_cpu_load_pct is None or other_cpu_load_pct <= IDLE_BUSY_PCT:
        return None
    return (f"idle baseline taken while other processes used {other_cpu_load_pct:.0f}% of all "
            "cores: it holds their power, so dynamic energy (total minus idle) is not "
            f"meaningful. Fix: {IDLE_FIX}")


@dataclass
class CpuLoadWindow:
    start_t: float  # monotonic, the worker's start edge
    worker: psutil.Process | None  # the worker's, None where psutil cannot see it
    start_busy_s: float = field(init=False)
    start_worker_s: float = field(init=False)
    end_t: float | None = None
    other_cpu_load_pct: float = 0.0
    worker_cpu_s: float = 0.0

    def __post_init__(self) -> None:
        self.start_busy_s = busy_cpu_s()
        self.start_worker_s = process_cpu_s(self.worker)

    def close(self, end_t: float, cpus: int | None = None) -> None:
        self.end_t = end_t
        duration_s = end_t - self.start_t
        busy_s = busy_cpu_s() - self.start_busy_s
        self.worker_cpu_s = process_cpu_s(self.worker) - self.start_worker_s
        cpus = cpus or psutil.cpu_count() or 1
        if duration_s > 0:
            self.other_cpu_load_pct = (
                max(0.0, busy_s - self.worker_cpu_s) / (duration_s * cpus) * 100)


def ps_process(pid: int | None) -> psutil.Process | None:
    try:
        return psutil.Process(pid) if pid else None
    except psutil.Error:
        return None


def process_cpu_s(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    try:
        times = process.cpu_times()
        return times.user + times.system
    except psutil.Error:
        return 0.0


def busy_cpu_s() -> float:
    """CPU seconds all cores spent not idle since boot."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)
