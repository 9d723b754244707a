"""Resume and the lock: a resume never writes into a session another runner is measuring, never
swaps the profile a session was measured with unless asked, and a refused run leaves nothing
behind (no empty "failed" session that `report` and `attach` would take for the newest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.runner import Runner
from energy_console.core.store.control import send_control

from tests.session_helpers import (
    ROOT,
    read_events,
    run_cli_here,
    wait_for_event,
    wait_for_first_warmup,
    write_plain_torch_profile,
    write_profile,
)

pytestmark = pytest.mark.session  # slow tier: real runner sessions, CLI processes, end-to-end UI

SLOW = """\
models: [demo/tiny-bert-random]
techniques: [baseline, dynamic-int8, bf16]
inputs: {batch_sizes: [1], sequence_lengths: [16]}
"""
PROTOCOL = """\
protocol:
  idle_seconds: 0.3
  warmup: 1
  min_window_s: 1.5
  repeats: 2
  sample_hz: 20
  threads: 1
"""
OTHER = """\
models: [demo/tiny-gpt2-random]
techniques: [baseline]
inputs: {batch_sizes: [2], sequence_lengths: [16]}
"""


def cli(tmp_path: Path, *args: str, lock: Path | None = None, wait: bool = True):
    """`run ARGS --quiet` with the test's lock file: to its end in this process, or (not `wait`)
    started in a process of its own that runs while the test goes on."""
    lock_env = {"ENERGY_CONSOLE_LOCK": str(lock or tmp_path / "lock")}
    if wait:
        return run_cli_here(*args, "--quiet", env=lock_env)
    return subprocess.Popen([sys.executable, "-m", "energy_console.core.cli", "run", *args,
                             "--quiet"], cwd=ROOT, env=dict(os.environ, **lock_env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def files_of(session: Path) -> dict[str, bytes]:
    names = ("profile.yaml", "runs.csv", "session.json")
    return {n: (session / n).read_bytes() for n in names if (session / n).exists()}


def test_a_running_session_is_never_written_by_a_resume_or_a_second_run(tmp_path):
    profile = write_plain_torch_profile(tmp_path, "[baseline, dynamic-int8, bf16]",
                                        protocol=PROTOCOL)
    results = tmp_path / "results"
    session = results / "first"
    first = cli(tmp_path, str(profile), "--session-dir", str(session), wait=False)
    try:
        wait_for_first_warmup(session)
        profile_before = (session / "profile.yaml").read_bytes()

        # same profile, same lock: the lock refuses before anything is written
        same = cli(tmp_path, str(profile), "--resume", str(session))
        assert same.returncode == 1, same.stderr
        assert "nothing was run" in same.stderr and "another session is measuring" in same.stderr
        assert str(session) in same.stderr  # names the session holding the machine

        # another lock file (ENERGY_CONSOLE_LOCK differs): the live runner is still seen
        other_lock = cli(tmp_path, str(profile), "--resume", str(session),
                         lock=tmp_path / "other-lock")
        assert other_lock.returncode == 1, other_lock.stderr
        assert "still being measured by runner" in other_lock.stderr

        # an unrelated profile: refused for the difference, naming the fields
        unrelated = write_profile(tmp_path, OTHER, name="other", protocol=PROTOCOL)
        changed = cli(tmp_path, str(unrelated), "--resume", str(session))
        assert changed.returncode == 2, changed.stderr
        for field in ("name:", "models:", "techniques:", "inputs:"):
            assert f"\n  {field}" in changed.stderr, (field, changed.stderr)
        assert "--resume-with-changes" in changed.stderr

        # a second session while the machine is busy: refused, and no folder left behind
        second = cli(tmp_path, str(profile), "--results-dir", str(results))
        assert second.returncode == 1, second.stderr
        assert sorted(p.name for p in results.iterdir()) == ["first"]
        # so does a Runner started by other code (the console's, a notebook's): it ends at once,
        # says why, and leaves no folder that `report` and `attach` would take for the newest
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("ENERGY_CONSOLE_LOCK", str(tmp_path / "lock"))
            runner = Runner(load_profile(profile), results / "second").run()
        assert runner.refused and runner.status == "failed" and runner.finished == 0
        assert str(session) in runner.message
        assert sorted(p.name for p in results.iterdir()) == ["first"]

        assert (session / "profile.yaml").read_bytes() == profile_before
        assert not [e for e in read_events(session) if e["kind"] == "session_finished"]
        # the run measured meanwhile ends as any other; then the rest need not be measured
        wait_for_event(session, lambda e: e["kind"] == "run_finished")
        send_control(session, "stop")
        first.wait(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 130, first.stderr.read()
    finished = [e for e in read_events(session) if e["kind"] == "session_finished"]
    assert len(finished) == 1 and finished[0]["status"] == "stopped"
    assert finished[0]["message"] == "stopped on request"
    assert finished[0]["finished"] >= 1 and finished[0]["failed"] == 0
    assert finished[0]["finished"] + finished[0]["skipped"] == 3


def test_a_resume_with_another_profile_is_refused_unless_asked_and_then_keeps_both(tmp_path):
    quick = SLOW.replace("[baseline, dynamic-int8, bf16]", "[baseline]")
    profile = write_profile(tmp_path, quick, name="q")
    session = tmp_path / "session"
    assert cli(tmp_path, str(profile), "--session-dir", str(session)).returncode == 0
    before = files_of(session)

    more = write_profile(tmp_path, quick.replace("[baseline]", "[baseline, dynamic-int8]"),
                         name="q")
    refused = cli(tmp_path, str(more), "--resume", str(session))
    assert refused.returncode == 2
    assert 'techniques: ["baseline"] -> ["baseline", "dynamic-int8"]' in refused.stderr
    assert files_of(session) == before  # untouched

    device = cli(tmp_path, str(profile), "--resume", str(session), "--device", "auto")
    assert device.returncode == 2 and 'device: "cpu" -> "auto"' in device.stderr

    lone = cli(tmp_path, str(more), "--resume-with-changes")
    assert lone.returncode == 2 and "--resume SESSION_DIR" in lone.stderr

    allowed = cli(tmp_path, str(more), "--resume", str(session), "--resume-with-changes")
    assert allowed.returncode == 0, allowed.stderr
    kept = session / "profile.before-resume-1.yaml"
    assert kept.read_bytes() == before["profile.yaml"]
    assert yaml.safe_load((session / "profile.yaml").read_text())["techniques"] == [
        "baseline", "dynamic-int8"]
    notices = [e["message"] for e in read_events(session) if e["kind"] == "notice"]
    assert any("resumed with a changed profile (techniques:" in n for n in notices)
    # the run finished before is kept, the new technique measured
    rows = (session / "runs.csv").read_text()
    assert "tiny-bert-random__baseline__b1-s16" in rows and "dynamic-int8" in rows

    # the same profile resumes without a word, and leaves profile.yaml byte for byte
    current = (session / "profile.yaml").read_bytes()
    again = cli(tmp_path, str(more), "--resume", str(session))
    assert again.returncode == 0, again.stderr
    assert (session / "profile.yaml").read_bytes() == current
    assert not (session / "profile.before-resume-2.yaml").exists()


def test_relative_model_folders_that_now_point_elsewhere_are_a_change(tmp_path):
    """Same text, other folder: `path: model` read from another profile's folder."""
    from energy_console.core.session.preflight import resume_differences

    from tests.hardening.test_lying_models import tiny_bert

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        tiny_bert(tmp_path / name / "model")
    body = "models:\n  - path: model\ntechniques: [baseline]\n" \
        "inputs: {batch_sizes: [1], sequence_lengths: [16]}\n"
    session = tmp_path / "session"
    assert cli(tmp_path, str(write_profile(tmp_path / "a", body)),
               "--session-dir", str(session)).returncode == 0
    moved = load_profile(write_profile(tmp_path / "b", body))
    changes = resume_differences(session, moved, None)
    assert len(changes) == 1 and changes[0].startswith("model folders:"), changes
    assert resume_differences(session, load_profile(tmp_path / "a" / "t.yaml"), None) == []
