"""RAPL energy counters through the Linux powercap interface (Intel, and AMD's same layout).

Zones live under /sys/class/powercap (ENERGY_CONSOLE_POWERCAP_ROOT overrides it): one top-level zone
per socket (`intel-rapl:0`, name `package-0`; some AMD kernels say `amd-rapl:0` or name it
`package`), its subzones (`intel-rapl:0:0`, named `core`, `uncore` or `dram`), and on laptops a
`psys` zone for the whole platform. Reported without double counting: each package and its dram;
core and uncore are already inside the package; psys contains the package, so it is used only
where no package zone exists.

`energy_uj` is a counter in µJ that wraps at `max_energy_range_uj`; the sampler reads it at ~20 Hz,
so at most one wrap happens between consecutive reads (the shortest wrap on real machines is
minutes) and the sensor unwraps it into a cumulative figure that keeps counting across any number
of wraps. The file stays open and is re-read at offset 0 (sysfs makes a fresh value for each read
from 0): one syscall per reading instead of open, read and close.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from energy_console.core.measure.sensors.base import MissingSensor, Reading, SensorKind, new_reading

POWERCAP_ROOT_ENV = "ENERGY_CONSOLE_POWERCAP_ROOT"
DEFAULT_POWERCAP_ROOT = "/sys/class/powercap"

# intel-rapl:0, intel-rapl:0:1, amd-rapl:1 (intel-rapl-mmio duplicates the package: left out)
_ZONE_DIR = re.compile(r"^(?:intel|amd)-rapl:(\d+)(?::(\d+))?$")
_PACKAGE_NAME = re.compile(r"^package(?:-(\d+))?$")


def powercap_root() -> Path:
    return Path(os.environ.get(POWERCAP_ROOT_ENV, DEFAULT_POWERCAP_ROOT))


@dataclass(frozen=True)
class RaplZone:
    path: Path  # the zone's directory (holds name, energy_uj, max_energy_range_uj)
    zone_name: str  # the kernel's name: package-0, dram, core, uncore, psys
    socket: int  # the package index; 0 for psys
    parent: int  # the top-level zone index (intel-rapl:<parent>)
    sub: int | None  # the subzone index, None for a top-level zone

    @property
    def energy_file(self) -> Path:
        return self.path / "energy_uj"


def list_zones(root: Path) -> list[RaplZone]:
    """Every RAPL zone under root, in a stable order (top-level zones, then their subzones)."""
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        match = _ZONE_DIR.match(entry.name)
        if not match or not (entry / "name").is_file():
            continue
        parent, sub = int(match[1]), (int(match[2]) if match[2] is not None else None)
        found.append((parent, -1 if sub is None else sub, entry))
    found.sort()
    packages: dict[int, int] = {}
    zones = []
    for parent, sub, path in found:
        zone_name = (path / "name").read_text().strip()
        package = _PACKAGE_NAME.match(zone_name)
        if sub == -1 and package:
            packages[parent] = int(package[1]) if package[1] is not None else parent
        zones.append(
            RaplZone(
                path=path,
                zone_name=zone_name,
                socket=packages.get(parent, 0),
                parent=parent,
                sub=None if sub == -1 else sub,
            )
        )
    return zones


def zones_to_report(zones: list[RaplZone]) -> list[RaplZone]:
    """Package and dram zones, or psys alone where the machine has no package zone."""
    packages = [z for z in zones if z.sub is None and _PACKAGE_NAME.match(z.zone_name)]
    drams = [z for z in zones if z.zone_name == "dram"]
    if packages:
        return packages + drams
    return [z for z in zones if z.zone_name == "psys"] + drams


def _sensor_kind(zone: RaplZone) -> SensorKind:
    if zone.zone_name == "dram":
        return "dram"
    if zone.zone_name == "psys":
        return "system"
    return "cpu"


def _sensor_name(zone: RaplZone) -> str:
    if zone.zone_name == "dram":
        return f"rapl:dram-{zone.socket}"
    if zone.zone_name == "psys":
        return "rapl:psys"
    return f"rapl:package-{zone.socket}"


class RaplSensor:
    """One powercap zone's energy counter, unwrapped into joules since the sensor was opened."""

    measured = True
    method = "counter"
    quantum_j = 1e-6  # energy_uj counts µJ
    update_period_s: float | None = 0.001  # nominal (Intel SDM); period.calibrate measures it
    device_index: int | None = None

    def __init__(self, zone: RaplZone) -> None:
        self.zone = zone
        self.name = _sensor_name(zone)
        self.kind = _sensor_kind(zone)
        self.detail = f"{zone.path} ({zone.zone_name})"
        self.wrap_uj = int((zone.path / "max_energy_range_uj").read_bytes())
        if self.wrap_uj <= 0:
            raise ValueError(f"{zone.path}/max_energy_range_uj is {self.wrap_uj}, expected > 0")
        # a file object rather than a bare descriptor: it closes itself if the sensor is dropped,
        # and once closed, fileno() refuses rather than reading whatever reuses the number
        self._energy_file = open(zone.energy_file, "rb", buffering=0)  # PermissionError: probe
        # one call per reading: pread on the held descriptor, bound once (the sampler's thread calls
        # it alone each tick and decodes later: see SplitReadSensor)
        self.read_raw: Callable[[], bytes] = partial(os.pread, self._energy_file.fileno(), 32, 0)
        self.clock: Callable[[], float] = time.monotonic
        self._last_raw_uj = int(self.read_raw())
        self._total_uj = 0

    def read(self) -> Reading:
        return self.decode(self.read_raw(), self.clock())

    def decode(self, raw: bytes, t: float) -> Reading:
        """The counter text read at t, unwrapped; called in read order (it keeps the last value)."""
        raw_uj = int(raw)
        delta_uj = raw_uj - self._last_raw_uj
        if delta_uj < 0:  # the counter wrapped (at most once between reads at the sampling rate)
            delta_uj += self.wrap_uj
        self._total_uj += delta_uj
        self._last_raw_uj = raw_uj
        return new_reading((t, self._total_uj / 1e6, None))

    def close(self) -> None:
        self._energy_file.close()
        self.read_raw = _closed  # the number may be reused by another file: never read it again


