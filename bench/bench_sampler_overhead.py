"""Sampler CPU overhead with every sensor of this machine plus fake RAPL and NVML ones.

As the runner runs it, energy counters and the CPU estimate (a counter of CPU time) are read at the
display rate (DISPLAY_HZ, a few Hz: their window energy comes from reads at the window edges), a
GPU's power samples kept by its driver every second (DRIVER_FETCH_EVERY_S), power-only sensors at
--hz, the batches handed on every DELIVER_EVERY_S (2 s); where there is no power-only sensor the
thread wakes at the display rate alone. The bench's 7
sensors: this machine's (here the estimate), 4 fake RAPL zones, a fake GPU with an energy counter
(Volta and newer) and one without whose driver keeps power samples (Kepler to Pascal). It measures
them as the runner reads them; the same with that GPU's power polled at --hz (a driver that keeps
no samples); all of them read at --hz (the sampler before it had a display rate); the counters and
the estimate alone; this machine's own sensors alone; and the floors below.

Measures the sampler thread's own CPU time (its POSIX thread CPU clock, user + kernel) as a share of
one core, the way the runner uses it: every sample goes to samples.csv through a real
SessionWriter.append_samples, shifted to wall-clock time as the runner's write_samples does, in the
batches the sampler hands on_samples (`--no-csv` leaves that out). Beside it, interleaved run by
run, the floors it stands on: the same sampler with its decoding and writing deferred past the
measured span (the reads alone), the sampler with no sensor (its loop), and a Python thread that
only sleeps at the same rate (the cost of waking a Python thread at all; on a VM it is higher
when the machine is otherwise idle). Several runs, medians reported: other processes on the
machine move single runs. Target: below 0.1 % of a core.

The fake RAPL zones are files in a temporary directory whose counters another process advances;
the fake NVML calls cost less than real ones (a real call is an ioctl into the driver,
~10-100 µs), so on a GPU machine re-run it: the real sensors are included.

    .venv/bin/python bench/bench_sampler_overhead.py [--seconds 10] [--runs 5] [--hz 20] [--no-csv]
        [--display-hz 4]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from energy_console.core.measure.sampler import DELIVER_EVERY_S, DISPLAY_HZ, Sampler  # noqa: E402
from energy_console.core.measure.sensors import detect, rapl  # noqa: E402
from energy_console.core.measure.sensors.base import POLLED_POWER  # noqa: E402
from energy_console.core.measure.sensors.nvml import NvmlSensor  # noqa: E402
from energy_console.core.store.session_dir import SessionWriter  # noqa: E402

import tests.fakes.pynvml as fake_nvml  # noqa: E402
from tests.fakes.powercap import advancing_counters, build_powercap_tree  # noqa: E402

FLOORS = {
    "runner": "as the runner runs it (counters at display Hz)",
    "polled": "the same, a GPU's power polled at --hz",
    "counters": "counters and the estimate alone, as the runner",
    "machine": "this machine's sensors alone, as the runner",
    "full": "every sensor at --hz (reads, decoding, csv)",
    "reads": "its reads alone (decoding after the span)",
    "loop": "its loop with no sensor",
    "sleep": "a Python thread that only sleeps",
}


def fake_sensors(root: Path) -> tuple[list, list]:
    """The fake RAPL zones and GPUs: (4 zones, a GPU with a counter, one without that keeps
    power samples) and (the same, its second GPU's driver keeping none: polled at --hz)."""
    os.environ[rapl.POWERCAP_ROOT_ENV] = str(root)
    fake_rapl, _, _ = rapl.probe()
    real_pynvml = sys.modules.get("pynvml")
    sys.modules["pynvml"] = fake_nvml
    try:
        fake_nvml.configure(gpus=[
            fake_nvml.FakeGpu(),
            fake_nvml.FakeGpu(energy_counter=False, power_samples=True, power_w=90.0),
            fake_nvml.FakeGpu(energy_counter=False, power_w=90.0),
        ])
        for _ in range(3):
            fake_nvml.nvmlInit()
        counter, samples, polled = NvmlSensor(0), NvmlSensor(1), NvmlSensor(2)
    finally:
        if real_pynvml is not None:
            sys.modules["pynvml"] = real_pynvml
    for sensor in [*fake_rapl, counter, samples, polled]:
        sensor.name = "fake-" + sensor.name
    polled.name = samples.name
    return [*fake_rapl, counter, samples], [*fake_rapl, counter, polled]


def thread_cpu_share(thread: threading.Thread, seconds: float) -> float:
    """CPU seconds / wall seconds of a running thread over `seconds`, after its start-up."""
    time.sleep(0.5)
    clock_id = time.pthread_getcpuclockid(thread.ident)
    cpu0, wall0 = time.clock_gettime(clock_id), time.monotonic()
    time.sleep(seconds)
    cpu1, wall1 = time.clock_gettime(clock_id), time.monotonic()
    return (cpu1 - cpu0) / (wall1 - wall0)


def sampler_share(sensors: list, hz: float, seconds: float, writer: SessionWriter | None,
                  deliver: bool = True, display_hz: float | None = None) -> tuple[float, int]:
    """(the sampler thread's share of a core, samples produced) for one run; `deliver` False
    leaves decoding and writing to stop(), after the measured span."""
    produced = 0
    offset = time.time() - time.monotonic()

    def write_samples(samples) -> None:  # what the runner's write_samples does
        nonlocal produced
        produced += len(samples)
        if writer:
            writer.append_samples(samples, offset)

    sampler = Sampler(sensors, sample_hz=hz, on_samples=write_samples,
                      deliver_every_s=DELIVER_EVERY_S if deliver else 2 * seconds + 10,
                      display_hz=display_hz)
    sampler.start()
    share = thread_cpu_share(sampler._thread, seconds)
    sampler.stop()
    failures = sampler.failures(0.0, math.inf)
    if failures:
        raise RuntimeError(f"sensor errors: {failures}")
    return share, produced


def sleeping_share(hz: float, seconds: float) -> float:
    """A Python thread that only sleeps, woken hz times a second: the floor of any sampler."""
    running = [True]  # a plain flag: an Event's is_set() would add a frame per wake-up

    def sleep_loop() -> None:
        period_s, sleep = 1 / hz, time.sleep
        while running[0]:
            sleep(period_s)

    thread = threading.Thread(target=sleep_loop, daemon=True)
    thread.start()
    share = thread_cpu_share(thread, seconds)
    running[0] = False
    thread.join()
    return share


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--hz", type=float, default=20.0)
    parser.add_argument("--no-csv", action="store_true", help="leave out the samples.csv write")
    parser.add_argument("--display-hz", type=float, default=DISPLAY_HZ)
    args = parser.parse_args()

    machine = detect().sensors  # before the fake tree is pointed at
    with tempfile.TemporaryDirectory() as tmp:
        tree = build_powercap_tree(Path(tmp) / "powercap", sockets=2)
        writer = None if args.no_csv else SessionWriter(Path(tmp) / "session")
        zones = {path: 50.0 for path in tree.zones.values()}
        max_range_uj = int((tree.zone("intel-rapl:0") / "max_energy_range_uj").read_text())
        with advancing_counters(zones, max_range_uj, interval_s=0.1):
            fakes, fakes_polled = fake_sensors(tree.root)
            sensors, polled = machine + fakes, machine + fakes_polled
            shares: dict[str, list[float]] = {name: [] for name in FLOORS}
            produced = 0
            counters = [s for s in sensors if s.method in ("counter", "estimate")]
            for _ in range(args.runs):
                shares["runner"].append(sampler_share(sensors, args.hz, args.seconds, writer,
                                                      display_hz=args.display_hz)[0])
                shares["polled"].append(sampler_share(polled, args.hz, args.seconds, writer,
                                                      display_hz=args.display_hz)[0])
                shares["counters"].append(sampler_share(counters, args.hz, args.seconds, writer,
                                                        display_hz=args.display_hz)[0])
                shares["machine"].append(sampler_share(machine, args.hz, args.seconds, writer,
                                                       display_hz=args.display_hz)[0])
                share, n = sampler_share(sensors, args.hz, args.seconds, writer)
                shares["full"].append(share)
                produced += n
                shares["reads"].append(
                    sampler_share(sensors, args.hz, args.seconds, None, deliver=False)[0])
                shares["loop"].append(sampler_share([], args.hz, args.seconds, None)[0])
                shares["sleep"].append(sleeping_share(args.hz, args.seconds))
        csv_bytes = (Path(tmp) / "session" / "samples.csv").stat().st_size if writer else 0
        if writer:
            writer.close()
        for sensor in [*sensors, polled[-1]]:
            sensor.close()

    print(f"sensors: {len(sensors)} ({', '.join(s.name for s in sensors)})")
    print(
        f"{args.runs} runs of {args.seconds:g} s at {args.hz:g} Hz, "
        f"{produced / (args.runs * (args.seconds + 0.5) * args.hz):.1f} samples per round, "
        + (
            f"every sample written to samples.csv ({csv_bytes / 1e6:.1f} MB)"
            if writer
            else "no samples.csv write"
        )
    )
    print("thread CPU, % of one core (median, µs per wake-up; the runs):")
    # wake-ups a second: the display rate where no sensor is power-only
    wakes_hz = {name: args.hz for name in FLOORS}
    for name, group in {"runner": sensors, "polled": polled, "counters": counters,
                        "machine": machine}.items():
        if all(s.method != POLLED_POWER for s in group):
            wakes_hz[name] = args.display_hz
    for name, label in FLOORS.items():
        median = statistics.median(shares[name])
        runs = ", ".join(f"{100 * s:.3f}" for s in shares[name])
        per_wake_us = median / wakes_hz[name] * 1e6
        print(f"  {label:<44} {100 * median:.3f} %  {per_wake_us:4.0f} µs  ({runs})")
    print(f"counters and the estimate (read at the display rate, {args.display_hz:g} Hz): "
          f"{len(counters)} ({', '.join(s.name for s in counters)}); this machine's: "
          f"{', '.join(s.name for s in machine) or 'none'}")
    print("target: the sampler as the runner runs it < 0.1 %")


if __name__ == "__main__":
    main()
