"""Real sessions: the real runner, real worker processes, real demo models, real files."""

from __future__ import annotations

import bisect
import csv
import itertools
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from energy_console.core.measure.sampler import DISPLAY_HZ
from energy_console.core.measure.sensors.estimate import IDLE_FRACTION
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.runner import Runner, SessionOutcome
from energy_console.core.store.follow import SessionReader, read_session

from tests.session_helpers import (
    TEST_CPU_TDP_W,
    read_events,
    run_cli_here,
    run_cli_here_while,
    start_cli_session,
    wait_for_event,
    wait_for_first_warmup,
    wait_gone,
    write_plain_torch_profile,
    write_profile,
)

# real runner sessions: the slow tier (pytest -m "not session" skips them)
pytestmark = pytest.mark.session

TINY_BERT = """\
models: [demo/tiny-bert-random]
techniques: [baseline, dynamic-int8]
inputs: {batch_sizes: [1], sequence_lengths: [16]}
"""


@dataclass(frozen=True)
class TinySession:
    outcome: SessionOutcome
    began: float  # wall clock (time.time) just before the runner started
    ended: float  # and just after it returned

    @property
    def path(self) -> Path:
        return self.outcome.path


@pytest.fixture(scope="module")
def tiny_session(tmp_path_factory) -> TinySession:
    folder = tmp_path_factory.mktemp("tiny")
    profile = load_profile(write_profile(folder, TINY_BERT))
    began = time.time()
    outcome = Runner(profile, folder / "session").run()
    return TinySession(outcome, began, time.time())


def rows_of(session_dir):
    with (session_dir / "runs.csv").open() as f:
        return {r["run_id"]: r for r in csv.DictReader(f)}


def test_a_session_leaves_a_complete_directory(tiny_session):
    path = tiny_session.path
    assert tiny_session.outcome.status == "completed" and tiny_session.outcome.finished == 2
    for name in ("profile.yaml", "session.json", "events.jsonl", "samples.csv", "runs.csv"):
        assert (path / name).is_file(), name
    for run_id in rows_of(path):
        for name in ("latency.csv", "result.json", "worker.log"):
            assert (path / "runs" / run_id / name).is_file(), (run_id, name)
    kinds = [e["kind"] for e in read_events(path)]
    assert kinds[0] == "session_started" and kinds[-1] == "session_finished"
    assert kinds.count("run_finished") == 2 and "idle_baseline" in kinds
    info = json.loads((path / "session.json").read_text())
    assert info["status"] == "completed" and info["versions"]["torch"]
    assert {m["name"] for m in info["missing_sensors"]} >= {"nvml", "rapl"}  # the bare host


def test_a_finished_session_leaves_a_summary_that_views_open_it_from(tiny_session):
    path = tiny_session.path
    assert (path / "summary.json").is_file()
    from energy_console.core.store.session_model import SessionModel
    from energy_console.core.store.summary import read_summary, restore

    summary = read_summary(path)  # it covers the files as they are, and folds back whole
    assert summary is not None and summary["run_durations_s"]
    assert restore(SessionModel(path), summary)
    from_files = SessionReader(path, use_summary=False)
    while from_files.read_some():
        pass
    from_files.finish()
    assert read_session(path) == from_files.snapshot()


def test_finished_runs_have_energy_latency_and_an_honest_energy_source(tiny_session):
    for row in rows_of(tiny_session.path).values():
        assert row["status"] == "finished"
        assert float(row["energy_j_per_inference"]) > 0
        assert float(row["latency_ms_p50"]) > 0
        assert float(row["avg_power_w"]) > 0
        assert float(row["throughput_per_s"]) > 0
        assert int(row["iterations"]) >= 1 and row["repeats"] == "2"
        assert row["energy_source"] == "estimated"  # the bare host has no counter
        assert "cpu-estimate" in row["sensors"]


def test_dynamic_int8_shrinks_the_linear_heavy_model(tiny_session):
    rows = rows_of(tiny_session.path)
    base = int(rows["tiny-bert-random__baseline__b1-s16"]["size_bytes"])
    int8 = int(rows["tiny-bert-random__dynamic-int8__b1-s16"]["size_bytes"])
    assert int8 < 0.7 * base


def test_latency_csv_holds_every_timed_iteration(tiny_session):
    run_id = "tiny-bert-random__baseline__b1-s16"
    row = rows_of(tiny_session.path)[run_id]
    lines = (tiny_session.path / "runs" / run_id / "latency.csv").read_text().splitlines()
    result = json.loads((tiny_session.path / "runs" / run_id / "result.json").read_text())
    assert lines[0] == "repeat,iteration,latency_ms"
    assert len(lines) - 1 == sum(r["inferences"] for r in result["repeats"])  # batch size 1
    assert int(row["iterations"]) >= 1


Series = list[tuple[float, float, float]]  # (t, watts, joules) of one sensor


