"""`energy-console sensors` tells the truth: what is measured, how finely, and what is missing."""

from __future__ import annotations

import sys

import pytest
from energy_console.core.measure.sensors import rapl
from energy_console.core.measure.sensors.period import median_change_interval_s
from energy_console.core.measure.sensors.report import format_sensors_report, sensors_report

import tests.fakes.pynvml as fake_nvml
from tests.fakes.powercap import advancing_counters, build_powercap_tree
from tests.fakes.pynvml import FakeGpu


@pytest.fixture
def no_powercap(tmp_path, monkeypatch):
    monkeypatch.setenv(rapl.POWERCAP_ROOT_ENV, str(tmp_path / "no-powercap"))


def test_machine_with_nothing_readable_says_everything_is_estimated(no_powercap, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    fake_nvml.configure(init_error=fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    report = sensors_report(cpu_tdp_w=65.0, probe_s=0.05)
    text = format_sensors_report(report)

    assert [(e.name, e.method, e.measured) for e in report.sensors] == [
        ("cpu-estimate", "estimate", False)
    ]
    assert {m.name for m in report.missing} == {"rapl", "nvml"}
    assert "ESTIMATE from CPU utilisation" in text
    assert "16.2 W idle .. 65.0 W" in text
    assert "Nothing on this machine is measured" in text
    assert "NVML library not found" in text
    assert "sudo modprobe intel_rapl_msr" in text


def test_fake_machine_reports_counters_with_their_measured_periods(tmp_path, monkeypatch):
    tree = build_powercap_tree(tmp_path, sockets=1, dram=False)
    monkeypatch.setenv(rapl.POWERCAP_ROOT_ENV, str(tmp_path))
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    fake_nvml.configure(gpus=[FakeGpu(), FakeGpu(energy_counter=False, instant_power_field=False)])

    with advancing_counters({tree.zone("intel-rapl:0"): 40.0}, 10**12, interval_s=0.01):
        report = sensors_report(probe_s=0.6)
    text = format_sensors_report(report)
    entries = {e.name: e for e in report.sensors}

    assert list(entries) == ["rapl:package-0", "nvml:0", "nvml:1"]  # no estimate: RAPL is read
    assert entries["rapl:package-0"].update_period_s == pytest.approx(0.01, abs=0.006)
    assert entries["nvml:0"].update_period_s == pytest.approx(0.1, abs=0.03)
    assert entries["nvml:1"].method == "polled-power"
    assert entries["nvml:1"].update_period_s is None  # constant power: nothing moved
    assert "energy counter" in text and "polled power, integrated" in text
    assert "did not change in 0.6 s (idle or stuck; nominal 1.0 s)" in text
    assert fake_nvml.state.refcount == 0


def test_a_rapl_zone_that_fails_to_read_is_explained_and_the_estimate_used(tmp_path, monkeypatch):
    monkeypatch.setenv(rapl.POWERCAP_ROOT_ENV, str(tmp_path))
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    fake_nvml.configure(init_error=fake_nvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    build_powercap_tree(tmp_path, sockets=1, dram=False)
    (tmp_path / "intel-rapl:0" / "energy_uj").unlink()
    (tmp_path / "intel-rapl:0" / "energy_uj").mkdir()  # opening it fails with an OSError

    text = format_sensors_report(sensors_report(probe_s=0.05))

    assert "RAPL zones could not be read" in text
    assert "IsADirectoryError" in text
    assert "cpu-estimate" in text


def test_period_is_the_median_interval_between_changes():
    times = [0.00, 0.01, 0.02, 0.10, 0.11, 0.20, 0.31, 0.40]
    values = [1, 1, 1, 2, 2, 3, 4, 5]

    assert median_change_interval_s(times, values) == pytest.approx(0.10)
    assert median_change_interval_s(times[:4], values[:4]) is None
