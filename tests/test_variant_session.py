"""One worker per model variant: real sessions, real worker processes, a real process death.

A variant (model × technique chain) is loaded and compressed once and each input size is a run of
its own; a worker that dies at one size fails that run alone and the variant's other sizes go on
in a fresh worker; compressed variants can be kept on disk between sessions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from energy_console.core.session.plan import expand
from energy_console.core.session.profile_check import load_profile
from energy_console.core.store.records import RUN_COLUMNS

from tests.fakes.crashing_model import save_crashing_model
from tests.session_helpers import ROOT, read_events, run_cli_here, write_profile

pytestmark = pytest.mark.session  # slow tier: real runner sessions


def rows_of(session: Path) -> tuple[list[str], dict[str, dict]]:
    with (session / "runs.csv").open() as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or ()), {r["run_id"]: r for r in reader}


def worker_pids(session: Path) -> dict[str, int]:
    return {e["run_id"]: e["worker_pid"] for e in read_events(session)
            if e["kind"] == "run_started"}


def result_of(session: Path, run_id: str) -> dict:
    return json.loads((session / "runs" / run_id / "result.json").read_text())


def test_a_sweep_keeps_its_runs_and_columns_and_measures_a_variant_in_one_worker(tmp_path):
    profile = write_profile(tmp_path, """\
models: [demo/tiny-bert-random]
techniques: [baseline, dynamic-int8]
inputs: {batch_sizes: [1], sequence_lengths: [16, 32]}
""")
    session = tmp_path / "session"
    done = run_cli_here(str(profile), "--quiet", "--session-dir", str(session))
    assert done.returncode == 0, done.stderr
    columns, rows = rows_of(session)
    assert columns == list(RUN_COLUMNS)
    assert set(rows) == {s.run_id for s in expand(load_profile(profile))}
    assert all(r["status"] == "finished" for r in rows.values())
    pids = worker_pids(session)
    baseline = [pids[f"tiny-bert-random__baseline__b1-s{n}"] for n in (16, 32)]
    int8 = [pids[f"tiny-bert-random__dynamic-int8__b1-s{n}"] for n in (16, 32)]
    assert baseline[0] == baseline[1] and int8[0] == int8[1] and baseline[0] != int8[0]
    second = result_of(session, "tiny-bert-random__dynamic-int8__b1-s32")
    assert second["variant"] == {"cache_hit": False, "first_in_worker": False}
    assert "worker_start_to_first_warmup" not in second["timings_s"]
    assert second["timings_s"]["run_start_to_first_warmup"] >= 0


def test_a_worker_killed_at_one_size_fails_that_run_and_the_others_finish_in_a_fresh_worker(
        tmp_path):
    """SIGKILL at 32 tokens, as the OOM killer sends it: b1-s32 fails, b2-s32 (no smaller) is
    skipped, b2-s16 is measured in a new worker."""
    model = save_crashing_model(tmp_path / "crashing", crash_at_seq_len=32)
    profile = write_profile(tmp_path, f"""\
models:
  - path: {model}
    task: text-classification
    trust_remote_code: true
techniques: [baseline]
inputs: {{batch_sizes: [1, 2], sequence_lengths: [16, 32]}}
""")
    session = tmp_path / "session"
    # in this process, as tests/test_precision_session.py runs its remote-code model: the workers
    # copy the model's code into their forkserver's module cache (HF_MODULES_CACHE as it started)
    done = run_cli_here(str(profile), "--quiet", "--session-dir", str(session))
    assert done.returncode == 1, done.stderr
    _, rows = rows_of(session)
    status = {run_id.rsplit("__", 1)[1]: (r["status"], r["reason"]) for run_id, r in rows.items()}
    assert status["b1-s16"][0] == "finished"
    assert status["b1-s32"][0] == "failed" and "SIGKILL" in status["b1-s32"][1]
    assert status["b2-s16"][0] == "finished"
    assert status["b2-s32"][0] == "skipped"
    assert "crashing__baseline__b1-s32" in status["b2-s32"][1]
    assert "ran out of memory" in status["b2-s32"][1]
    pids = worker_pids(session)
    first, crashed, fresh = (pids[f"crashing__baseline__{size}"]
                             for size in ("b1-s16", "b1-s32", "b2-s16"))
    assert first == crashed != fresh
    assert "crashing__baseline__b2-s32" not in pids  # never started


def test_a_second_session_with_the_variant_cache_does_not_compress_again(tmp_path, monkeypatch):
    profile = write_profile(tmp_path, """\
