"""RAPL through a fake powercap tree on disk (the code reads real files, nothing is mocked)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from energy_console.core.measure.sampler import Sampler
from energy_console.core.measure.sensors import detect, rapl

from tests.fakes.powercap import advancing_counters, build_powercap_tree

NOBODY_UID = 65534


@pytest.fixture
def powercap_env(monkeypatch):
    def point_at(root: Path) -> None:
        monkeypatch.setenv(rapl.POWERCAP_ROOT_ENV, str(root))

    return point_at


def test_two_sockets_report_package_and_dram_but_not_core(tmp_path, powercap_env):
    build_powercap_tree(tmp_path, sockets=2, dram=True, core=True)
    powercap_env(tmp_path)

    sensors, missing, notices = rapl.probe()

    assert [(s.name, s.kind) for s in sensors] == [
        ("rapl:package-0", "cpu"),
        ("rapl:package-1", "cpu"),
        ("rapl:dram-0", "dram"),
        ("rapl:dram-1", "dram"),
    ]
    assert all(s.measured and s.method == "counter" for s in sensors)
    assert missing == [] and notices == []


def test_psys_is_left_out_where_packages_exist(tmp_path, powercap_env):
    build_powercap_tree(tmp_path, sockets=1, psys=True)
    powercap_env(tmp_path)

    names = [s.name for s in rapl.probe()[0]]

    assert "rapl:psys" not in names
    assert names == ["rapl:package-0", "rapl:dram-0"]


def test_psys_is_used_where_there_is_no_package(tmp_path, powercap_env):
    build_powercap_tree(tmp_path, package=False, psys=True)
    powercap_env(tmp_path)

    sensors = rapl.probe()[0]

    assert [(s.name, s.kind) for s in sensors] == [("rapl:psys", "system")]


def test_amd_layout_is_found(tmp_path, powercap_env):
    build_powercap_tree(tmp_path, sockets=2, prefix="amd-rapl", package_name="package", dram=False)
    powercap_env(tmp_path)

    sensors = rapl.probe()[0]

    assert [s.name for s in sensors] == ["rapl:package-0", "rapl:package-1"]
    assert sensors[1].zone.path == tmp_path / "amd-rapl:1"


def test_counter_delta_is_reported_in_joules(tmp_path, powercap_env):
    tree = build_powercap_tree(tmp_path, sockets=1, start_uj=7_000_000)
    powercap_env(tmp_path)
    package = rapl.probe()[0][0]

    tree.set_energy_uj("intel-rapl:0", 7_000_000 + 2_500_000)

    assert package.read().energy_j == pytest.approx(2.5)


def test_a_closed_sensor_refuses_to_read(tmp_path, powercap_env):
    build_powercap_tree(tmp_path, sockets=1)
    powercap_env(tmp_path)
    package = rapl.probe()[0][0]

    package.close()

    with pytest.raises(ValueError, match="closed file"):
        package.read()


def test_wraps_are_unwrapped_across_many_reads(tmp_path, powercap_env):
    wrap_uj = 10_000_000
    tree = build_powercap_tree(tmp_path, sockets=1, max_energy_range_uj=wrap_uj, start_uj=9_000_000)
    powercap_env(tmp_path)
    package = rapl.probe()[0][0]
    total_uj = 9_000_000

    for _ in range(25):  # 25 × 3 J = 75 J: the 10 J counter wraps seven times
        total_uj += 3_000_000
        tree.set_energy_uj("intel-rapl:0", total_uj % wrap_uj)
        reading = package.read()

    assert reading.energy_j == pytest.approx(75.0)


def test_window_spanning_a_wrap_gets_the_energy_inside_it(tmp_path, powercap_env):
    wrap_uj = 10_000_000
    tree = build_powercap_tree(tmp_path, sockets=1, max_energy_range_uj=wrap_uj, start_uj=8_000_000)
    powercap_env(tmp_path)
    package = rapl.probe()[0][0]
    sampler = Sampler([package], sample_hz=20)
    tree.set_energy_uj("intel-rapl:0", 9_000_000)
    t0 = sampler.read_now()[0].t
    start = sampler.energy_at(t0)

    tree.set_energy_uj("intel-rapl:0", 500_000)  # 9 J, wraps at 10 J, then 0.5 J: 1.5 J
    t1 = sampler.read_now()[0].t

    assert sampler.window(start, t0, t1)["rapl:package-0"].energy_j == pytest.approx(1.5)


def _probe_result() -> dict:
    sensors, missing, notices = rapl.probe()
    return {
        "sensors": [s.name for s in sensors],
        "missing": [m.__dict__ for m in missing],
        "notices": notices,
    }


def _probe_as_nobody() -> dict:
    """rapl.probe() in a forked child that dropped root, so the kernel's permission check applies.

    Forked rather than spawned: `nobody` may not be allowed to execute this interpreter.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY_UID)
            os.setuid(NOBODY_UID)
            os.write(write_end, json.dumps(_probe_result()).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        output = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the unprivileged probe failed"
    return json.loads(output)


@pytest.fixture
def world_readable_dir():
    """A directory another user can enter (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="energy-console-powercap-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_unreadable_energy_uj_is_a_missing_sensor_with_the_fix(world_readable_dir, powercap_env):
    """A real PermissionError: root ignores file modes, so as root the probe runs as `nobody`."""
    tree = build_powercap_tree(world_readable_dir / "powercap", sockets=2)
    for path in tree.energy_files():
        path.chmod(0o000)
    powercap_env(tree.root)

    result = _probe_as_nobody() if os.geteuid() == 0 else _probe_result()

    assert result["sensors"] == []
    (missing,) = result["missing"]
    assert "permission denied" in missing["reason"]
    assert f"sudo chmod a+r {tree.root}/intel-rapl:0/energy_uj" in missing["fix"]
    assert "udev" in missing["fix"]
    assert "falls back to the utilisation estimate" in result["notices"][0]


def test_no_powercap_tree_says_where_it_looked(tmp_path, powercap_env):
    powercap_env(tmp_path / "absent")

    sensors, missing, _ = rapl.probe()

    assert sensors == []
    assert str(tmp_path / "absent") in missing[0].reason
    assert "modprobe" in missing[0].fix


def test_readable_rapl_replaces_the_cpu_estimate(tmp_path, powercap_env):
    build_powercap_tree(tmp_path, sockets=1)
    powercap_env(tmp_path)

    detection = detect()

    assert all(s.measured for s in detection.sensors if s.kind == "cpu")
    assert "rapl:package-0" in [s.name for s in detection.sensors]
    for sensor in detection.sensors:
        sensor.close()


@pytest.mark.session  # slow tier
def test_sampler_reports_the_power_another_process_draws_within_2_percent(tmp_path, powercap_env):
    wrap_uj = 30_000_000  # 45 W wraps it every 0.67 s: several wraps in the window
    tree = build_powercap_tree(
        tmp_path, sockets=2, max_energy_range_uj=wrap_uj, start_uj=wrap_uj - 1_000_000
    )
    powercap_env(tmp_path)
    power_w = {"intel-rapl:0": 45.0, "intel-rapl:0:1": 6.0, "intel-rapl:1": 30.0}
    with advancing_counters({tree.zone(z): w for z, w in power_w.items()}, wrap_uj):
        sampler = Sampler(rapl.probe()[0], sample_hz=20)
        sampler.start()
        time.sleep(0.2)
        t0 = sampler.read_now()[0].t
        start = sampler.energy_at(t0)
        time.sleep(2.0)
        t1 = sampler.read_now()[0].t
        windows = sampler.window(start, t0, t1)
        sampler.stop()

    assert windows["rapl:package-0"].avg_power_w == pytest.approx(45.0, rel=0.02)
    assert windows["rapl:dram-0"].avg_power_w == pytest.approx(6.0, rel=0.02)
    assert windows["rapl:package-1"].avg_power_w == pytest.approx(30.0, rel=0.02)
    assert windows["rapl:dram-1"].energy_j == 0.0
