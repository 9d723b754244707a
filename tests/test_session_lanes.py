"""Per-GPU lanes on one box (--gpus): a fake NVML with GPUs, workers on the CPU.

One recorded session for the module, started as `energy-console run PROFILE --gpus all` in this
process on a fake lab box (RAPL counters and two GPUs): its workers fork from the test process's
forkserver, where a CLI process of its own would start one more that imports torch again. Its
model keeps a pace by sleeping (tests/fakes/paced_model.py): the fake NVML's counter stretches
every window to a second, which a real model would spend burning the CPU."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from energy_console.core.scale.placement import GpuLanes, dispatch_for
from energy_console.core.session.locks import SessionLocks
from energy_console.core.session.port import Dispatch
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.runner import Runner
from energy_console.core.session.worker_process import forkserver_context
from energy_console.core.store.session_dir import read_runs

from tests.fakes import pynvml as fake_nvml
from tests.fakes.host import POWERCAP_ROOT_ENV
from tests.fakes.paced_model import save_paced_model
from tests.fakes.powercap import build_powercap_tree
from tests.fakes.pynvml import FakeGpu
from tests.session_helpers import FAST_PROTOCOL, read_events, run_cli_here, write_profile
from tests.spans import (
    baselines_marked_wrongly,
    gpu_spans,
    lanes_variants_and_baselines,
    overlapping,
)

pytestmark = pytest.mark.session

PACE_MS = 20.0


def on_gpus(*gpus: int) -> Dispatch:
    return dispatch_for(GpuLanes(gpus))


def sweep(model: Path, techniques: str) -> str:
    return f"""\
models: [{{path: {model}, task: text-classification, trust_remote_code: true}}]
techniques: [{techniques}]
inputs: {{batch_sizes: [1], sequence_lengths: [8]}}
"""


@pytest.fixture(scope="module")
def paced_model(tmp_path_factory) -> Path:
    return save_paced_model(tmp_path_factory.mktemp("paced") / "paced", PACE_MS)


@pytest.fixture(scope="module")
def lanes_session(paced_model, tmp_path_factory):
    """Three variants of one run over the box's two GPUs, with an idle refresh shorter than a
    variant."""
    folder = tmp_path_factory.mktemp("lanes")
    profile = write_profile(folder, sweep(paced_model, "baseline, dynamic-int8, bf16"),
                            protocol=FAST_PROTOCOL + "  idle_refresh_s: 0.5\n")
    powercap = build_powercap_tree(folder / "powercap", sockets=1).root
    fake_nvml.configure(gpus=[FakeGpu(), FakeGpu()])
    # started (if not yet) outside `env`: the runner's side alone sees it
    forkserver_context(load_profile(profile))
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "pynvml", fake_nvml)
        done = run_cli_here(str(profile), "--gpus", "all", "--session-dir",
                            str(folder / "session"), "--quiet",
                            env={POWERCAP_ROOT_ENV: str(powercap),
                                 "HF_MODULES_CACHE": str(folder / "modules")})
    assert done.returncode == 0, done.stderr
    return folder / "session"


def test_every_run_ends_once_each_pinned_to_one_of_the_gpus(lanes_session):
    info = json.loads((lanes_session / "session.json").read_text())
    assert info["status"] == "completed" and info["spread"] == {"gpus": [0, 1]}
    records = read_runs(lanes_session)
    assert len(records) == 3 and all(r.finished for r in records)
    assert sorted(r.run_id for r in records) == sorted({r.run_id for r in records})
    assert {r.gpu_index for r in records} <= {0, 1}
    assert all(r.node and r.gpu_name == "NVIDIA H100 80GB HBM3" for r in records)
    # the GPU a run was pinned to is charged, and no other
    for record in records:
        assert [s for s in record.sensors if s.startswith("nvml")] == [f"nvml:{record.gpu_index}"]


def test_runs_on_one_gpu_never_overlap_and_the_gpus_work_at_once(lanes_session):
    spans = gpu_spans(read_events(lanes_session))
    assert sum(len(s) for s in spans.values()) == 3
    assert not overlapping(spans)
    assert len(spans) == 2  # both GPUs took runs


def test_cpu_energy_of_overlapping_runs_is_marked_shared(lanes_session):
    records = read_runs(lanes_session)
    starts = {e["run_id"]: e["t"] for e in read_events(lanes_session)
              if e["kind"] == "run_started"}
    assert len(starts) == 3
    shared = [r for r in records if r.cpu_energy_shared]
    assert shared, "three runs over two lanes overlap"
    assert all(any("shared" in w for w in r.warnings) for r in shared)


def test_each_gpu_lane_takes_its_idle_baseline_again_when_it_is_due(lanes_session):
    """`--gpus all` with an idle refresh shorter than a variant: every lane takes a baseline
    before each of its variants, of its own GPU and the box's CPU/DRAM, and says whether other
    lanes' runs overlapped it (their CPU load is in its CPU/DRAM share)."""
    events = read_events(lanes_session)
    lanes = lanes_variants_and_baselines(events)
    assert sum(ran for ran, _ in lanes.values()) == 3
    assert all(ran == taken for ran, taken in lanes.values()), lanes
    assert max(ran for ran, _ in lanes.values()) >= 2  # three variants over two lanes
    for event in (e for e in events if e["kind"] == "idle_baseline"):
        gpus = {name for name in event["power_w"] if name.startswith("nvml")}
        assert gpus == {f"nvml:{event['gpu_index']}"}
        assert any(name.startswith("rapl") for name in event["power_w"])
    assert baselines_marked_wrongly(events) == []


def test_a_session_on_a_gpu_in_use_is_refused_and_one_on_other_gpus_is_not(paced_model,
                                                                            tmp_path):
    profile = load_profile(write_profile(tmp_path, sweep(paced_model, "baseline")))
    held = SessionLocks(gpus=[1])
    held.acquire(tmp_path / "elsewhere")
    try:
        refused = Runner(profile, tmp_path / "refused", dispatch=on_gpus(0, 1)).run()
        assert refused.refused and "GPU 1" in refused.message
    finally:
        held.release()


def test_an_exclusive_profile_runs_one_run_at_a_time_over_the_gpus(paced_model, tmp_path):
    fake_nvml.configure(gpus=[FakeGpu(), FakeGpu()])
    profile = load_profile(write_profile(tmp_path, sweep(paced_model, "baseline, dynamic-int8")
                                         + "exclusive: true\n"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "pynvml", fake_nvml)
        patch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
        outcome = Runner(profile, tmp_path / "session", dispatch=on_gpus(0, 1)).run()
    assert outcome.finished == 2
    spans = sorted(span for runs in gpu_spans(read_events(outcome.path)).values()
                   for span in runs)
    assert len(spans) == 2 and spans[0][1] <= spans[1][0]  # one after the other, any GPU
    assert not any(r.cpu_energy_shared for r in read_runs(outcome.path))
    info = json.loads((outcome.path / "session.json").read_text())
    assert info["spread"] == {"gpus": [0, 1]}

