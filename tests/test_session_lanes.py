"""Per-GPU lanes on one box (--gpus): a fake NVML with three GPUs, workers on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from energy_console.core.scale.placement import GpuLanes, dispatch_for
from energy_console.core.session.locks import SessionLocks
from energy_console.core.session.port import Dispatch
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.runner import Runner
from energy_console.core.store.session_dir import read_runs

from tests.fakes import pynvml as fake_nvml
from tests.fakes.host import lab_host_env
from tests.fakes.pynvml import FakeGpu
from tests.session_helpers import FAST_PROTOCOL, ROOT, cli_run_command, read_events, write_profile
from tests.spans import (
    baselines_marked_wrongly,
    gpu_spans,
    lanes_variants_and_baselines,
    overlapping,
)

pytestmark = pytest.mark.session

SWEEP = """\
models: [demo/tiny-bert-random]
techniques: [baseline, dynamic-int8]
inputs: {batch_sizes: [1], sequence_lengths: [8, 16]}
"""


def on_gpus(*gpus: int) -> Dispatch:
    return dispatch_for(GpuLanes(gpus))


@pytest.fixture(scope="module")
def lanes_session(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lanes")
    fake_nvml.configure(gpus=[FakeGpu(power_w=50.0 + 10 * i) for i in range(3)])
    profile = load_profile(write_profile(folder, SWEEP))
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "pynvml", fake_nvml)
        return Runner(profile, folder / "session", dispatch=on_gpus(0, 1, 2)).run()


def test_every_run_ends_once_each_pinned_to_one_of_the_gpus(lanes_session):
    assert lanes_session.status == "completed" and lanes_session.finished == 4
    records = read_runs(lanes_session.path)
    assert sorted(r.run_id for r in records) == sorted({r.run_id for r in records})
    assert {r.gpu_index for r in records} <= {0, 1, 2}
    assert all(r.node and r.gpu_name == "NVIDIA H100 80GB HBM3" for r in records)
    # the GPU a run was pinned to is charged, and no other
    for record in records:
        assert [s for s in record.sensors if s.startswith("nvml")] == [f"nvml:{record.gpu_index}"]


def test_runs_on_one_gpu_never_overlap_and_the_gpus_work_at_once(lanes_session):
    spans = gpu_spans(read_events(lanes_session.path))
    assert sum(len(s) for s in spans.values()) == 4
    assert not overlapping(spans)
    assert len(spans) >= 2  # more than one GPU took runs


def test_cpu_energy_of_overlapping_runs_is_marked_shared(lanes_session):
    records = read_runs(lanes_session.path)
    starts = {e["run_id"]: e["t"] for e in read_events(lanes_session.path)
              if e["kind"] == "run_started"}
    assert len(starts) == 4
    shared = [r for r in records if r.cpu_energy_shared]
    assert shared, "four runs over three lanes overlap"
    assert all(any("shared" in w for w in r.warnings) for r in shared)


def test_a_session_on_a_gpu_in_use_is_refused_and_one_on_other_gpus_is_not(tmp_path):
    profile = load_profile(write_profile(tmp_path, SWEEP))
    held = SessionLocks(gpus=[1])
    held.acquire(tmp_path / "elsewhere")
    try:
        refused = Runner(profile, tmp_path / "refused", dispatch=on_gpus(0, 1)).run()
        assert refused.refused and "GPU 1" in refused.message
    finally:
        held.release()


def test_an_exclusive_profile_runs_one_run_at_a_time_over_the_gpus(tmp_path):
    fake_nvml.configure(gpus=[FakeGpu(), FakeGpu()])
    profile = load_profile(write_profile(tmp_path, SWEEP.replace("[8, 16]", "[8]")
                                         + "exclusive: true\n"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "pynvml", fake_nvml)
        outcome = Runner(profile, tmp_path / "session", dispatch=on_gpus(0, 1)).run()
    assert outcome.finished == 2
    spans = sorted(span for runs in gpu_spans(read_events(outcome.path)).values()
                   for span in runs)
    assert len(spans) == 2 and spans[0][1] <= spans[1][0]  # one after the other, any GPU
    assert not any(r.cpu_energy_shared for r in read_runs(outcome.path))
    info = json.loads((outcome.path / "session.json").read_text())
    assert info["spread"] == {"gpus": [0, 1]}


def test_each_gpu_lane_takes_its_idle_baseline_again_when_it_is_due(tmp_path):
    """`--gpus all` with an idle refresh shorter than a variant: every lane takes a baseline
    before each of its variants, of its own GPU and the box's CPU/DRAM, and says whether other
    lanes' runs overlapped it (their CPU load is in its CPU/DRAM share)."""
    sweep = SWEEP.replace("[baseline, dynamic-int8]", "[baseline, dynamic-int8, bf16]").replace(
        "[8, 16]", "[8]")
    profile = write_profile(tmp_path, sweep, protocol=FAST_PROTOCOL + "  idle_refresh_s: 0.5\n")
    done = subprocess.run(
        cli_run_command(str(profile), "--gpus", "all", "--session-dir", str(tmp_path / "s"),
                        "--quiet"),
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=lab_host_env(os.environ, tmp_path / "powercap", gpus=2))
    assert done.returncode == 0, done.stderr
    events = read_events(tmp_path / "s")
    lanes = lanes_variants_and_baselines(events)
    assert sum(ran for ran, _ in lanes.values()) == 3
    assert all(ran == taken for ran, taken in lanes.values()), lanes
    assert max(ran for ran, _ in lanes.values()) >= 2  # three variants over two lanes
    for event in (e for e in events if e["kind"] == "idle_baseline"):
        gpus = {name for name in event["power_w"] if name.startswith("nvml")}
        assert gpus == {f"nvml:{event['gpu_index']}"}
        assert any(name.startswith("rapl") for name in event["power_w"])
    assert baselines_marked_wrongly(events) == []
