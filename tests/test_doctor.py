"""`energy-console doctor`: the checklist on a bare host, on a fake lab box, and its verdicts.

The CLI runs in a real process (the environment says which hardware it sees: tests/fakes/host.py);
the in-process tests put the fake pynvml in sys.modules and a fake powercap tree on disk.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from energy_console.core.cli import doctor, gpu_probe

import tests.fakes.pynvml as fake_nvml
from tests.fakes.host import lab_host_env
from tests.fakes.powercap import (
    REAL_MAX_ENERGY_RANGE_UJ,
    advancing_counters,
    build_powercap_tree,
)
from tests.fakes.pynvml import FakeGpu

pytestmark = pytest.mark.session  # slow tier: real runner sessions, CLI processes, end-to-end UI

ROOT = Path(__file__).resolve().parent.parent


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "energy_console", "doctor", *args], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=180)


def lines_of(output: str, topic: str) -> list[str]:
    return [line for line in output.splitlines() if line[7:].startswith(topic)]


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    fake_nvml.configure()
    return fake_nvml


@pytest.fixture
def places(tmp_path, monkeypatch):
    """A results dir and a lock of the test's own."""
    monkeypatch.setenv("ENERGY_CONSOLE_LOCK", str(tmp_path / "doctor.lock"))
    return tmp_path / "results"


# ------------------------------------------------------------------ through the real CLI
def test_doctor_here_reports_the_estimate_and_what_is_missing_with_fixes(tmp_path):
    """The bare host (no RAPL, no NVIDIA driver): nothing measured, so the exit status is 1."""
    result = run_cli(dict(os.environ), "--results-dir", str(tmp_path / "results"))

    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    (rapl,) = lines_of(out, "rapl")
    assert rapl.startswith("[warn]") and "no RAPL zones" in rapl
    assert "fix: sudo modprobe intel_rapl_msr" in out
    (nvml,) = lines_of(out, "nvml")
    assert "NVML library not found" in nvml
    assert "install the NVIDIA driver" in out
    (estimate,) = lines_of(out, "cpu-estimate")
    assert "ESTIMATE" in estimate and "labelled 'estimated'" in estimate
    assert lines_of(out, "results")[0].startswith("[ok]")
    assert "Verdict: this box cannot measure energy" in out


def test_doctor_on_a_lab_box_reports_measured_sensors_periods_and_cross_check(tmp_path):
    """RAPL counters advanced by a writer process at known power, two fake GPUs: exit 0."""
    root = tmp_path / "powercap"
    env = lab_host_env(os.environ, root, gpus=2)
    env["ENERGY_CONSOLE_LOCK"] = str(tmp_path / "doctor.lock")
    zones = {root / "intel-rapl:0": 35.0, root / "intel-rapl:0:1": 4.0}
    with advancing_counters(zones, REAL_MAX_ENERGY_RANGE_UJ):
        result = run_cli(env, "--results-dir", str(tmp_path / "results"))

    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    (package,) = lines_of(out, "rapl:package-0")
    assert package.startswith("[ok]") and "counter moved" in package
    watts = float(package.split(" W)")[0].rsplit("(", 1)[1])
    assert watts == pytest.approx(35.0, rel=0.1)  # the writer's power, through the real file
    for gpu in ("nvml:0", "nvml:1"):
        measured, agreement = lines_of(out, gpu)
        assert measured.startswith("[ok]"), measured
        # the fake's counter moves every 100 ms; the doctor polls it, so a loaded box reads ±10 %
        period_ms = float(re.search(r"updates every (\d+) ms \(measured\)", measured)[1])
        assert period_ms == pytest.approx(100, abs=10), measured
        assert agreement.startswith("[ok]") and "cross-check agrees" in agreement
        pct = float(agreement.split(": ")[-1].split(" %")[0])
        assert abs(pct) <= gpu_probe.CROSS_CHECK_BOUND_PCT  # polls on a loaded box come late
    assert "cpu-estimate" not in out  # RAPL replaces the estimate
    assert len(lines_of(out, "gpu 0")) == 2 and "no other process" in out
    assert "Verdict: this box can measure: rapl:package-0, rapl:dram-0, nvml:0, nvml:1" in out


