"""A real session with a fake NVML (tests/fakes/pynvml): GPU sensors, snapshots, attribution."""

from __future__ import annotations

import csv
import json
import sys

import pytest
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.runner import Runner

from tests.fakes import pynvml as fake_nvml
from tests.fakes.pynvml import FakeGpu
from tests.session_helpers import TEST_CPU_TDP_W, write_profile

# real runner sessions: the slow tier (pytest -m "not session" skips them)
pytestmark = pytest.mark.session


@pytest.fixture(scope="module")
def gpu_box_session(tmp_path_factory):
    """A CPU run on a machine with two (fake) GPUs: they idle while the CPU works."""
    folder = tmp_path_factory.mktemp("gpu")
    fake_nvml.configure(gpus=[FakeGpu(power_w=60.0), FakeGpu(power_w=70.0, throttle_mask=0x4)])
    profile = load_profile(write_profile(folder, """\
models: [demo/tiny-bert-random]
techniques: [baseline]
inputs: {batch_sizes: [1], sequence_lengths: [16]}
"""))
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "pynvml", fake_nvml)
        return Runner(profile, folder / "session").run()


def test_every_gpu_is_sampled_and_recorded(gpu_box_session):
    info = json.loads((gpu_box_session.path / "session.json").read_text())
    names = {s["name"] for s in info["sensors"]}
    assert {"nvml:0", "nvml:1"} <= names
    assert info["idle_power_w"]["nvml:0"] == pytest.approx(60.0, rel=0.05)
    sampled = {row["sensor"] for row in csv.DictReader((gpu_box_session.path /
                                                         "samples.csv").open())}
    assert {"nvml:0", "nvml:1"} <= sampled


def test_a_cpu_run_is_not_charged_with_idle_gpus(gpu_box_session):
    (row,) = csv.DictReader((gpu_box_session.path / "runs.csv").open())
    assert row["status"] == "finished"
    assert "nvml" not in row["sensors"]
    # the estimate alone; no GPU's 60-70 W
    assert float(row["avg_power_w"]) <= TEST_CPU_TDP_W * (1 + 1e-6)


def test_each_run_records_its_gpus_at_start_and_end(gpu_box_session):
    (row,) = csv.DictReader((gpu_box_session.path / "runs.csv").open())
    result = json.loads((gpu_box_session.path / "runs" / row["run_id"] /
                         "result.json").read_text())
    gpus = result["gpus"]
    assert [g["name"] for g in gpus["start"]] == ["NVIDIA H100 80GB HBM3"] * 2
    assert gpus["start"][0]["power_limit_w"] == pytest.approx(700.0)
    assert gpus["end"][1]["temperature_c"] == 41
    assert gpus["throttle_reasons_seen"]  # the fake reports gpu_idle and a second reason
