"""The live and results screens against session directories written by the real SessionWriter."""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from pathlib import Path

import pytest
from energy_console.core.store import events as ev
from energy_console.core.store.file_tail import FileTail
from energy_console.core.store.follow import SessionReader
from energy_console.core.store.records import RunRecord
from energy_console.core.store.session_dir import SessionWriter, read_runs, write_json
from energy_console.tui.app import EnergyConsoleApp
from energy_console.tui.follower import SessionFollower
from energy_console.tui.screens.live import LiveScreen, current_line
from energy_console.tui.screens.results import ResultsScreen
from energy_console.tui.widgets.runs_table import RunsTable
from textual.widgets import DataTable, Sparkline

T0 = 1_700_000_000.0
SENSORS = [
    {"name": "cpu-estimate", "kind": "cpu", "measured": False, "method": "tdp", "detail": ""},
    {"name": "gpu0", "kind": "gpu", "measured": True, "method": "nvml", "detail": ""},
]


def _row(technique: str, energy_j: float, status: str = "finished") -> dict:
    return {
        "run_id": f"tiny-bert-random__{technique}__b1-s128", "model": "demo/tiny-bert-random",
        "task": "text-classification", "technique": technique, "device": "cpu",
        "batch_size": 1, "seq_len": 128, "resolution": None, "status": status,
        "energy_j_per_inference": energy_j if status == "finished" else None,
        "energy_j_per_inference_ci95": energy_j / 100 if status == "finished" else None,
        "avg_power_w": 20.0, "latency_ms_p50": 3.5, "size_bytes": 4_000_000,
        "energy_source": "estimated", "reason": "" if status == "finished" else "no CUDA",
    }


def write_session(path: Path, finished: bool = True, runner_pid: int = 0) -> Path:
    """A session as the runner writes it: two sensors, three runs (one skipped)."""
    writer = SessionWriter(path)
    write_json(path / "session.json", {"sensors": SENSORS, "runner_pid": runner_pid,
                                       "total_runs": 3, "status": "running"})
    writer.append_event(ev.SessionStarted(session_id=path.name, profile_name="t", total_runs=3,
                                          runner_pid=runner_pid, sensors=SENSORS,
                                          missing_sensors=[], t=T0))
    writer.append_event(ev.IdleBaseline(duration_s=1.0, power_w={"cpu-estimate": 5.0}, t=T0 + 1))
    samples = []
    for i in range(200):  # 10 s at 20 Hz; gpu0 reports a counter only
        t = T0 + i / 20
        samples.append((t, "cpu-estimate", 10.0 + i % 7, i * 0.5))
        samples.append((t, "gpu0", None, i * 2.0))
    writer.append_samples(samples)
    rows = [_row("baseline", 0.02), _row("dynamic-int8", 0.015), _row("fp16", 0, "skipped")]
    for index, row in enumerate(rows):
        writer.append_event(ev.RunStarted(run_id=row["run_id"], index=index, total=3,
                                          model=row["model"], technique=row["technique"],
                                          batch_size=1, seq_len=128, resolution=None,
                                          t=T0 + 2 + index))
        writer.append_event(ev.PhaseChanged(run_id=row["run_id"], phase="repeat", repeat=1,
                                            repeats=2, t=T0 + 2.5 + index))
        writer.record_run(RunRecord(**row))
        if row["status"] == "finished":
            writer.append_event(ev.RunFinished(run_id=row["run_id"], row=row, t=T0 + 3 + index))
        else:
            writer.append_event(ev.RunSkipped(run_id=row["run_id"], reason=row["reason"],
                                              t=T0 + 3 + index))
    if finished:
        writer.append_event(ev.SessionFinished(status="completed", finished=2, skipped=1,
                                               failed=0, t=T0 + 6))
    writer.close()
    return path


async def _live(pilot) -> LiveScreen:
    screen = pilot.app.screen
    assert isinstance(screen, LiveScreen)
    for _ in range(100):
        if screen.snapshot is not None and screen.snapshot.runs:
            break
        await pilot.pause(0.05)
    await pilot.pause()
    return screen