# ------------------------------------------------------------------ in process, on the fakes
def test_a_counter_that_stands_still_is_a_failure(tmp_path, places):
    """A RAPL tree nobody advances: the counter exists but does not move, so no measurement."""
    build_powercap_tree(tmp_path / "powercap", sockets=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENERGY_CONSOLE_POWERCAP_ROOT", str(tmp_path / "powercap"))
        report = doctor.run_doctor(places, load_s=0.3, gpu_load=False)

    (check,) = [c for c in report.checks if c.topic == "rapl:package-0"]
    assert check.status == "fail" and "did not move" in check.summary
    assert report.moved == [] and report.exit_status == 1


def test_a_gpu_without_a_counter_reports_its_driver_samples_not_a_counter(fake, places):
    fake.configure(gpus=[FakeGpu(energy_counter=False, power_samples=True, power_w=90.0)])

    report = doctor.run_doctor(places, load_s=0.3, cross_check_s=0.3, gpu_load=False)

    (check,) = [c for c in report.checks if c.topic == "nvml:0"]
    assert check.status == "ok" and "energy of the driver's samples moved" in check.summary
    assert "counter" not in check.summary and report.moved == ["nvml:0"]


def test_gpu_state_and_other_processes_are_reported_with_fixes(fake, places):
    fake.configure(gpus=[FakeGpu(power_limit_w=250.0, default_power_limit_w=400.0,
                                 persistence_mode=fake.NVML_FEATURE_DISABLED,
                                 compute_processes=[(os.getpid(), 900), (4242, 2048)],
                                 throttle_mask=0x1 | 0x20)])

    report = doctor.run_doctor(places, load_s=0.3, cross_check_s=0.5, gpu_load=False)

    text = doctor.format_report(report)
    gpu = [c for c in report.checks if c.topic == "gpu 0"]
    limit, throttle, persistence, others = gpu
    assert limit.status == "warn" and "power limit 250 W (default 400 W)" in limit.summary
    assert "nvidia-smi -i 0 -pl 400" in limit.fix and "never" in limit.fix
    assert throttle.status == "warn" and "sw_thermal_slowdown" in throttle.summary
    assert persistence.status == "warn" and "nvidia-smi -pm 1" in persistence.fix
    assert others.status == "warn" and "pid 4242" in others.summary
    assert "2048 MiB" in others.summary and f"pid {os.getpid()}" not in others.summary
    assert "--device cuda:N" in others.fix
    # warnings do not stop a box from measuring
    assert report.moved == ["nvml:0"] and report.exit_status == 0, text
    assert fake.state.refcount == 0  # every nvmlInit was paired with a shutdown


def test_cross_check_agrees_on_a_steady_gpu_and_reports_disagreement(fake, monkeypatch):
    gpu = FakeGpu(power_w=200.0)
    fake.configure(gpus=[gpu])

    (agree,) = gpu_probe.cross_check([0], duration_s=0.8)
    assert agree.counter_j == pytest.approx(200.0 * agree.window_s, rel=0.05)
    assert agree.agrees()  # within CROSS_CHECK_BOUND_PCT: a loaded box delays the polls
    assert agree.power_source == "instantaneous power field"

    gpu.instant_power_field = False  # the driver's average, reading 30 % high
    monkeypatch.setattr(fake, "nvmlDeviceGetPowerUsage", lambda handle: int(260.0 * 1e3))
    (high,) = gpu_probe.cross_check([0], duration_s=0.8)
    assert high.power_source.startswith("power usage")
    assert high.disagreement_pct == pytest.approx(30.0, abs=3.0) and not high.agrees()


def test_a_gpu_without_a_counter_is_not_cross_checked(fake):
    fake.configure(gpus=[FakeGpu(energy_counter=False)])

    assert gpu_probe.cross_check([0], duration_s=0.3) == []


def test_unwritable_results_and_an_unsafe_lock_block_the_box(fake, tmp_path, monkeypatch):
    fake.configure(gpus=[FakeGpu()])
    results = tmp_path / "results"
    results.write_text("a file where the results dir should be")
    (tmp_path / "target").write_text("")
    (tmp_path / "doctor.lock").symlink_to(tmp_path / "target")

    report = doctor.run_doctor(results, load_s=0.3, cross_check_s=0.3, gpu_load=False,
                               lock_path=tmp_path / "doctor.lock")

    status = {c.topic: c for c in report.checks}
    assert status["results"].status == "fail" and "not a directory" in status["results"].summary
    assert status["lock"].status == "fail" and "symbolic link" in status["lock"].summary
    assert report.moved == ["nvml:0"] and report.exit_status == 1
    assert "cannot run here until these are fixed: results, lock" in doctor.format_report(report)


def test_a_held_lock_is_a_warning_not_a_failure(fake, places, tmp_path):
    from energy_console.core.session.machine_lock import MachineLock

    fake.configure(gpus=[FakeGpu()])
    held = MachineLock(tmp_path / "held.lock")
    held.acquire(tmp_path / "some-session")
    try:
        report = doctor.run_doctor(places, load_s=0.3, cross_check_s=0.3, gpu_load=False,
                                   lock_path=tmp_path / "held.lock")
    finally:
        held.release()

    (lock,) = [c for c in report.checks if c.topic == "lock"]
    assert lock.status == "warn" and "some-session" in lock.summary
    assert report.exit_status == 0


def test_governor_other_than_performance_is_a_warning_with_the_admin_fix(tmp_path):
    for cpu, governor in ((0, "powersave"), (1, "performance")):
        path = tmp_path / f"devices/system/cpu/cpu{cpu}/cpufreq"
        path.mkdir(parents=True)
        (path / "scaling_governor").write_text(governor + "\n")
    report = doctor.DoctorReport()

    doctor._governor_check(report, tmp_path)

    (check,) = report.checks
    assert check.status == "warn" and "powersave on 1 CPU(s)" in check.summary
    assert "cpupower frequency-set -g performance" in check.fix


def test_integrate_interpolates_the_window_edges():
    samples = [(0.0, 100.0), (1.0, 100.0), (2.0, 300.0)]

    assert gpu_probe.integrate(samples, 0.5, 1.5) == pytest.approx(50.0 + 0.5 * (100 + 200) / 2)
    assert gpu_probe.integrate(samples, 1.0, 1.0) == 0.0


def test_no_cuda_is_said_with_the_install_fix():
    """This machine's torch is a CPU build (the bare host hides CUDA in any case)."""
    load = gpu_probe.start_gpu_load(duration_s=5, start_timeout_s=120)

    assert load.devices == 0 and load.process is not None and load.process.poll() is not None
    assert "sees no CUDA device" in load.note
