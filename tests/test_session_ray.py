"""A lab on Ray, on this machine: one local Ray cluster with three fake GPUs (Ray's resources)
and a fake NVML with three devices in every Ray worker; the workers run on the CPU while pinned
to a GPU. One cluster for the module (its start-up is the slow part).

Each GPU station is a Ray actor, a process of its own whose forkserver imports torch again
(seconds of CPU), so the module starts few: the recorded lab session is `exclusive` (one station
measures both variants, refreshing its idle baseline between them) and the lost-worker session
is the one where two stations measure at once. Their model is plain torch code (`factory:`, so
no station's forkserver imports transformers) that keeps a pace by sleeping
(tests/fakes/paced_model.py): the fake NVML's counter stretches every window to a second, which
a real model would spend burning the CPU."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import threading

import psutil
import pytest
from energy_console.core.cli.commands import main
from energy_console.core.scale.placement import RayCluster, dispatch_for
from energy_console.core.scale.ray_station import RAY_SLOT
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.runner import Runner
from energy_console.core.store.session_dir import read_runs
from energy_console.tui.app import EnergyConsoleApp
from energy_console.tui.screens.live import LiveScreen
from energy_console.tui.widgets.runs_table import RunsTable

from tests.fakes.paced_model import paced_factory_model
from tests.fakes.pynvml import FAKE_PYNVML_ENV
from tests.session_helpers import (
    FAST_PROTOCOL,
    read_events,
    run_cli_here,
    wait_for_event,
    write_profile,
)
from tests.spans import (
    baselines_marked_wrongly,
    gpu_spans,
    lanes_variants_and_baselines,
    overlapping,
)

# ray is imported where a test uses it, not at collection: the fast tier collects this module too
pytestmark = [pytest.mark.session,
              pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                 reason="ray is not installed: the `ray` extra (in `dev`) has it")]

TWO_RUNS_EACH = "inputs: {batch_sizes: [1], sequence_lengths: [8, 16]}"
SWEEP = f"""\
models: [demo/tiny-bert-random]
techniques: [baseline, dynamic-int8]
{TWO_RUNS_EACH}
"""
ON_RAY = dispatch_for(RayCluster("auto"))
PACE_MS = 20.0
LONGER_RUNS = """\
protocol:
  idle_seconds: 0.2
  warmup: 1
  min_window_s: 1.5
  repeats: 2
  sample_hz: 20
  threads: 1
"""


def test_a_session_without_a_cluster_to_join_fails_naming_the_fix(tmp_path, monkeypatch):
    """First in the module: no cluster runs yet (the fixture below starts one)."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    done = run_cli_here(str(write_profile(tmp_path, SWEEP)), "--ray", "auto",
                        "--session-dir", str(tmp_path / "s"), "--quiet")
    assert done.returncode == 1
    assert "cannot join the Ray cluster at 'auto'" in done.stderr and "ray start" in done.stderr
    assert json.loads((tmp_path / "s" / "session.json").read_text())["status"] == "failed"


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster: 3 GPUs (Ray's bookkeeping) lent to measuring, fake NVML behind."""
    import ray

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FAKE_PYNVML_ENV, "gpus:3")  # the Ray workers inherit it
        # Ray hands each task its GPU through CUDA_VISIBLE_DEVICES; the runs stay on the CPU
        patch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        ray.init(num_cpus=3, num_gpus=3, resources={RAY_SLOT: 3}, include_dashboard=False,
                 object_store_memory=80 * 1024 * 1024, log_to_driver=False)
        try:
            yield
        finally:
            ray.shutdown()


def _slots_in_use(seen: list, done: threading.Event) -> None:
    import ray

    while not done.wait(0.2):
        seen.append(3 - ray.available_resources().get(RAY_SLOT, 0))


def paced_sweep(folder) -> str:
    """SWEEP on a model whose measured forward pass sleeps out its pace (its windows do not
    burn the CPU that the stations' start-up needs), its code written into the profile's
    `folder`."""
    return SWEEP.replace("demo/tiny-bert-random", paced_factory_model(folder, PACE_MS))


@pytest.fixture(scope="module")
def lab_slots() -> list:
    """How many GPU slots were in use, sampled while lab_session ran."""
    return []


@pytest.fixture(scope="module")
def lab_session(cluster, lab_slots, tmp_path_factory):
    """Two variants of one run each, one variant at a time (`exclusive`: the head starts one
    station of the three it could), with an idle refresh shorter than a variant. (Batches of
    several runs: the lost-worker session.)"""
    folder = tmp_path_factory.mktemp("ray")
    one_run_each = paced_sweep(folder).replace(TWO_RUNS_EACH, "inputs: {batch_sizes: [1], "
                                       "sequence_lengths: [8]}")
    profile = load_profile(write_profile(folder, one_run_each + "exclusive: true\n",
                                         protocol=FAST_PROTOCOL + "  idle_refresh_s: 0.5\n"))
    done = threading.Event()
    watcher = threading.Thread(target=_slots_in_use, args=(lab_slots, done))
    watcher.start()
    try:
        return Runner(profile, folder / "session", dispatch=ON_RAY).run()
    finally:
        done.set()
        watcher.join()


def test_every_run_ends_once_on_a_gpu_of_the_cluster(lab_session):
    assert lab_session.status == "completed" and lab_session.finished == 2
    records = read_runs(lab_session.path)
    assert len(records) == len({r.run_id for r in records}) == 2
    assert {r.gpu_index for r in records} <= {0, 1, 2}
    assert all(r.node and r.gpu_name == "NVIDIA H100 80GB HBM3" and r.gpu_driver
               for r in records)
    for record in records:  # charged with its own GPU's counter (named by node and GPU)
        prefix = f"{record.node}/gpu{record.gpu_index}/"
        assert f"{prefix}nvml:{record.gpu_index}" in record.sensors
        assert all(s.startswith(prefix) for s in record.sensors)


