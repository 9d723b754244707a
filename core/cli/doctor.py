"""`energy-console doctor`: what this box will measure, how well, and what to fix first.

A checklist built from the product's own doors to the hardware (core.sensors detect, the period
probe, NVML's GPU state, the host facts, the machine lock), plus two things only a check can tell:

- whether each sensor's reading moves under a short synthetic load: a CPU busy loop in a child
  process and, where torch sees CUDA, a matmul on every GPU in another child (started with a
  timeout; torch is never imported in this process);
- where one device has two sources (NVML's total-energy counter and NVML's power reading), both
  over the same window: the counter's difference between two of its own steps against the power
  integrated (trapezoid) between the same two instants, and their disagreement in %.

The box "can measure" when a measured sensor's reading moved; the exit status is 0 only then (and
when the results directory and the lock can be used). Nothing here changes the machine: clocks,
power limits, governors and permissions are reported with the command an admin would use.
No textual import; heavy imports stay inside functions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from energy_console.core.cli.conventions import results_root
from energy_console.core.cli.gpu_probe import (
    CROSS_CHECK_BOUND_PCT,
    CROSS_CHECK_S,
    CrossCheck,
    GpuLoad,
    cross_check,
    gpu_facts,
    process_name,
    start_cpu_load,
    start_gpu_load,
    stop_load,
)

Status = Literal["ok", "warn", "fail", "info"]

LOAD_S = 1.0  # how long each sensor is watched under load (also finds its update period)
MIN_FREE_DISK_GIB = 1.0
FIX_NVIDIA_PERSISTENCE = "sudo nvidia-smi -pm 1   # an admin's choice; energy-console never sets it"


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    topic: str  # "nvml:0", "rapl", "governor", "disk", ...
    status: Status
    summary: str
    fix: str = ""


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)  # measured sensors whose reading moved
    periods_s: dict[str, float | None] = field(default_factory=dict)
    cross_checks: list[CrossCheck] = field(default_factory=list)

    def add(self, topic: str, status: Status, summary: str, fix: str = "") -> None:
        self.checks.append(Check(topic, status, summary, fix))

    @property
    def can_measure(self) -> bool:
        """A measured sensor moved, and nothing blocks a session (results dir, lock)."""
        return bool(self.moved) and not any(c.status == "fail" for c in self.checks)

    @property
    def exit_status(self) -> int:
        return 0 if self.can_measure else 1


def _gpu_checks(report: DoctorReport, index: int, facts: dict[str, Any]) -> None:
    topic = f"gpu {index}"
    limit, default = facts.get("power_limit_w"), facts.get("default_power_limit_w")
    clock, max_clock = facts.get("sm_clock_mhz"), facts.get("max_sm_clock_mhz")
    text = (f"{facts.get('name')}, driver {facts.get('driver')}: power limit "
            f"{_w(limit)}" + (f" (default {_w(default)})" if default and default != limit else "")
            + f", SM clock {clock} of {max_clock} MHz, {facts.get('temperature_c')} °C")
    if limit and default and limit < default * 0.99:
        report.add(topic, "warn", text + ": the power limit was lowered; figures hold for it",
                   "record it with the results; an admin resets it with "
                   f"`sudo nvidia-smi -i {index} -pl {default:.0f}` (energy-console never does)")
    else:
        report.add(topic, "ok", text)
    reasons = [r for r in facts.get("throttle_reasons") or [] if r != "gpu_idle"]
    if reasons:
        report.add(topic, "warn", "clocks held back now: " + ", ".join(reasons),
                   "let the GPU cool or finish other work before measuring")
    persistence = facts.get("persistence_mode")
    if persistence == 0:
        report.add(topic, "warn", "persistence mode is off: the driver re-initialises the GPU "
                   "for each worker (slower first iterations, idle power drops between runs)",
                   FIX_NVIDIA_PERSISTENCE)
    others = facts.get("other_processes") or {}
    if others:
        listed = "; ".join(f"pid {pid} ({process_name(pid)}"
                           + (f", {mib:.0f} MiB" if mib is not None else "") + ")"
                           for pid, mib in sorted(others.items()))
        report.add(topic, "warn", f"{len(others)} other process(es) use this GPU: {listed}; "
                   "their energy would be counted in your runs",
                   f"wait for them (nvidia-smi -i {index}), or measure on a free GPU "
                   "(--device cuda:N)")
    else:
        report.add(topic, "ok", "no other process uses this GPU")


def _w(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f} W"


# ------------------------------------------------------------------ host
def _governor_check(report: DoctorReport, sys_root: Path) -> None:
    from energy_console.core.measure.host import cpu_governors

    governors = cpu_governors(sys_root)
    if not governors:
        report.add("governor", "info", "CPU frequency governor not exposed (a VM or container): "
                   "CPU frequency is the host's choice")
        return
    text = ", ".join(f"{name} on {count} CPU(s)" for name, count in sorted(governors.items()))
    if set(governors) == {"performance"}:
        report.add("governor", "ok", f"CPU governor: {text}")
    else:
        report.add("governor", "warn", f"CPU governor: {text}: CPU energy and latency depend on "
                   "it; compare only sessions run under the same governor (session.json records "
                   "it)", "sudo cpupower frequency-set -g performance   # an admin's choice, for "
                   "steadier figures; energy-console never changes it")


def _existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _results_checks(report: DoctorReport, results_dir: Path) -> None:
    results_dir = results_dir.absolute()
    where = _existing_parent(results_dir)
    try:
        free_gib = shutil.disk_usage(where).free / 2**30
    except OSError as exc:
        report.add("disk", "fail", f"cannot tell the free space under {where}: {exc.strerror}")
        free_gib = None
    if free_gib is not None:
        status: Status = "ok" if free_gib >= MIN_FREE_DISK_GIB else \
            "warn" if free_gib >= 0.05 else "fail"
        report.add("disk", status, f"{free_gib:.1f} GiB free under {where}",
                   "" if status == "ok" else "free space, or choose another place with "
                   "--results-dir or ENERGY_CONSOLE_RESULTS_DIR (a session writes a few MB; "
                   "saved models more)")
    fix = "choose a writable place with --results-dir or ENERGY_CONSOLE_RESULTS_DIR"
    if results_dir.is_dir():
        try:
            with tempfile.NamedTemporaryFile(dir=results_dir, prefix=".doctor-"):
                pass
            report.add("results", "ok", f"results go to {results_dir} (writable)")
        except OSError as exc:
            report.add("results", "fail", f"cannot write into {results_dir}: {exc.strerror}", fix)
    elif results_dir.exists():
        report.add("results", "fail", f"{results_dir} exists and is not a directory", fix)
    elif os.access(where, os.W_OK | os.X_OK):
        report.add("results", "ok", f"results go to {results_dir} (created at the first "
                   f"session; {where} is writable)")
    else:
        report.add("results", "fail", f"{results_dir} cannot be created: {where} is not "
                   "writable by this user", fix)


def _lock_check(report: DoctorReport, lock_path: Path | None) -> None:
    from energy_console.core.session.machine_lock import LockRefused, MachineBusy, MachineLock

    lock = MachineLock(lock_path)
    try:
        lock.acquire(Path("(energy-console doctor)"))
    except LockRefused as exc:
        report.add("lock", "fail", str(exc))
        return
    except MachineBusy as exc:
        report.add("lock", "warn", f"the machine lock {lock.path} is held now: {exc}",
                   "a session started now would wait for nothing: it is refused until that one "
                   "ends")
        return
    except OSError as exc:
        report.add("lock", "fail", f"cannot use the machine lock {lock.path}: {exc}",
                   "set ENERGY_CONSOLE_LOCK to a file in a directory only you can write")
        return
    lock.release()
    report.add("lock", "ok", f"machine lock {lock.path} can be taken")


# ------------------------------------------------------------------ the whole check
def run_doctor(results_dir: Path, *, load_s: float = LOAD_S, cross_check_s: float = CROSS_CHECK_S,
               gpu_load: bool = True, lock_path: Path | None = None,
               sys_root: Path = Path("/sys")) -> DoctorReport:
    """Every check, in the order a reader fixes things: sensors, their load test, GPUs, host."""
    from energy_console.core.measure.sensors import detect
    from energy_console.core.measure.sensors.period import detect_sensor_periods_s

    report = DoctorReport()
    report.add("python", "info", f"Python {sys.version.split()[0]} ({sys.executable})")
    detection = detect()
    try:
        gpus = [s.device_index for s in detection.sensors
                if s.kind == "gpu" and s.device_index is not None]
        for missing in detection.missing:
            report.add(missing.name, "warn", missing.reason, missing.fix)
        facts = {i: gpu_facts(i, own_pids=[os.getpid()]) for i in gpus}
        load = GpuLoad(None, 0, "no NVIDIA GPU: no GPU load")
        if gpus and gpu_load:
            load = start_gpu_load(duration_s=load_s + cross_check_s + 30)
            if load.devices:
                report.add("cuda", "ok", f"torch sees {load.devices} CUDA device(s): a matmul "
                           "runs on each during the checks")
            else:
                report.add("cuda", "warn", f"{load.note}: the GPUs are checked idle, and runs "
                           "cannot use them",
                           "install the CUDA build of torch: pip install torch==2.13.0 (the "
                           "default index; see README, Install)")
        try:
            cpu: subprocess.Popen | None = start_cpu_load(load_s + 5)
        except OSError as exc:
            cpu = None
            report.add("load", "warn", f"the CPU busy loop could not start ({exc}): sensors "
                       "are watched without it")
        try:
            start = time.monotonic()
            before = {s.name: s.read() for s in detection.sensors}
            periods = detect_sensor_periods_s(detection.sensors, load_s)
            time.sleep(max(0.0, start + load_s - time.monotonic()))  # estimates alone: no poll
            after = {s.name: s.read() for s in detection.sensors}
        finally:
            if cpu is not None:
                stop_load(cpu)
        report.periods_s = periods
        try:
            if gpus:
                report.cross_checks = cross_check(gpus, cross_check_s,
                                                  under_load=load.devices > 0)
        finally:
            load.stop()
        for sensor in detection.sensors:
            _sensor_check(report, sensor, before[sensor.name], after[sensor.name],
                          periods.get(sensor.name))
        for check in report.cross_checks:
            _cross_check_line(report, check)
        for index in gpus:
            _gpu_checks(report, index, facts[index])
    finally:
        for sensor in detection.sensors:
            sensor.close()
    _governor_check(report, sys_root)
    _results_checks(report, results_dir)
    _lock_check(report, lock_path)
    return report


def _sensor_check(report: DoctorReport, sensor: Any, before: Any, after: Any,
                  period_s: float | None) -> None:
    dt = max(after.t - before.t, 1e-9)
    if not sensor.measured:
        power = after.power_w
        report.add(sensor.name, "warn", f"CPU energy is an ESTIMATE from utilisation "
                   f"({'?' if power is None else f'{power:.1f}'} W under the busy loop; "
                   f"{sensor.detail}): every figure using it is labelled 'estimated'",
                   "a readable RAPL counter replaces it (see the rapl line)")
        return
    if before.energy_j is not None and after.energy_j is not None:
        moved_j = after.energy_j - before.energy_j
        moved = moved_j > 0
        source = "counter" if sensor.method == "counter" else "energy of the driver's samples"
        what = (f"{source} moved {moved_j:.3f} J in {dt:.2f} s ({moved_j / dt:.1f} W)"
                if moved else f"{source} did not move in {dt:.2f} s")
    else:
        moved = bool(after.power_w)
        what = (f"power reads {after.power_w:.1f} W" if after.power_w is not None
                else "power reads nothing")
    nominal = sensor.update_period_s
    period = (f"updates every {_duration(period_s)} (measured)" if period_s is not None
              else f"update period not seen in {dt:.1f} s (nominal "
              f"{_duration(nominal) if nominal else '?'})")
    load = "under load" if sensor.kind in ("cpu", "system", "dram") else ""
    text = f"{sensor.kind} {sensor.method}, {sensor.detail}: {what} {load}".rstrip() + f"; {period}"
    if moved:
        report.moved.append(sensor.name)
        report.add(sensor.name, "ok", "measured: " + text)
    else:
        report.add(sensor.name, "fail", "measured source that did not move: " + text,
                   "a stuck counter gives zero energy: check the driver (nvidia-smi -q -d POWER) "
                   "or the powercap files")


def _cross_check_line(report: DoctorReport, check: CrossCheck) -> None:
    text = (f"counter {check.counter_j:.2f} J vs {check.power_source} integrated "
            f"{check.power_j:.2f} J over {check.window_s:.2f} s "
            f"{'under load' if check.under_load else 'at idle'}: "
            f"{check.disagreement_pct:+.1f} % (bound ±{CROSS_CHECK_BOUND_PCT:.0f} %)")
    if check.agrees():
        report.add(check.sensor, "ok", "cross-check agrees: " + text)
    else:
        report.add(check.sensor, "warn", "cross-check disagrees: " + text,
                   "energy-console uses the counter; a power reading that is an average (1 s "
                   "on Ampere and newer) or sampled part-time lags a changing load")


def _duration(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


MARK = {"ok": "[ok]  ", "warn": "[warn]", "fail": "[FAIL]", "info": "[info]"}


def format_report(report: DoctorReport) -> str:
    """Plain text for an SSH terminal: one line a check, fixes indented under it."""
    lines = ["energy-console doctor: what this box will measure, and how well", ""]
    for check in report.checks:
        lines.append(f"{MARK[check.status]} {check.topic:<14} {check.summary}")
        for fix_line in check.fix.splitlines():
            lines.append(f"{'':22}fix: {fix_line}")
    lines.append("")
    blockers = [c.topic for c in report.checks if c.status == "fail"]
    if report.can_measure:
        lines.append(f"Verdict: this box can measure: {', '.join(report.moved)} measured "
                     "(counters moved).")
    elif not report.moved:
        lines.append("Verdict: this box cannot measure energy: no measured sensor moved; every "
                     "figure would be an estimate. Apply the fixes above (RAPL permissions, the "
                     "NVIDIA driver), or use it for estimates only.")
    else:
        lines.append(f"Verdict: sensors work ({', '.join(report.moved)}) but a session cannot "
                     f"run here until these are fixed: {', '.join(blockers)}.")
    return "\n".join(lines) + "\n"


def cmd_doctor(args: argparse.Namespace) -> int:
    report = run_doctor(results_root(args), gpu_load=not args.no_gpu_load)
    print(format_report(report), end="")
    return report.exit_status
