"""`energy-console sensors`: what this machine can measure, how, how finely, and what is missing."""

from __future__ import annotations

from dataclasses import dataclass

from energy_console.core.measure.sensors.base import MissingSensor, SensorKind
from energy_console.core.measure.sensors.period import DEFAULT_PROBE_S, detect_sensor_periods_s

HOW = {
    "counter": "energy counter",
    "polled-power": "polled power, integrated",
    "power-samples": "the driver's power samples, integrated",
    "estimate": "ESTIMATE from CPU utilisation",
}


@dataclass(frozen=True)
class SensorEntry:
    name: str
    kind: SensorKind
    method: str  # counter | polled-power | estimate
    measured: bool
    detail: str
    update_period_s: float | None  # measured here; None for estimates or when nothing moved
    nominal_period_s: float | None  # what the hardware is documented to do


@dataclass(frozen=True)
class SensorsReport:
    sensors: list[SensorEntry]
    missing: list[MissingSensor]
    notices: list[str]
    probe_s: float  # how long each sensor was watched to find its update period


def sensors_report(
    cpu_tdp_w: float | None = None, probe_s: float = DEFAULT_PROBE_S
) -> SensorsReport:
    """Detect every sensor, watch the measured ones for probe_s to find their update period."""
    from energy_console.core.measure.sensors import detect

    detection = detect(cpu_tdp_w)
    try:
        periods = detect_sensor_periods_s(detection.sensors, probe_s)
    finally:
        for sensor in detection.sensors:
            sensor.close()
    entries = [
        SensorEntry(
            name=s.name,
            kind=s.kind,
            method=s.method,
            measured=s.measured,
            detail=s.detail,
            update_period_s=periods.get(s.name),
            nominal_period_s=s.update_period_s,
        )
        for s in detection.sensors
    ]
    return SensorsReport(entries, detection.missing, detection.notices, probe_s)


def _period_text(entry: SensorEntry, probe_s: float) -> str:
    if not entry.measured:
        return "no hardware reading: sampled at the sampler's rate"
    if entry.update_period_s is not None:
        return f"updates every {_duration(entry.update_period_s)} (measured)"
    nominal = f"; nominal {_duration(entry.nominal_period_s)}" if entry.nominal_period_s else ""
    return f"did not change in {probe_s:.1f} s (idle or stuck{nominal})"


def _duration(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def format_sensors_report(report: SensorsReport) -> str:
    """Plain text for a terminal (SSH-friendly: no colour, no box drawing)."""
    lines = ["Sensors in use"]
    for entry in report.sensors:
        lines.append(f"  {entry.name:<18} {entry.kind:<7} {HOW.get(entry.method, entry.method)}")
        lines.append(f"  {'':<18} {_period_text(entry, report.probe_s)}")
        if entry.detail:
            lines.append(f"  {'':<18} {entry.detail}")
    if not any(entry.measured for entry in report.sensors):
        lines.append("  Nothing on this machine is measured: every energy figure is an estimate.")
    if report.missing:
        lines += ["", "Missing"]
        for missing in report.missing:
            lines.append(f"  {missing.name}: {missing.reason}")
            if missing.fix:
                lines.append("    fix:")
                lines += [f"      {line}" for line in missing.fix.splitlines()]
    if report.notices:
        lines += ["", "Notices"]
        lines += [f"  - {notice}" for notice in report.notices]
    return "\n".join(lines) + "\n"
