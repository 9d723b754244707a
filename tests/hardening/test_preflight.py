"""Pre-flight through the real CLI: a profile that cannot run is refused before anything is
created or locked (exit 2, every problem named), instead of hours of runs failing or skipped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.session_helpers import ROOT, run_cli_here, write_profile

pytestmark = pytest.mark.session  # slow tier: real runner sessions, CLI processes, end-to-end UI

TINY = "inputs: {batch_sizes: [1], sequence_lengths: [16]}\n"


def refused(tmp_path: Path, body: str, *extra: str, device_line: str = "device: cpu\n"):
    """Run the CLI (in this process: pre-flight starts no runner) on a profile that pre-flight
    must refuse; nothing may appear under results/."""
    profile = tmp_path / "p.yaml"
    profile.write_text(f"name: p\n{device_line}{body}")
    results = tmp_path / "results"
    lock = tmp_path / "lock"
    started = time.monotonic()
    done = run_cli_here(str(profile), "--quiet", "--results-dir", str(results), *extra,
                        env={"ENERGY_CONSOLE_LOCK": str(lock)})
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "pre-flight found" in done.stderr and "nothing was started" in done.stderr
    assert "Traceback" not in done.stderr
    assert not results.exists(), list(results.rglob("*"))
    assert not lock.exists()  # the lock was never taken
    return done.stderr, time.monotonic() - started


def test_a_cuda_device_on_a_machine_without_one_is_refused_up_front(tmp_path):
    stderr, _ = refused(tmp_path, "models: [demo/tiny-bert-random]\ntechniques: [baseline]\n"
                        + TINY, device_line="device: cuda\n")
    if "torch sees no CUDA device" not in stderr:
        pytest.skip("this machine has a CUDA device")
    assert "device: cuda asked for" in stderr and "device: cpu" in stderr


def test_a_cuda_index_that_does_not_exist_is_refused_whatever_the_machine(tmp_path):
    body = "models: [demo/tiny-bert-random]\ntechniques: [baseline]\n" + TINY
    stderr, _ = refused(tmp_path, body, "--device", "cuda:99")
    assert "device: cuda:99" in stderr
    assert "does not exist" in stderr or "torch sees no CUDA device" in stderr


def test_a_device_override_that_is_not_a_device_is_refused(tmp_path):
    body = "models: [demo/tiny-bert-random]\ntechniques: [baseline]\n" + TINY
    stderr, seconds = refused(tmp_path, body, "--device", "gpu0")
    assert "'gpu0' is not a device" in stderr
    assert seconds < 60


def test_every_problem_is_named_at_once_local_model_dataset_technique(tmp_path):
    folder_without_config = tmp_path / "empty-model"
    folder_without_config.mkdir()
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("sentence,category\nhello,1\n")
    body = f"""\
models:
  - path: {tmp_path / 'no-such-model'}
    task: text-classification
  - path: {folder_without_config}
    task: text-classification
  - demo: demo/tiny-bert-random
    dataset: {bad_csv}
  - demo: demo/tiny-gpt2-random
    dataset: {tmp_path / 'missing.txt'}
techniques: [baseline, sparse-2:4]
{TINY}"""
    stderr, _ = refused(tmp_path, body)
    assert "5 problem(s)" in stderr, stderr
    assert f"models[0]: local model folder '{tmp_path / 'no-such-model'}' does not exist" in stderr
    assert "models[1]:" in stderr and "has no config.json" in stderr
    assert "models[2].dataset:" in stderr and "text, label" in stderr
    assert "models[3].dataset:" in stderr and "does not exist" in stderr
    assert "techniques[1]: sparse-2:4 runs on cuda only, not on cpu" in stderr


def test_a_local_folder_without_weights_or_task_is_refused(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert", "architectures": ["BertModel"]}')
    stderr, _ = refused(tmp_path, f"models:\n  - path: {model}\ntechniques: [baseline]\n" + TINY)
    assert "holds no weights" in stderr
    (model / "model.safetensors").write_bytes(b"x")
    stderr, _ = refused(tmp_path, f"models:\n  - path: {model}\ntechniques: [baseline]\n" + TINY)
    assert "cannot tell its task" in stderr and "add `task:`" in stderr
    (model / "config.json").write_text("{not json")
    stderr, _ = refused(tmp_path, f"models:\n  - path: {model}\ntechniques: [baseline]\n" + TINY)
    assert "config.json is not valid JSON" in stderr


def test_a_hub_id_missing_from_the_cache_is_refused_when_offline(tmp_path):
    if os.environ.get("HF_HUB_OFFLINE") not in ("1", "true", "True", "ON", "YES"):
        pytest.skip("the hub is reachable here: only it knows whether the id exists")
    body = ("models:\n  - hf: nobody-here/no-such-model-xyz\n    task: text-classification\n"
            "techniques: [baseline]\n" + TINY)
    stderr, _ = refused(tmp_path, body)
    assert "not in the local Hugging Face cache" in stderr and "hf download" in stderr


def test_a_session_prepared_by_a_view_is_told_why_it_did_not_start(tmp_path):
    """The console makes the session folder (profile.yaml, runner.log) and follows it: the
    refusal lands there as session_finished, so the live view says why."""
    from energy_console.core.store.session_dir import read_events

    session = tmp_path / "prepared"
    session.mkdir()
    profile = write_profile(session, "models: [demo/tiny-bert-random]\n"
                            "techniques: [sparse-2:4]\n" + TINY, name="profile")
    done = run_cli_here(str(profile), "--session-dir", str(session), "--quiet")
    assert done.returncode == 2, done.stderr
    finished = read_events(session)[-1]
    assert finished.KIND == "session_finished" and finished.status == "failed"
    assert "sparse-2:4 runs on cuda only" in finished.message


def test_a_valid_profile_passes_preflight_without_importing_torch(tmp_path):
    """Pre-flight of a cpu profile stays light: no torch in the process that runs it."""
    from energy_console.core.session.preflight import check
    from energy_console.core.session.profile_check import load_profile

    data = tmp_path / "d.csv"
    data.write_text("text,label\ngood day,positive\nbad day,negative\n")
    profile = write_profile(tmp_path, f"""\
models:
  - demo: demo/tiny-bert-random
    dataset: {data}
techniques: [baseline, dynamic-int8]
{TINY}""")
    code = ("import sys; from energy_console.core.session.preflight import check; "
            "from energy_console.core.session.profile_check import load_profile; "
            f"print(check(load_profile({str(profile)!r}))); print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.split() == ["[]", "False"], done.stderr
    assert check(load_profile(profile)) == []
