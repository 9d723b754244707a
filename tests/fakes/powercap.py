"""A fake Linux powercap tree on disk, and a process that advances its counters at a known power.

The tree has the kernel's layout (flat zone directories, as /sys/class/powercap shows them):

    intel-rapl:0/{name=package-0, energy_uj, max_energy_range_uj}
    intel-rapl:0:0/{name=core, ...}   intel-rapl:0:1/{name=dram, ...}
    intel-rapl:1/... (second socket)  intel-rapl:2/{name=psys} (optional)

Point the code at it with ENERGY_CONSOLE_POWERCAP_ROOT=<root>. Like sysfs, an `energy_uj` file is
updated in place, so a reader that keeps it open and re-reads it at offset 0 (as the RAPL sensor
does) sees every new value: one pwrite at a fixed width (zero-padded to the digits of
max_energy_range_uj), so a reader never sees a half-written or shortened value. The static files
(name, max_energy_range_uj) are written with an atomic rename.

Run as a script, this module is the counter writer (`start_counter_writer` starts it):

    python tests/fakes/powercap.py --wrap-uj N [--jitter F] ZONE_DIR=POWER_W [...]

With a jitter F (0.3: ±30 %) each zone's power is redrawn, uniformly within ±F of its value, every
`jitter_every_s`: a machine whose draw wanders, so that windows disagree.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

# What current Intel CPUs report (2^32 units of 61 µJ); tests use small ranges to force wraps.
REAL_MAX_ENERGY_RANGE_UJ = 262143328850


def write_value(path: Path, value: int | str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(f"{value}\n")
    os.replace(tmp, path)


def counter_text(value_uj: int, width: int) -> bytes:
    return f"{value_uj:0{width}d}\n".encode()


def write_counter_in_place(fd: int, value_uj: int, width: int) -> None:
    """One pwrite at offset 0; the truncate only matters where a value outgrew the width."""
    data = counter_text(value_uj, width)
    os.pwrite(fd, data, 0)
    os.ftruncate(fd, len(data))


def set_counter(path: Path, value_uj: int) -> None:
    """Write an energy_uj file in place, keeping the width it was created with."""
    fd = os.open(path, os.O_RDWR)
    try:
        write_counter_in_place(fd, value_uj, os.fstat(fd).st_size - 1)
    finally:
        os.close(fd)


@dataclass
class FakePowercap:
    root: Path
    zones: dict[str, Path] = field(default_factory=dict)  # "intel-rapl:0:1" -> its directory

    def zone(self, zone_dir: str) -> Path:
        return self.zones[zone_dir]

    def set_energy_uj(self, zone_dir: str, value_uj: int) -> None:
        set_counter(self.zones[zone_dir] / "energy_uj", value_uj)

    def energy_files(self) -> list[Path]:
        return [path / "energy_uj" for path in self.zones.values()]


def build_powercap_tree(
    root: Path,
    sockets: int = 2,
    dram: bool = True,
    core: bool = True,
    package: bool = True,
    psys: bool = False,
    prefix: str = "intel-rapl",
    package_name: str = "package-{socket}",
    max_energy_range_uj: int = REAL_MAX_ENERGY_RANGE_UJ,
    start_uj: int = 1_000_000,
) -> FakePowercap:
    """A powercap tree with `sockets` package zones (and core/dram subzones), psys optional."""
    root.mkdir(parents=True, exist_ok=True)
    (root / prefix).mkdir(exist_ok=True)  # the control type directory: no name file, not a zone
    tree = FakePowercap(root=root)

    def add(zone_dir: str, name: str) -> None:
        path = root / zone_dir
        path.mkdir()
        write_value(path / "name", name)
        write_value(path / "max_energy_range_uj", max_energy_range_uj)
        (path / "energy_uj").write_bytes(counter_text(start_uj, len(str(max_energy_range_uj))))
        tree.zones[zone_dir] = path

    top = 0
    if package:
        for socket in range(sockets):
            add(f"{prefix}:{socket}", package_name.format(socket=socket))
            subs = (["core"] if core else []) + (["dram"] if dram else [])
            for i, sub in enumerate(subs):
                add(f"{prefix}:{socket}:{i}", sub)
        top = sockets
    if psys:
        add(f"{prefix}:{top}", "psys")
    return tree


def start_counter_writer(
    power_w_by_zone: dict[Path, float],
    max_energy_range_uj: int,
    interval_s: float = 0.002,
    jitter: float = 0.0,
    jitter_every_s: float = 0.25,
) -> subprocess.Popen:
    """Start a process that advances each zone's energy_uj at its power, wrapping at the range.

    The counter at time t is (start value + power_w × (t - t0)) mod max_energy_range_uj, written
    every `interval_s` like RAPL's ~1 ms updates. The process writes each counter once before this
    returns. Stop it with `stop_counter_writer`.
    """
    args = [sys.executable, __file__, "--wrap-uj", str(max_energy_range_uj)]
    args += ["--interval-s", str(interval_s), "--jitter", str(jitter),
             "--jitter-every-s", str(jitter_every_s)]
    args += [f"{path}={power_w}" for path, power_w in power_w_by_zone.items()]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    ready = process.stdout.readline() if process.stdout else ""
    if ready.strip() != "ready":
        process.kill()
        raise RuntimeError(f"counter writer did not start (said {ready!r})")
    return process


def stop_counter_writer(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=5)


@contextmanager
def advancing_counters(
    power_w_by_zone: dict[Path, float], max_energy_range_uj: int, interval_s: float = 0.002,
    jitter: float = 0.0, jitter_every_s: float = 0.25,
) -> Iterator[subprocess.Popen]:
    """`start_counter_writer` for the length of a with-block."""
    process = start_counter_writer(power_w_by_zone, max_energy_range_uj, interval_s, jitter,
                                   jitter_every_s)
    try:
        yield process
    finally:
        stop_counter_writer(process)


def _run_writer(wrap_uj: int, interval_s: float, zones: list[tuple[Path, float]],
                jitter: float = 0.0, jitter_every_s: float = 0.25) -> None:
    running = True

    def stop(*_):
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    fds = [os.open(path / "energy_uj", os.O_RDWR) for path, _ in zones]
    start_uj = [int(os.pread(fd, 32, 0)) for fd in fds]
    widths = [os.fstat(fd).st_size - 1 for fd in fds]
    draw = random.Random(25)
    # energy (µJ) to the last redraw, the time of that redraw and the power since
    energy_uj = [0.0] * len(zones)
    power_w = [power for _, power in zones]
    last_t = time.monotonic()
    first = True
    while running:
        now = time.monotonic()
        if jitter and now - last_t >= jitter_every_s:
            energy_uj = [e + p * (now - last_t) * 1e6 for e, p in zip(energy_uj, power_w,
                                                                      strict=True)]
            power_w = [power * (1 + draw.uniform(-jitter, jitter)) for _, power in zones]
            last_t = now
        for fd, width, e, p, origin_uj in zip(fds, widths, energy_uj, power_w, start_uj,
                                              strict=True):
            value = (origin_uj + round(e + p * (now - last_t) * 1e6)) % wrap_uj
            write_counter_in_place(fd, value, width)
        if first:
            print("ready", flush=True)
            first = False
        time.sleep(interval_s)
    for fd in fds:
        os.close(fd)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wrap-uj", type=int, required=True)
    parser.add_argument("--interval-s", type=float, default=0.002)
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--jitter-every-s", type=float, default=0.25)
    parser.add_argument("zones", nargs="+", help="ZONE_DIR=POWER_W")
    args = parser.parse_args(argv)
    zones = []
    for item in args.zones:
        path, _, power = item.rpartition("=")
        zones.append((Path(path), float(power)))
    _run_writer(args.wrap_uj, args.interval_s, zones, args.jitter, args.jitter_every_s)


if __name__ == "__main__":
    main()
