"""A disk that fills during a session: the run that just finished is kept (runs.csv, or printed
whole to stderr / runner.log when even that finds no room), the session ends "failed" naming
"disk full" and the file, and the command exits non-zero without a traceback. A reserve file the
runner holds is freed first, so the last records still fit."""

from __future__ import annotations

import csv
import errno
import json
import os
import subprocess
from pathlib import Path

import pytest
from energy_console.core.session import guard as session_guard
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.runner import Runner
from energy_console.core.store.session_dir import SessionWriter

from tests.session_helpers import (
    read_events,
    run_cli_here,
    run_cli_here_while,
    wait_for_event,
    write_profile,
)

pytestmark = pytest.mark.session  # slow tier: real runner sessions, CLI processes, end-to-end UI

TWO_RUNS = """\
models: [demo/tiny-bert-random]
techniques: [baseline, dynamic-int8]
inputs: {batch_sizes: [1], sequence_lengths: [16]}
"""


def quiet_run(profile: Path, session: Path) -> tuple[str, ...]:
    """`run`'s arguments for the profile into the session. These sessions run in this process:
    what they prove lies between the runner and its files, not in a process of its own."""
    return str(profile), "--quiet", "--session-dir", str(session)


def lock_of(tmp_path: Path) -> dict[str, str]:
    return {"ENERGY_CONSOLE_LOCK": str(tmp_path / "lock")}


def fill(folder: Path) -> None:
    """Write until the file system says no more."""
    with (folder / "filler").open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_disk_that_fills_mid_session_ends_it_failed_and_keeps_the_finished_run(
        tmp_path, small_disk):
    profile = write_profile(tmp_path, TWO_RUNS)
    session = small_disk / "session"

    def fill_after_the_first_run():
        wait_for_event(session, lambda e: e["kind"] == "run_finished", timeout_s=300)
        assert (session / ".space-reserve").stat().st_size == session_guard.RESERVE_BYTES
        fill(small_disk)

    done, _ = run_cli_here_while(fill_after_the_first_run, session, *quiet_run(profile, session),
                                 env=lock_of(tmp_path))
    stdout, stderr = done.stdout, done.stderr
    assert done.returncode == 1, (stdout, stderr)
    assert "Traceback" not in stderr
    assert "disk full" in stderr and str(session) in stderr and "--resume" in stderr
    info = json.loads((session / "session.json").read_text())
    assert info["status"] == "failed"  # not stuck "running"
    finished = read_events(session)[-1]
    assert finished["kind"] == "session_finished" and finished["status"] == "failed"
    assert finished["message"].startswith("disk full: cannot write")
    with (session / "runs.csv").open() as f:
        rows = {r["run_id"]: r for r in csv.DictReader(f)}
    assert rows["tiny-bert-random__baseline__b1-s16"]["status"] == "finished"
    second = "tiny-bert-random__dynamic-int8__b1-s16"
    assert second in rows or f'"run_id": "{second}"' in stderr  # kept, or printed whole
    assert not (session / ".space-reserve").exists()
    assert not list(session.glob(".*.tmp"))  # no half-written temporary files left


def test_a_row_that_never_fits_is_printed_whole_and_the_session_still_ends(
        tmp_path, monkeypatch, capsys):
    """runs.csv refuses every write (the reserve freed, still no room): the finished run's row
    goes to stderr as JSON, session.json and the last event still say failed: disk full."""

    def no_room(self, records):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(SessionWriter, "record_runs", no_room)
    monkeypatch.setenv("ENERGY_CONSOLE_LOCK", str(tmp_path / "lock"))
    profile = load_profile(write_profile(tmp_path, TWO_RUNS))
    outcome = Runner(profile, tmp_path / "session").run()
    assert outcome.status == "failed" and outcome.finished == 1
    assert outcome.message.startswith("disk full: cannot write")
    assert str(tmp_path / "session" / "runs.csv") in outcome.message
    printed = capsys.readouterr().err
    line = next(x for x in printed.splitlines() if x.startswith("unsaved runs.csv record"))
    row = json.loads(line.split(": ", 1)[1])
    assert row["run_id"] == "tiny-bert-random__baseline__b1-s16" and row["status"] == "finished"
    assert float(row["energy_j_per_inference"]) > 0
    events = read_events(tmp_path / "session")
    assert [e["kind"] for e in events].count("run_started") == 1  # the session stopped there
    assert events[-1]["status"] == "failed"
    info = json.loads((tmp_path / "session" / "session.json").read_text())
    assert info["status"] == "failed"


def test_samples_that_cannot_be_written_end_the_session_after_the_run(tmp_path, monkeypatch):
    """samples.csv failing (EIO) mid-run: the run's figures come from memory and are kept; the
    session ends with a write error naming samples.csv."""
    real = SessionWriter.append_samples

    def failing(self, rows, t_offset_s=0.0):
        if "run_started" in (self.path / "events.jsonl").read_text():  # during the first run
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(self, rows, t_offset_s)

    monkeypatch.setattr(SessionWriter, "append_samples", failing)
    monkeypatch.setenv("ENERGY_CONSOLE_LOCK", str(tmp_path / "lock"))
    outcome = Runner(load_profile(write_profile(tmp_path, TWO_RUNS)), tmp_path / "session").run()
    assert outcome.status == "failed" and outcome.finished >= 1
    assert outcome.message.startswith("write error: cannot write")
    assert "samples.csv" in outcome.message
    with (tmp_path / "session" / "runs.csv").open() as f:
        assert [r["status"] for r in csv.DictReader(f)][0] == "finished"


def test_a_disk_full_from_the_start_leaves_no_session_and_suggests_starting_again(
        tmp_path, small_disk):
    """Nothing could be written: no session folder is left to be listed as waiting forever, and
    the command says to start again (a resume of nothing cannot work)."""
    from energy_console.core.store.session_dir import list_sessions

    profile = write_profile(tmp_path, TWO_RUNS)
    fill(small_disk)
    session = small_disk / "session"
    done = run_cli_here(*quiet_run(profile, session), env=lock_of(tmp_path))
    print(done.stderr)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "disk full" in done.stderr
    assert "--resume" not in done.stderr
    assert "start the session again: `energy-console run PROFILE`" in done.stderr
    assert not session.exists() or read_events(session)[-1]["status"] == "failed"
    assert list_sessions(small_disk) == [] or read_events(session)[-1]["status"] == "failed"


def test_a_session_folder_deleted_mid_run_suggests_starting_again(tmp_path):
    """The runner stops cleanly and does not suggest resuming a folder that is gone."""
    import shutil

    from tests.session_helpers import wait_for_first_warmup

    session = tmp_path / "session"

    def remove_the_folder_at_the_first_warmup():
        wait_for_first_warmup(session)
        shutil.rmtree(session)

    done, _ = run_cli_here_while(remove_the_folder_at_the_first_warmup, session,
                                 *quiet_run(write_profile(tmp_path, TWO_RUNS), session))
    stderr = done.stderr
    print(stderr)
    assert done.returncode == 1 and "Traceback" not in stderr
    assert "--resume" not in stderr
    assert "start the session again: `energy-console run PROFILE`" in stderr