async def test_attach_on_a_finished_session_shows_every_run_of_runs_csv(tmp_path):
    session = write_session(tmp_path / "s")
    app = EnergyConsoleApp(attach=session, results_root=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _live(pilot)
        table = screen.query_one(RunsTable)
        assert {k.value for k in table.rows} == {r.run_id for r in read_runs(session)}
        assert screen.snapshot.status == "completed"
        assert "skipped tiny-bert-random__fp16__b1-s128: no CUDA" in screen.snapshot.log


async def test_live_view_shows_power_per_sensor_and_change_against_baseline(tmp_path):
    session = write_session(tmp_path / "s")
    app = EnergyConsoleApp(attach=session, results_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _live(pilot)
        sparks = list(screen.query(Sparkline))
        assert len(sparks) == 2 and all(len(s.data or []) > 100 for s in sparks)
        gpu = next(v for v in screen.snapshot.sensors if v.name == "gpu0")
        assert gpu.measured and gpu.current_w == pytest.approx(40.0)  # 2 J per 1/20 s
        table = screen.query_one(RunsTable)
        change = table.get_cell("tiny-bert-random__dynamic-int8__b1-s128", "energy_change")
        assert change.plain == "-25% (-26…-24)" and change.style == "green"


async def test_results_screen_sorts_by_any_column(tmp_path):
    session = write_session(tmp_path / "s")
    app = EnergyConsoleApp(attach=session, results_root=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await _live(pilot)
        await pilot.press("r")
        screen = app.screen
        assert isinstance(screen, ResultsScreen)
        table = screen.query_one(DataTable)
        screen.sort_by("energy_j_per_inference")
        order = [str(table.get_row_at(i)[table.get_column_index("technique")]) for i in range(3)]
        assert order == ["dynamic-int8", "baseline", "fp16"]  # empty cells sort last
        screen.sort_by("technique", reverse=True)
        assert str(table.get_row_at(0)[table.get_column_index("technique")]) == "fp16"


async def test_quit_on_a_running_session_asks_and_can_stop_it(tmp_path):
    session = write_session(tmp_path / "s", finished=False, runner_pid=_sleeper_pid())
    app = EnergyConsoleApp(attach=session, results_root=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _live(pilot)
        assert screen.session_running
        await pilot.press("q")
        await pilot.pause()
        assert app.is_running
        await pilot.press("s")
        await pilot.pause()
    assert (session / "control").read_text() == "stop\n"


async def test_stop_and_cancel_keys_write_control_commands(tmp_path):
    session = write_session(tmp_path / "s", finished=False, runner_pid=_sleeper_pid())
    with (session / "events.jsonl").open("a") as f:
        f.write(ev.RunStarted(run_id="r9", index=2, total=3, model="m", technique="bf16",
                              batch_size=1, seq_len=8, resolution=None, t=T0 + 9).to_json() + "\n")
    app = EnergyConsoleApp(attach=session, results_root=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await _live(pilot)
        await pilot.press("c", "x")
        await pilot.pause()
    assert (session / "control").read_text().splitlines() == ["cancel r9", "stop"]


_SLEEPERS: list[subprocess.Popen] = []


def _sleeper_pid() -> int:
    """A live process to stand in for a runner (ended when the test process exits)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    _SLEEPERS.append(process)
    return process.pid


@pytest.fixture(autouse=True)
def _end_sleepers():
    yield
    while _SLEEPERS:
        process = _SLEEPERS.pop()
        process.kill()
        process.wait()


def test_a_runner_that_died_reads_as_gone(tmp_path):
    pid = _sleeper_pid()
    session = write_session(tmp_path / "s", finished=False, runner_pid=pid)
    _end = _SLEEPERS.pop()
    _end.kill()
    _end.wait()
    reader = SessionReader(session)
    reader.read_some()
    assert reader.snapshot().status == "runner gone"


def test_tail_waits_for_a_partial_line(tmp_path):
    file = tmp_path / "f.txt"
    file.write_text("a\nb")
    tail = FileTail(file)
    assert tail.read_lines() == (["a"], False)
    with file.open("a") as f:
        f.write("c\n")
    assert tail.read_lines() == (["bc"], False)


def test_tail_reads_a_long_file_in_bounded_chunks(tmp_path):
    file = tmp_path / "f.txt"
    file.write_text("".join(f"{i}\n" for i in range(1000)))
    tail = FileTail(file)
    lines, more = tail.read_lines(max_bytes=100)
    assert more and len(lines) < 100
    while more:
        chunk, more = tail.read_lines(max_bytes=100)
        lines += chunk
    assert lines == [str(i) for i in range(1000)]


def test_eta_comes_from_the_mean_run_duration(tmp_path):
    session = write_session(tmp_path / "s", finished=False, runner_pid=_sleeper_pid())
    reader = SessionReader(session)
    reader.read_some()
    snap = reader.model.snapshot(now=T0 + 5.5, runner_alive=True)
    assert snap.ended_runs == 3 and snap.total_runs == 3 and snap.eta_s == pytest.approx(0.0)
    assert reader.model.run_durations_s == {"infer": [1.0, 1.0, 1.0]}


HEAVY = ("torch", "transformers", "pandas")
AFTER_FIRST_PAINT = ("yaml", "ruamel", "energy_console.core.session.profile_check",
                     "energy_console.core.session.plan", "energy_console.core.store.events",
                     "energy_console.core.store.records", "energy_console.tui.screens.dialogs")


@pytest.fixture(scope="module")
def loaded_by_the_app() -> list[str]:
    """The modules of HEAVY and AFTER_FIRST_PAINT that importing the app loads, in a fresh
    interpreter (one for both tests below: they read the same import)."""
    code = ("import sys, energy_console.tui.app; "
            f"print([m for m in {HEAVY + AFTER_FIRST_PAINT} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    return ast.literal_eval(out.stdout.strip())


def test_importing_the_app_does_not_import_torch_transformers_or_pandas(loaded_by_the_app):
    assert [m for m in loaded_by_the_app if m in HEAVY] == []


def test_importing_the_app_leaves_what_the_first_paint_does_not_need(loaded_by_the_app):
    """YAML, the profile checks, the dialogs and the session store's readers load when first
    used, after the first screen is painted (bench/bench_tui_startup.py times it)."""
    assert [m for m in loaded_by_the_app if m in AFTER_FIRST_PAINT] == []


def test_elapsed_time_of_a_finished_session_ends_at_its_last_event(tmp_path):
    session = write_session(tmp_path / "s")
    reader = SessionReader(session)
    reader.read_some()
    assert reader.snapshot().elapsed_s == pytest.approx(6.0)


def test_an_ended_session_is_handed_to_the_view_once(tmp_path):
    """The follower hands over a snapshot that differs from the last one only: a finished
    session's view is drawn once, not four times a second while it stays open."""
    session = write_session(tmp_path / "s")
    snapshots: list = []
    follower = SessionFollower(session, snapshots.append, interval_s=0.01)
    follower.start()
    try:
        time.sleep(0.3)  # some 30 polls
    finally:
        follower.stop()
        follower.join(10)
    assert len(snapshots) == 1 and snapshots[0].status == "completed"


def test_a_warning_names_its_run_in_the_log():
    from energy_console.core.store.session_model import SessionModel

    model = SessionModel(Path("."))
    model.add_event(ev.RunStarted(run_id="r1", index=0, total=1, model="demo/tiny-bert-random",
                                  technique="dynamic-int8", batch_size=1, seq_len=64,
                                  resolution=None))
    model.add_event(ev.Notice(level="warning", message="repeats disagree by 16%", run_id="r1"))
    model.add_event(ev.Notice(level="warning", message="no RAPL"))
    model.add_event(ev.Notice(level="error", message="lost", run_id="unknown-run"))
    assert list(model.log) == [
        "warning: tiny-bert-random · dynamic-int8 · b1-s64: repeats disagree by 16%",
        "warning: no RAPL", "error: unknown-run: lost"]


def test_the_live_view_shows_runs_in_progress_on_several_gpus(tmp_path):
    session = write_session(tmp_path / "s", finished=False, runner_pid=_sleeper_pid())
    with (session / "events.jsonl").open("a") as f:
        for index, gpu in ((1, 0), (2, 1)):
            f.write(ev.RunStarted(run_id=f"r{index}", index=index, total=3, model="m",
                                  technique="bf16", batch_size=1, seq_len=8, resolution=None,
                                  node="box", gpu_index=gpu).to_json() + "\n")
        f.write(ev.WorkerEnded(run_id="r1", node="box", gpu_index=0).to_json() + "\n")
        f.write(ev.RunFailed(run_id="r1", reason="lost").to_json() + "\n")
        f.write(ev.RunStarted(run_id="r3", index=0, total=3, model="m", technique="fp16",
                              batch_size=1, seq_len=8, resolution=None, node="box",
                              gpu_index=0).to_json() + "\n")
    reader = SessionReader(session)
    while reader.read_some():
        pass
    snapshot = reader.snapshot()
    assert [r.run_id for r in snapshot.running] == ["r2", "r3"]
    assert snapshot.current.run_id == "r3" and snapshot.current.where == "box/gpu0"
    line = current_line(snapshot)
    assert "on box/gpu0" in line and "+1 more in progress" in line
