import subprocess
import sys
import time

import pytest
from energy_console.core.sensors import detect
from energy_console.core.sensors.estimate import IDLE_FRACTION, EstimatedCpuSensor


def test_the_estimate_is_labelled_as_such_and_uses_the_profiles_tdp():
    sensor = EstimatedCpuSensor(tdp_w=80)
    assert sensor.measured is False and sensor.method == "estimate"
    assert sensor.idle_w == pytest.approx(80 * IDLE_FRACTION)
    assert "TDP from profile" in sensor.detail


def test_estimated_power_rises_with_load_and_stays_within_the_model():
    sensor = EstimatedCpuSensor(tdp_w=100)
    spinners = [
        subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\n"
                          "while time.time() - t < 1.5: pass"])
        for _ in range(2)
    ]
    time.sleep(0.3)
    sensor.read()
    time.sleep(0.8)
    loaded = sensor.read().power_w
    for p in spinners:
        p.wait()
    assert 25.0 <= loaded <= 100.0
    assert loaded > 60.0  # two busy processes on this machine's cores


def test_without_a_cpu_counter_detect_falls_back_to_the_estimate_and_says_so(monkeypatch,
                                                                              tmp_path):
    monkeypatch.setenv("ENERGY_CONSOLE_POWERCAP_ROOT", str(tmp_path / "nothing"))
    detection = detect(cpu_tdp_w=50)
    estimates = [s for s in detection.sensors if s.method == "estimate"]
    assert len(estimates) == 1 and estimates[0].tdp_w == 50
    assert any("estimated" in notice for notice in detection.notices)
    assert {m.name for m in detection.missing} >= {"rapl", "nvml"}
