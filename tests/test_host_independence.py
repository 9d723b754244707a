"""The suite does not depend on the machine: on a (fake) lab machine with RAPL and two NVIDIA GPUs,
the tests and every process they start still see a bare host (tests/fakes/host.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from energy_console.core.measure.sensors import detect

from tests.fakes.host import bare_host_env, lab_host_env
from tests.session_helpers import ROOT

pytestmark = pytest.mark.session  # slow tier: real runner sessions, CLI processes, end-to-end UI

DETECT = """\
import json, os
from energy_console.core.measure.sensors import detect
d = detect()
print(json.dumps({"sensors": [s.name for s in d.sensors],
                  "missing": {m.name: m.reason for m in d.missing},
                  "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES")}))
"""


def detect_in_a_child(env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-c", DETECT], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def assert_bare(found: dict) -> None:
    assert found["sensors"] == ["cpu-estimate"]
    assert found["missing"]["rapl"].startswith("no RAPL zones under")
    assert "NVML library not found" in found["missing"]["nvml"]
    assert found["cuda_visible"] == ""


def test_the_fake_lab_machine_offers_rapl_and_two_gpus(tmp_path):
    """The control: without the switch, the product sees the lab machine's hardware."""
    found = detect_in_a_child(lab_host_env(os.environ, tmp_path / "powercap"))
    assert {"rapl:package-0", "rapl:dram-0", "nvml:0", "nvml:1"} <= set(found["sensors"])
    assert "cpu-estimate" not in found["sensors"]


def test_the_switch_takes_rapl_nvml_and_cuda_away_from_a_lab_machine(tmp_path):
    lab = lab_host_env(os.environ, tmp_path / "powercap")
    assert_bare(detect_in_a_child(bare_host_env(lab, tmp_path / "empty")))


def test_this_process_and_its_children_see_a_bare_host():
    """What conftest's bare_host fixture gives every test, wherever the suite runs."""
    detection = detect()
    assert [s.name for s in detection.sensors] == ["cpu-estimate"]
    missing = {m.name: m.reason for m in detection.missing}
    assert "NVML library not found" in missing["nvml"]
    assert missing["rapl"].startswith("no RAPL zones under")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""
    assert_bare(detect_in_a_child(dict(os.environ)))


def test_the_suite_sees_a_bare_host_when_run_on_a_lab_machine(tmp_path):
    """The test above, run by a pytest that itself runs on the fake lab machine."""
    env = lab_host_env(os.environ, tmp_path / "powercap")
    node = f"{__file__}::test_this_process_and_its_children_see_a_bare_host"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-n", "0", node], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
