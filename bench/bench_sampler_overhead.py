"""Sampler CPU overhead at 20 Hz with every sensor of this machine plus fake RAPL and NVML ones.

Measures the sampler thread's own CPU time (its POSIX thread CPU clock) over the run, as a share of
one core. Target: below 0.5 %. The fake NVML calls cost less than real ones (a real call is an
ioctl into the driver, ~10-100 µs), so on a GPU machine re-run it: the real sensors are included.

    .venv/bin/python bench/bench_sampler_overhead.py [--seconds 20] [--hz 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tests.fakes.pynvml as fake_nvml  # noqa: E402
from core.sampler import Sampler  # noqa: E402
from core.sensors import detect, rapl  # noqa: E402
from core.sensors.nvml import NvmlSensor  # noqa: E402
from tests.fakes.powercap import advancing_counters, build_powercap_tree  # noqa: E402


def fake_sensors(root: Path) -> list:
    os.environ[rapl.POWERCAP_ROOT_ENV] = str(root)
    fake_rapl, _, _ = rapl.probe()
    real_pynvml = sys.modules.get("pynvml")
    sys.modules["pynvml"] = fake_nvml
    try:
        fake_nvml.configure(
            gpus=[fake_nvml.FakeGpu(), fake_nvml.FakeGpu(energy_counter=False, power_w=90.0)]
        )
        fake_nvml.nvmlInit()
        fake_nvml.nvmlInit()
        fake_gpus = [NvmlSensor(0), NvmlSensor(1)]
    finally:
        if real_pynvml is not None:
            sys.modules["pynvml"] = real_pynvml
    for sensor in fake_rapl + fake_gpus:
        sensor.name = "fake-" + sensor.name
    return fake_rapl + fake_gpus


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--hz", type=float, default=20.0)
    args = parser.parse_args()

    machine = detect().sensors  # before the fake tree is pointed at
    with tempfile.TemporaryDirectory() as tmp:
        tree = build_powercap_tree(Path(tmp), sockets=2)
        zones = {path: 50.0 for path in tree.zones.values()}
        with advancing_counters(zones, tree_range(tree), interval_s=0.1):
            sensors = machine + fake_sensors(tree.root)
            samples = []
            sampler = Sampler(sensors, sample_hz=args.hz, on_samples=samples.extend)
            sampler.start()
            clock_id = time.pthread_getcpuclockid(sampler._thread.ident)
            cpu0, wall0 = time.clock_gettime(clock_id), time.monotonic()
            time.sleep(args.seconds)
            cpu1, wall1 = time.clock_gettime(clock_id), time.monotonic()
            sampler.stop()

    cpu_s, wall_s = cpu1 - cpu0, wall1 - wall0
    reads = len(samples)
    print(f"sensors: {len(sensors)} ({', '.join(s.name for s in sensors)})")
    print(f"sampled {wall_s:.1f} s at {args.hz:g} Hz: {reads} samples, errors: {sampler.errors}")
    print(f"sampler thread CPU: {cpu_s * 1e3:.1f} ms = {100 * cpu_s / wall_s:.3f} % of one core")
    print(f"per sampling round: {cpu_s / (wall_s * args.hz) * 1e6:.0f} µs (target: < 0.5 %)")


def tree_range(tree) -> int:
    return int((next(iter(tree.zones.values())) / "max_energy_range_uj").read_text())


if __name__ == "__main__":
    main()
