"""Probes for `energy-console doctor` and the GPU acceptance script: synthetic load in child
processes (a CPU busy loop; a matmul on every GPU, torch imported only in that child), and NVML
read directly: each GPU's energy counter against its integrated power over the same window, its
state (limits, clocks, persistence, other processes) and its memory in use."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CROSS_CHECK_BOUND_PCT = 5.0  # counter vs integrated power, same window, steady load
CROSS_CHECK_S = 2.0  # window of the counter-vs-power cross-check
GPU_LOAD_START_TIMEOUT_S = 90.0  # torch import + CUDA context on every GPU


@dataclass(frozen=True)
class CrossCheck:
    """One GPU's energy counter against its integrated power over the same window."""

    sensor: str
    window_s: float
    counter_j: float
    power_j: float
    power_source: str  # "instantaneous power field" or "power usage (driver's average)"
    under_load: bool

    @property
    def disagreement_pct(self) -> float:
        return (self.power_j - self.counter_j) / self.counter_j * 100.0 if self.counter_j else 0.0

    def agrees(self, bound_pct: float = CROSS_CHECK_BOUND_PCT) -> bool:
        return self.counter_j > 0 and abs(self.disagreement_pct) <= bound_pct


# ------------------------------------------------------------------ load in child processes
_CPU_LOAD = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\n" \
            "while time.monotonic() < end:\n    pass\n"

# Prints one line: "no-cuda <torch version> <torch.version.cuda>" and exits, or
# "ready <n devices>" once a matmul has run on every device, then loops until the deadline.
_GPU_LOAD = """
import sys, time
deadline = time.monotonic() + float(sys.argv[1])
try:
    import torch
except ImportError as exc:
    print("no-torch", exc, flush=True); sys.exit(0)
if not torch.cuda.is_available():
    print("no-cuda", torch.__version__, torch.version.cuda, flush=True); sys.exit(0)
n = torch.cuda.device_count()
mats = []
for i in range(n):
    a = torch.randn(4096, 4096, device=f"cuda:{i}", dtype=torch.float16)
    mats.append((a, torch.empty_like(a)))
for i, (a, out) in enumerate(mats):
    torch.matmul(a, a, out=out); torch.cuda.synchronize(i)
print("ready", n, flush=True)
while time.monotonic() < deadline:
    for a, out in mats:
        for _ in range(8):
            torch.matmul(a, a, out=out)
    for i in range(n):
        torch.cuda.synchronize(i)
"""