def _closed() -> bytes:
    raise ValueError("I/O operation on closed file: the RAPL sensor was closed")


def probe() -> tuple[list[RaplSensor], list[MissingSensor], list[str]]:
    """RAPL sensors this machine offers; otherwise why not, and the fix."""
    root = powercap_root()
    zones = zones_to_report(list_zones(root))
    if not zones:
        return [], [_no_zones(root)], []
    sensors: list[RaplSensor] = []
    denied: list[RaplZone] = []
    failed: list[str] = []
    for zone in zones:
        try:
            sensors.append(RaplSensor(zone))
        except PermissionError:
            denied.append(zone)
        except (OSError, ValueError) as exc:
            failed.append(f"{zone.path}: {type(exc).__name__}: {exc}")
    missing: list[MissingSensor] = []
    notices: list[str] = []
    if denied:
        for sensor in sensors:  # a partial set would mix measured and estimated CPU figures
            sensor.close()
        sensors = []
        missing.append(_permission_denied(denied))
        notices.append(
            "RAPL energy counters exist but are not readable by this user (root-only since Linux "
            "5.10): CPU energy falls back to the utilisation estimate, labelled 'estimated'. "
            "Run `energy-console sensors` for the fix."
        )
    if failed:
        missing.append(
            MissingSensor(
                name="rapl",
                reason="RAPL zones could not be read: " + "; ".join(failed),
                fix="Check the kernel log (dmesg | grep -i rapl); in a VM, RAPL is often absent.",
            )
        )
    return sensors, missing, notices


def _no_zones(root: Path) -> MissingSensor:
    where = f"{root}" + ("" if root.is_dir() else " (does not exist)")
    return MissingSensor(
        name="rapl",
        reason=f"no RAPL zones under {where}: not an Intel/AMD CPU with RAPL, a virtual machine, "
        "or the RAPL driver is not loaded",
        fix="sudo modprobe intel_rapl_msr   # on bare-metal Intel/AMD x86 Linux",
    )


def _permission_denied(zones: list[RaplZone]) -> MissingSensor:
    files = " ".join(str(z.energy_file) for z in zones)
    return MissingSensor(
        name="rapl",
        reason=f"permission denied reading {files} (energy_uj is root-only since Linux 5.10, "
        "against the PLATYPUS side channel; allow it only on machines you trust)",
        fix=(
            f"sudo chmod a+r {files}   # until the next reboot\n"
            "echo 'ACTION==\"add\", SUBSYSTEM==\"powercap\", RUN+=\"/bin/chmod a+r "
            "/sys%p/energy_uj\"' | sudo tee /etc/udev/rules.d/99-energy-console-rapl.rules"
            "   # at every boot"
        ),
    )