def read_samples(session_dir: Path) -> tuple[list[str], dict[str, Series]]:
    """samples.csv: its header, and (t, watts, joules) rows per sensor in file order."""
    with (session_dir / "samples.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        series: dict[str, Series] = {}
        for row in reader:
            series.setdefault(row["sensor"], []).append(
                (float(row["t"]), float(row["watts"]), float(row["joules"])))
        return list(reader.fieldnames or []), series


def joules_at(series: Series, t: float) -> float:
    """Cumulative energy at t, linear between the two samples around it."""
    times = [s[0] for s in series]
    i = bisect.bisect_left(times, t)
    assert 0 < i < len(series), f"t={t} is outside the samples"
    (t0, _, j0), (t1, _, j1) = series[i - 1], series[i]
    return j0 + (j1 - j0) * (t - t0) / (t1 - t0)


def test_samples_csv_holds_each_sensors_cumulative_energy_over_the_session(tiny_session):
    header, series = read_samples(tiny_session.path)
    assert header == ["t", "sensor", "watts", "joules"]
    info = json.loads((tiny_session.path / "session.json").read_text())
    assert set(series) == {s["name"] for s in info["sensors"]} == {"cpu-estimate"}
    samples = series["cpu-estimate"]
    # the display rate for the session's seconds (half of it: a loaded machine skips ticks),
    # and every window edge
    assert len(samples) >= DISPLAY_HZ * (tiny_session.ended - tiny_session.began) / 2
    times = [t for t, _, _ in samples]
    assert times == sorted(times)
    assert tiny_session.began <= times[0] and times[-1] <= tiny_session.ended
    assert samples[0][2] == 0.0  # joules count from the session's start
    idle_w = IDLE_FRACTION * TEST_CPU_TDP_W
    for (t0, _, j0), (t1, w1, j1) in itertools.pairwise(samples):
        # the estimate's model, at the profile's TDP (with float rounding)
        assert idle_w <= w1 <= TEST_CPU_TDP_W * (1 + 1e-9)
        assert j1 >= j0
        # the estimate is a counter of CPU time: each row's watts is its interval's power
        assert j1 - j0 == pytest.approx(w1 * (t1 - t0), abs=0.01)


def test_energy_windows_match_the_samples_written(tiny_session):
    """The per-repeat energy equals the cumulative joules in samples.csv across the window."""
    run_id = "tiny-bert-random__baseline__b1-s16"
    result = json.loads((tiny_session.path / "runs" / run_id / "result.json").read_text())
    _, series = read_samples(tiny_session.path)
    starts = [e["t"] for e in read_events(tiny_session.path) if e["kind"] == "phase"
              and e["run_id"] == run_id and e["phase"] == "repeat"]
    assert len(starts) == len(result["repeats"]) == 2
    for start, repeat in zip(starts, result["repeats"], strict=True):
        assert repeat["duration_s"] > 0.15
        energy_j = repeat["energy_j"]["cpu-estimate"]
        from_samples = (joules_at(series["cpu-estimate"], start + repeat["duration_s"])
                        - joules_at(series["cpu-estimate"], start))
        assert energy_j == pytest.approx(from_samples, rel=0.01)
        power = energy_j / repeat["duration_s"]
        assert IDLE_FRACTION * TEST_CPU_TDP_W <= power <= TEST_CPU_TDP_W * (1 + 1e-9)
    assert result["timings_s"]["worker_start_to_first_warmup"] > 0
    assert result["torch_threads"] == 1  # protocol.threads reached the worker


def test_failures_are_recorded_with_their_reason_and_the_session_goes_on(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    broken = tmp_path / "broken-model"
    BertForSequenceClassification(BertConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=1,
        intermediate_size=16, max_position_embeddings=8)).save_pretrained(broken)
    profile = write_profile(tmp_path, f"""\
models:
  - hf: no-such-org/no-such-model
    task: text-classification
  - path: {broken}
  - path: {tmp_path / "missing-folder"}
    task: text-classification
  - demo/tiny-bert-random
techniques: [baseline]
inputs: {{batch_sizes: [1], sequence_lengths: [16]}}
""")
    # `energy-console run` refuses this profile in pre-flight (tests/hardening/test_preflight.py);
    # the runner itself must still record what fails only when a run starts (a folder removed
    # meanwhile, a hub that does not answer)
    outcome = Runner(load_profile(profile), tmp_path / "session").run()
    assert outcome.failed == 3 and outcome.finished == 1
    rows = rows_of(outcome.path)
    assert rows["no-such-model__baseline__b1-s16"]["status"] == "failed"
    assert "could not be loaded" in rows["no-such-model__baseline__b1-s16"]["reason"]
    # the forward pass itself raises: sequence 16 > 8 position embeddings
    assert rows["broken-model__baseline__b1-s16"]["status"] == "failed"
    assert "worker.log" in rows["broken-model__baseline__b1-s16"]["reason"] or \
        "Error" in rows["broken-model__baseline__b1-s16"]["reason"]
    assert "does not exist" in rows["missing-folder__baseline__b1-s16"]["reason"]
    assert rows["tiny-bert-random__baseline__b1-s16"]["status"] == "finished"


def quiet_run_here(profile: Path, session: Path, act):
    """`run PROFILE --quiet` in this process (no runner process of its own: what these tests prove
    lies between the runner and its workers or its files), `act` doing its part meanwhile."""
    return run_cli_here_while(act, session, str(profile), "--session-dir", str(session),
                              "--quiet")


def test_a_killed_worker_fails_its_run_and_the_next_run_still_happens(tmp_path):
    profile = write_profile(tmp_path, TINY_BERT)
    session = tmp_path / "session"

    def kill_the_first_worker():
        os.kill(wait_for_first_warmup(session)["worker_pid"], signal.SIGKILL)

    done, _ = quiet_run_here(profile, session, kill_the_first_worker)
    rows = rows_of(session)
    first, second = rows.values()
    assert first["status"] == "failed" and "SIGKILL" in first["reason"]
    assert second["status"] == "finished"
    assert done.returncode == 1


def test_no_worker_outlives_a_runner_killed_outright(tmp_path):
    profile = write_plain_torch_profile(tmp_path)
    session = tmp_path / "session"
    runner = start_cli_session(profile, session)
    started = wait_for_first_warmup(session)
    descendants = [p.pid for p in psutil.Process(runner.pid).children(recursive=True)]
    assert started["worker_pid"] in descendants
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=10)
    assert wait_gone(descendants, timeout_s=10) == []


