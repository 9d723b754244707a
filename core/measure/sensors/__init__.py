"""Power sensors: one module per source, one protocol (core.sensors.base.Sensor)."""

from __future__ import annotations

from energy_console.core.measure.sensors.base import (
    Detection,
    MissingSensor,
    Reading,
    Sensor,
    SensorInfo,
    describe,
)

__all__ = ["Detection", "MissingSensor", "Reading", "Sensor", "SensorInfo", "describe", "detect"]


def detect(cpu_tdp_w: float | None = None) -> Detection:
    """Every sensor this machine offers, and why the rest is missing.

    Measured sources come first; the CPU estimate stands in only where no CPU counter is readable.
    """
    from energy_console.core.measure.sensors.estimate import EstimatedCpuSensor

    sensors: list[Sensor] = []
    missing: list[MissingSensor] = []
    notices: list[str] = []
    for probe in _probes():
        found, lacking, said = probe()
        sensors.extend(found)
        missing.extend(lacking)
        notices.extend(said)
    if not any(s.kind in ("cpu", "system") and s.measured for s in sensors):
        estimate = EstimatedCpuSensor(cpu_tdp_w)
        sensors.append(estimate)
        notices.append(
            "No readable CPU energy counter: CPU energy is estimated from utilisation "
            f"({estimate.detail}); figures using it are labelled 'estimated'."
        )
    return Detection(sensors=sensors, missing=missing, notices=notices)


def _probes():
    """Each probe returns (sensors, missing, notices)."""
    from energy_console.core.measure.sensors import nvml, rapl

    return [rapl.probe, nvml.probe]
