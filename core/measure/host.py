"""Facts about the machine a session ran on, so figures from two machines can be compared.

session.json gets the host (CPU, memory, library versions, CPU frequency governor, temperatures);
each run's result.json gets the state of its GPU at start and end (clocks, power limit, throttling).
"""

from __future__ import annotations

import platform
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
from energy_console.core.measure.sensors.base import SensorInfo

LIBRARIES = ("energy-console", "torch", "transformers", "optimum", "textual", "nvidia-ml-py",
             "optimum-quanto", "torch-pruning", "onnxruntime")


def host_info(sys_root: Path = Path("/sys")) -> dict[str, Any]:
    """Host, platform, CPU, memory, governor, temperatures and library versions."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for package in LIBRARIES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": platform.processor() or cpu_model(),
        "cpu_count_logical": psutil.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu_governors": cpu_governors(sys_root),
        "temperatures_c": thermal_zones_c(sys_root),
        "versions": versions,
    }


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def cpu_governors(sys_root: Path = Path("/sys")) -> dict[str, int]:
    """How many CPUs run each frequency governor ('performance': 64); {} where not exposed.

    A 'powersave' or 'schedutil' governor changes both energy and latency: it is worth knowing
    when two sessions disagree."""
    counts: dict[str, int] = {}
    for path in (sys_root / "devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor"):
        try:
            governor = path.read_text().strip()
        except OSError:
            continue
        counts[governor] = counts.get(governor, 0) + 1
    return counts


def thermal_zones_c(sys_root: Path = Path("/sys")) -> dict[str, float]:
    """Temperature of each thermal zone by its type ('x86_pkg_temp': 47.0); {} where none."""
    temps: dict[str, float] = {}
    for zone in sorted((sys_root / "class/thermal").glob("thermal_zone*")):
        try:
            kind = (zone / "type").read_text().strip()
            temps[f"{kind}:{zone.name.removeprefix('thermal_zone')}"] = (
                int((zone / "temp").read_text()) / 1000.0)
        except (OSError, ValueError):
            continue
    return temps


def gpu_snapshots(sensors: Sequence[SensorInfo]) -> list[dict[str, Any]]:
    """Name, driver, power limit, temperature, clock and throttle reasons of each sampled GPU."""
    indexes = [s.device_index for s in sensors if s.kind == "gpu" and s.device_index is not None]
    if not indexes:
        return []
    from energy_console.core.measure.sensors.nvml import gpu_snapshot

    return [gpu_snapshot(i) for i in indexes]


def gpu_record(start: list[dict[str, Any]], end: list[dict[str, Any]]) -> dict[str, Any]:
    """A run's GPU state at start and end, and every throttle reason seen in either."""
    reasons = sorted({r for snap in start + end for r in snap.get("throttle_reasons") or []})
    return {"start": start, "end": end, "throttle_reasons_seen": reasons}