def test_a_stop_request_ends_the_session_and_records_the_rest_as_skipped(tmp_path):
    from energy_console.core.store.control import send_control

    profile = write_profile(tmp_path, TINY_BERT)
    session = tmp_path / "session"

    def stop_at_the_first_warmup():
        wait_for_first_warmup(session)
        send_control(session, "stop")

    done, _ = quiet_run_here(profile, session, stop_at_the_first_warmup)
    assert done.returncode == 130, done.stderr
    rows = rows_of(session)
    assert [r["status"] for r in rows.values()] == ["skipped", "skipped"]
    assert "stopped" in next(iter(rows.values()))["reason"]
    assert read_events(session)[-1]["status"] == "stopped"


def test_resume_runs_only_what_a_stopped_session_did_not_finish(tmp_path):
    from energy_console.core.store.control import send_control

    profile = write_profile(tmp_path, TINY_BERT)
    session = tmp_path / "session"

    def stop_after_the_first_run():
        wait_for_event(session, lambda e: e["kind"] == "run_finished")
        send_control(session, "stop")

    quiet_run_here(profile, session, stop_after_the_first_run)
    first = rows_of(session)
    assert [r["status"] for r in first.values()] == ["finished", "skipped"]
    done = run_cli_here(str(profile), "--resume", str(session), "--quiet")
    assert done.returncode == 0, done.stderr
    again = rows_of(session)
    assert [r["status"] for r in again.values()] == ["finished", "finished"]
    # the run finished before the stop was kept, not measured again
    kept = "tiny-bert-random__baseline__b1-s16"
    assert again[kept] == first[kept]


def test_a_technique_that_cannot_apply_is_skipped_and_a_chain_is_one_run(tmp_path):
    profile = load_profile(write_profile(tmp_path, """\
models: [demo/tiny-bert-random]
techniques:
  - sparse-2:4
  - chain: [{magnitude-prune: {amount: 0.5}}, dynamic-int8]
inputs: {batch_sizes: [1], sequence_lengths: [16]}
"""))
    outcome = Runner(profile, tmp_path / "session").run()
    rows = rows_of(outcome.path)
    skipped = rows["tiny-bert-random__sparse-2-4__b1-s16"]
    assert skipped["status"] == "skipped" and "cuda" in skipped["reason"]
    chain = rows["tiny-bert-random__magnitude-prune-amount0.5+dynamic-int8__b1-s16"]
    assert chain["status"] == "finished"
    assert outcome.skipped == 1 and outcome.finished == 1 and outcome.failed == 0


def test_ctrl_c_stops_cleanly_and_records_every_run(tmp_path):
    profile = write_plain_torch_profile(tmp_path)
    session = tmp_path / "session"
    runner = start_cli_session(profile, session)
    try:
        started = wait_for_first_warmup(session)
        os.killpg(runner.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        runner.wait(timeout=60)
    finally:
        runner.kill()
    assert runner.returncode == 130
    rows = rows_of(session)
    assert [r["status"] for r in rows.values()] == ["skipped", "skipped"]
    assert read_events(session)[-1]["status"] == "stopped"
    assert wait_gone([started["worker_pid"]], timeout_s=5) == []


def test_workers_fork_with_the_preloaded_imports_frozen_out_of_the_collectors_sight(tmp_path):
    """torch and transformers, imported once by the forkserver, are ~350,000 objects that every
    full collection in a worker walked (0.4 s each, here: a stall if one fell in a timed
    window). The forkserver freezes them after its preload, so a worker's collector walks only
    what the worker made."""
    from energy_console.core.session.worker_process import forkserver_context

    from tests.session_helpers import send_gc_state

    context = forkserver_context(load_profile(write_profile(tmp_path, TINY_BERT)))
    ours, theirs = context.Pipe()
    worker = context.Process(target=send_gc_state, args=(theirs,))
    worker.start()
    frozen, walked = ours.recv()
    worker.join(10)
    assert frozen > 100_000 and walked < frozen // 10, (frozen, walked)