@dataclass
class GpuLoad:
    """A child process running a matmul on every CUDA device, or why there is none."""

    process: subprocess.Popen | None
    devices: int
    note: str  # what torch said (no CUDA, its version) when there is no load

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_gpu_load(duration_s: float,
                   start_timeout_s: float = GPU_LOAD_START_TIMEOUT_S) -> GpuLoad:
    """Start the matmul child; returns once it runs on every device, or says why it does not."""
    process = subprocess.Popen([sys.executable, "-c", _GPU_LOAD, str(duration_s)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               stdin=subprocess.DEVNULL)
    import selectors

    selector = selectors.DefaultSelector()
    assert process.stdout is not None
    selector.register(process.stdout, selectors.EVENT_READ)
    line = process.stdout.readline() if selector.select(start_timeout_s) else ""
    selector.close()
    words = line.split()
    if words[:1] == ["ready"]:
        return GpuLoad(process, int(words[1]), "")
    load = GpuLoad(process, 0, "")
    load.stop()
    if words[:1] == ["no-cuda"]:
        version, cuda = (words[1:] + ["?", "None"])[:2]
        load.note = (f"torch {version} sees no CUDA device" +
                     (" (a CPU build of torch)" if cuda == "None" else f" (built for CUDA {cuda})"))
    elif words[:1] == ["no-torch"]:
        load.note = "torch cannot be imported: " + " ".join(words[1:])
    elif not line:
        load.note = f"the GPU load did not start within {start_timeout_s:.0f} s"
    else:
        rest = (process.stdout.read() or "") if process.stdout else ""
        load.note = "the GPU load failed: " + (line + rest).strip().splitlines()[-1][:300]
    return load


def start_cpu_load(duration_s: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _CPU_LOAD, str(duration_s)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def stop_load(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=5)


# ------------------------------------------------------------------ NVML
def _power_reader(pynvml: Any, handle: Any) -> tuple[str, Any]:
    """The GPU's power in mW: the instantaneous field where the driver has it, else its average."""
    field_id = getattr(pynvml, "NVML_FI_DEV_POWER_INSTANT", None)
    if field_id is not None:
        try:
            (value,) = pynvml.nvmlDeviceGetFieldValues(handle, [field_id])
            if value.nvmlReturn == pynvml.NVML_SUCCESS:
                def instant() -> float | None:
                    (v,) = pynvml.nvmlDeviceGetFieldValues(handle, [field_id])
                    return v.value.uiVal if v.nvmlReturn == pynvml.NVML_SUCCESS else None

                return "instantaneous power field", instant
        except pynvml.NVMLError:
            pass
    return "power usage (the driver's average)", lambda: pynvml.nvmlDeviceGetPowerUsage(handle)


def cross_check(indexes: Sequence[int], duration_s: float = CROSS_CHECK_S,
                under_load: bool = False, poll_s: float = 0.005) -> list[CrossCheck]:
    """Each GPU's counter against its integrated power over the same window.

    The window runs from one step of the counter to a later step (the counter is exact at its own
    steps; a counter that moves every ~100 ms read at arbitrary instants is not), each step placed
    midway between the poll that last saw the old value and the one that saw the new (a busy box
    delays polls), and the power readings between those two instants are integrated by trapezoid.
    GPUs without a counter are left out."""
    import pynvml

    pynvml.nvmlInit()
    try:
        gpus = []
        for index in indexes:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            try:
                pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            except pynvml.NVMLError:
                continue
            source, power = _power_reader(pynvml, handle)
            gpus.append({"index": index, "handle": handle, "source": source, "power": power,
                         "steps": [], "samples": [], "last": None, "last_t": None})
        end = time.monotonic() + duration_s
        while gpus and time.monotonic() < end:
            for gpu in gpus:
                counter = pynvml.nvmlDeviceGetTotalEnergyConsumption(gpu["handle"])
                t = time.monotonic()
                power_mw = gpu["power"]()
                if power_mw is not None:
                    gpu["samples"].append((t, power_mw / 1e3))
                if gpu["last"] is not None and counter != gpu["last"]:
                    gpu["steps"].append(((gpu["last_t"] + t) / 2, counter))
                gpu["last"], gpu["last_t"] = counter, t
            time.sleep(poll_s)
    finally:
        pynvml.nvmlShutdown()
    out = []
    for gpu in gpus:
        if len(gpu["steps"]) < 2:
            continue
        (t_a, c_a), (t_b, c_b) = gpu["steps"][0], gpu["steps"][-1]
        out.append(CrossCheck(f"nvml:{gpu['index']}", t_b - t_a, (c_b - c_a) / 1e3,
                              integrate(gpu["samples"], t_a, t_b), gpu["source"], under_load))
    return out


def integrate(samples: Sequence[tuple[float, float]], t_a: float, t_b: float) -> float:
    """Trapezoid integral of (t, watts) between t_a and t_b, the edges interpolated."""
    def at(t: float) -> float:
        for (t0, w0), (t1, w1) in zip(samples, samples[1:], strict=False):
            if t0 <= t <= t1:
                return w0 if t1 == t0 else w0 + (w1 - w0) * (t - t0) / (t1 - t0)
        return samples[0][1] if t < samples[0][0] else samples[-1][1]

    if not samples or t_b <= t_a:
        return 0.0
    points = [(t_a, at(t_a))] + [(t, w) for t, w in samples if t_a < t < t_b] + [(t_b, at(t_b))]
    return sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(points, points[1:],
                                                                         strict=False))


def gpu_facts(index: int, own_pids: Sequence[int] = ()) -> dict[str, Any]:
    """Power limit (enforced and default), persistence mode, clocks, memory and other processes."""
    import pynvml
    from energy_console.core.measure.sensors.nvml import _query, gpu_snapshot

    facts = gpu_snapshot(index)
    pynvml.nvmlInit()
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        default_mw = _query(pynvml.nvmlDeviceGetPowerManagementDefaultLimit, handle)
        facts["default_power_limit_w"] = None if default_mw is None else default_mw / 1e3
        facts["persistence_mode"] = _query(pynvml.nvmlDeviceGetPersistenceMode, handle)
        facts["max_sm_clock_mhz"] = _query(pynvml.nvmlDeviceGetMaxClockInfo, handle,
                                           pynvml.NVML_CLOCK_SM)
        memory = _query(pynvml.nvmlDeviceGetMemoryInfo, handle)
        facts["memory_used_mib"] = None if memory is None else memory.used / 2**20
        processes: dict[int, float | None] = {}
        for call in ("nvmlDeviceGetComputeRunningProcesses",
                     "nvmlDeviceGetGraphicsRunningProcesses"):
            for proc in _query(getattr(pynvml, call, lambda _h: []), handle, default=[]) or []:
                used = getattr(proc, "usedGpuMemory", None)
                processes[proc.pid] = None if used is None else used / 2**20
        facts["other_processes"] = {pid: mib for pid, mib in processes.items()
                                    if pid not in set(own_pids)}
    finally:
        pynvml.nvmlShutdown()
    return facts


def gpu_memory_used_mib(index: int) -> float | None:
    """Memory in use on one GPU (all processes and the driver), MiB; None where NVML refuses."""
    import pynvml
    from energy_console.core.measure.sensors.nvml import _query

    pynvml.nvmlInit()
    try:
        memory = _query(pynvml.nvmlDeviceGetMemoryInfo, pynvml.nvmlDeviceGetHandleByIndex(index))
        return None if memory is None else memory.used / 2**20
    finally:
        pynvml.nvmlShutdown()


def process_name(pid: int) -> str:
    import psutil

    try:
        process = psutil.Process(pid)
        return f"{process.name()}, user {process.username()}"
    except (psutil.Error, KeyError):
        return "not visible from here (another container or user)"