def test_runs_on_one_gpu_never_overlap(lab_session):
    spans = gpu_spans(read_events(lab_session.path))
    assert sum(len(s) for s in spans.values()) == 2
    assert not overlapping(spans)


def test_the_nodes_files_come_back_into_the_one_session(lab_session):
    sampled = (lab_session.path / "samples.csv").read_text()
    for record in read_runs(lab_session.path):
        run_dir = lab_session.path / "runs" / record.run_id
        assert (run_dir / "latency.csv").exists() and (run_dir / "result.json").exists()
        assert (run_dir / "worker.log").exists()
        assert f"{record.node}/gpu{record.gpu_index}/nvml:{record.gpu_index}" in sampled


def test_the_merged_session_opens_in_report(lab_session, capsys):
    """`report` keeps nothing between calls: run in this process, it reads the session as a new
    process would (tests/test_cli.py starts the console script itself)."""
    capsys.readouterr()
    assert main(["report", str(lab_session.path), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    for record in read_runs(lab_session.path):
        assert record.run_id in out


async def test_the_merged_session_opens_in_attach(lab_session):
    app = EnergyConsoleApp(attach=lab_session.path, results_root=lab_session.path.parent)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = pilot.app.screen
        assert isinstance(screen, LiveScreen)
        for _ in range(100):
            if screen.snapshot is not None and screen.snapshot.runs:
                break
            await pilot.pause(0.05)
        rows = {k.value for k in screen.query_one(RunsTable).rows}
        assert rows == {r.run_id for r in read_runs(lab_session.path)}
        assert any("/gpu" in v.name for v in screen.snapshot.sensors)  # nodes' sparklines


def test_a_station_takes_its_idle_baseline_again_when_it_is_due(lab_session, lab_slots):
    """An idle refresh shorter than a variant: the station takes its baseline before each of its
    variants, named as its node's sensors are. One variant at a time: one station of three."""
    assert max(lab_slots) == 1
    events = read_events(lab_session.path)
    stations = lanes_variants_and_baselines(events)
    assert all(ran == taken for ran, taken in stations.values()), stations
    assert sum(ran for ran, _ in stations.values()) == 2
    for event in (e for e in events if e["kind"] == "idle_baseline"):
        prefix = f"{event['node']}/gpu{event['gpu_index']}/"
        assert f"{prefix}nvml:{event['gpu_index']}" in event["power_w"]
        assert all(name.startswith(prefix) for name in event["power_w"])
    assert baselines_marked_wrongly(events) == []


def _kill_ray_worker_of_first_run(session_dir, killed: dict) -> None:
    """When a run is timing, SIGKILL the Ray worker running its task (the worker's forkserver's
    parent), as a node or worker lost mid-run; `killed` gets the run, the nice values of its
    worker and station, or what went wrong."""
    try:
        started = wait_for_event(session_dir, lambda e: e["kind"] == "run_started")
        wait_for_event(session_dir, lambda e: e["kind"] == "phase" and e["phase"] == "repeat"
                       and e["run_id"] == started["run_id"])
        worker = psutil.Process(started["worker_pid"])
        ray_worker = worker.parent().parent()
        killed.update(run_id=started["run_id"], nice=(worker.nice(), ray_worker.nice()))
        ray_worker.send_signal(signal.SIGKILL)
    except Exception as exc:  # reported by the test, with the session's notices
        killed["error"] = exc


def test_a_lost_ray_worker_fails_its_run_the_rest_finish_and_resume_completes_it(
        cluster, tmp_path):
    """Also: the station and the worker it measures in run at the priority of the session's
    runner, not at the nice 15 Ray starts its workers at (their forkserver's imports and every
    window would yield the CPU to all else on the node)."""
    profile = load_profile(write_profile(tmp_path, paced_sweep(tmp_path), protocol=LONGER_RUNS))
    session = tmp_path / "session"
    killed: dict = {}
    killer = threading.Thread(target=_kill_ray_worker_of_first_run, args=(session, killed))
    killer.start()
    outcome = Runner(profile, session, dispatch=ON_RAY).run()
    killer.join(5)
    notices = [e.get("message") or e.get("reason") for e in read_events(session)
               if e["kind"] in ("notice", "run_failed")]
    assert "run_id" in killed, (killed, notices)
    run_id = killed["run_id"]
    assert killed["nice"] == (os.nice(0), os.nice(0))
    assert outcome.status == "completed" and (outcome.finished, outcome.failed) == (3, 1)
    (lost,) = [r for r in read_runs(session) if r.status == "failed"]
    assert lost.run_id == run_id and "Ray task was lost" in lost.reason
    assert lost.gpu_index is not None and lost.node  # where it was lost
    spans = gpu_spans(read_events(session))  # over two stations at least, one run per GPU
    assert len(spans) >= 2 and not overlapping(spans)

    done = {r.run_id for r in read_runs(session) if r.finished}
    resumed = Runner(profile, session, done=done, resume=True, dispatch=ON_RAY).run()
    assert (resumed.finished, resumed.failed) == (1, 0)
    finished = [r for r in read_runs(session) if r.finished]
    assert sorted(r.run_id for r in finished) == sorted({r.run_id for r in finished})
    assert len(finished) == 4