models: [demo/tiny-bert-random]
techniques: [dynamic-int8]
inputs: {batch_sizes: [1], sequence_lengths: [16, 32]}
""", protocol="protocol: {idle_seconds: 0, warmup: 1, min_window_s: 0.1, repeats: 2, threads: 1,"
              " variant_cache: user}\n")
    monkeypatch.setenv("ENERGY_CONSOLE_CACHE_DIR", str(tmp_path / "user-cache"))  # runner's side
    sessions = [tmp_path / "first", tmp_path / "second"]
    for session in sessions:
        done = run_cli_here(str(profile), "--quiet", "--session-dir", str(session))
        assert done.returncode == 0, done.stderr
    (_, first), (_, second) = rows_of(sessions[0]), rows_of(sessions[1])
    assert list(first) == list(second)
    for run_id in first:
        assert first[run_id]["variant_cache_hit"] == "False"
        assert second[run_id]["variant_cache_hit"] == "True"
        assert second[run_id]["size_bytes"] == first[run_id]["size_bytes"]
        timings = result_of(sessions[1], run_id)["timings_s"]
        assert timings["compress"] == 0.0 and timings["variant_cache_read"] > 0
    assert len(list((tmp_path / "user-cache" / "variants").glob("variant-*.pt"))) == 1


TRAINING_SWEEP = f"""\
models:
  - demo: demo/tiny-bert-random
    dataset: {ROOT / "data" / "sentiment-mini.csv"}
  - demo: demo/tiny-bert-random
    workload: train
    dataset: {ROOT / "data" / "sentiment-mini.csv"}
techniques: [baseline, {{finetune: {{steps: 4}}}}]
inputs: {{batch_sizes: [2], sequence_lengths: [16, 32]}}
"""
TRAINING_PROTOCOL = """\
protocol:
  idle_seconds: 0.2
  warmup: 1
  iterations: 3
  repeats: 2
  sample_hz: 20
  threads: 1
  variant_cache: session
"""


def test_a_variant_trains_once_and_every_size_carries_its_training_and_train_runs_work_alone(
        tmp_path):
    profile = write_profile(tmp_path, TRAINING_SWEEP, protocol=TRAINING_PROTOCOL)
    session = tmp_path / "session"
    done = run_cli_here(str(profile), "--quiet", "--session-dir", str(session))
    assert done.returncode == 0, done.stderr
    _, rows = rows_of(session)
    pids = worker_pids(session)
    tuned = [r for r in rows.values() if r["technique"] == "finetune-steps4"
             and r["workload"] == "infer"]
    assert [r["status"] for r in tuned] == ["finished", "finished"]
    assert len({pids[r["run_id"]] for r in tuned}) == 1  # trained once, in one worker
    assert tuned[0]["train_steps"] == tuned[1]["train_steps"] and int(tuned[0]["train_steps"]) > 0
    assert tuned[0]["train_energy_j"] == tuned[1]["train_energy_j"] != ""
    phases = [e for e in read_events(session) if e["kind"] == "phase" and e["phase"] == "train"]
    tuned_ids = {r["run_id"] for r in tuned}
    assert {e["run_id"] for e in phases} & tuned_ids == {tuned[0]["run_id"]}  # with the first
    for row in tuned:
        training = result_of(session, row["run_id"])["technique"]["training"]
        assert training["measured_with_run"] == tuned[0]["run_id"]
        assert row["variant_cache_hit"] == "False"
    cached = [p for p in (session / "cache" / "variants").iterdir()
              if p.suffix in (".pt", ".safetensors")]  # each with its digest
    assert [p.suffix for p in cached] == [".safetensors"]  # the baseline, as weights alone;
    # a variant that trains is never cached
    trained = [r for r in rows.values() if r["workload"] == "train"
               and r["technique"] == "baseline"]
    assert [r["status"] for r in trained] == ["finished", "finished"]
    assert len({pids[r["run_id"]] for r in trained}) == 2  # a worker per train run
