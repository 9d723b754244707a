"""Readers survive bad files: a real session, damaged one way at a time, still reads.

A disk that filled up, a runner killed mid-write, a copy that went wrong: `report` and the live
view (SessionReader, which `attach` and the console use) name what is wrong, and show the rest.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from energy_console.core.store.file_tail import MAX_LINE_BYTES
from energy_console.core.store.follow import SessionReader, read_session

from tests.session_helpers import cli_here, run_cli_here, write_profile

pytestmark = pytest.mark.session  # slow tier: real runner sessions, CLI processes, end-to-end UI

RUN_ID = "tiny-bert-random__baseline__b1-s16"


@pytest.fixture(scope="module")
def good_session(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("readers")
    profile = write_profile(folder, "models: [demo/tiny-bert-random]\ntechniques: [baseline]\n"
                            "inputs: {batch_sizes: [1], sequence_lengths: [16]}\n")
    session = folder / "session"
    done = run_cli_here(str(profile), "--session-dir", str(session), "--quiet")
    assert done.returncode == 0, done.stderr
    runner_has_ended(session)
    return session


def runner_has_ended(session: Path) -> None:
    """The session was measured in this process, which lives on: its files name a runner that
    has ended instead, as one of a runner process would (pid_max: never a process's id), so
    that a reader that loses the session's end does not take it for still running."""
    gone = int(Path("/proc/sys/kernel/pid_max").read_text())
    for name in ("session.json", "events.jsonl"):
        text = (session / name).read_text()
        for form in ('"runner_pid": {}', '"runner_pid":{}'):
            text = text.replace(form.format(os.getpid()), form.format(gone))
        (session / name).write_text(text)
    assert json.loads((session / "session.json").read_text())["runner_pid"] == gone


def damage_lines(file: Path, index: int, new: bytes | None) -> None:
    lines = file.read_bytes().split(b"\n")
    if new is None:
        del lines[index]
    else:
        lines[index] = new
    file.write_bytes(b"\n".join(lines))


def cut_last_line(file: Path, keep: int = 7) -> None:
    data = file.read_bytes().rstrip(b"\n")
    head, _, last = data.rpartition(b"\n")
    file.write_bytes(head + b"\n" + last[:keep])


def events_line(session: Path, kind: str) -> int:
    lines = (session / "events.jsonl").read_text().splitlines()
    return next(i for i, line in enumerate(lines) if json.loads(line)["kind"] == kind)


# name -> (damage, text the problem must hold, whether the run still shows as finished)
DAMAGE = {
    "session.json not UTF-8": (lambda s: (s / "session.json").write_bytes(
        b'{"host": "\xff\xfe", "runner_pid": 1}'), "session.json does not read", True),
    "session.json cut short": (lambda s: (s / "session.json").write_bytes(
        (s / "session.json").read_bytes()[:40]), "session.json does not read", True),
    "session.json a list": (lambda s: (s / "session.json").write_text("[1, 2]"),
                            "not an object", True),
    "session.json wrong types": (lambda s: (s / "session.json").write_text(json.dumps(
        {"runner_pid": "x", "sensors": "abc", "total_runs": [1], "idle_power_w": 3})),
        "of the wrong type", True),
    "session.json missing": (lambda s: (s / "session.json").unlink(), "session.json is missing",
                             True),
    "events line not UTF-8": (lambda s: damage_lines(
        s / "events.jsonl", 1, b'{"kind": "notice", "\xff\xfe": 1}'), "not UTF-8", True),
    "events line cut short": (lambda s: damage_lines(
        s / "events.jsonl", 1, b'{"kind": "idle_basel'), "not JSON", True),
    "events line not an object": (lambda s: damage_lines(s / "events.jsonl", 1, b"[1, 2]"),
                                  "events.jsonl: 1 line(s) unreadable", True),
    "events run_started of wrong types": (lambda s: damage_lines(
        s / "events.jsonl", events_line(s, "run_started"),
        b'{"kind": "run_started", "run_id": 5, "index": "x", "total": "y", "model": null,'
        b' "technique": [], "batch_size": {}, "seq_len": "z", "resolution": null, "t": "t"}'),
        "events.jsonl: 1 line(s) unreadable", True),
    "events last line cut short": (lambda s: cut_last_line(s / "events.jsonl"),
                                   "the last line is cut short", True),
    "events endless junk line": (lambda s: (s / "events.jsonl").open("ab").write(
        b"\x00junk" * (MAX_LINE_BYTES // 2)), "dropped", True),
    "events missing": (lambda s: (s / "events.jsonl").unlink(), "events.jsonl is missing", True),
    "runs.csv half-written last line": (lambda s: (s / "runs.csv").open("a").write(
        "other__baseline__b1-s16,demo/x,text-classifi"), "runs.csv: 1 row(s) unreadable", True),
    "runs.csv not UTF-8": (lambda s: (s / "runs.csv").write_bytes(
        (s / "runs.csv").read_bytes().replace(b"demo/", b"d\xffmo/")), "not UTF-8", True),
    "runs.csv bad values": (lambda s: (s / "runs.csv").write_text(
        (s / "runs.csv").read_text().replace(",finished,", ",finished,").replace(
            ",1,", ",one,", 1)), "runs.csv: 1 row(s) unreadable", True),
    "runs.csv missing": (lambda s: (s / "runs.csv").unlink(), "runs.csv is missing", True),
    "samples.csv half-written and junk rows": (lambda s: (
        damage_lines(s / "samples.csv", 3, b"\xff\xfe,,,"), cut_last_line(s / "samples.csv", 3)),
        "samples.csv", True),
    "samples.csv missing": (lambda s: (s / "samples.csv").unlink(), "samples.csv is missing",
                            True),
}


@pytest.fixture
def damaged(good_session, tmp_path, request) -> tuple[Path, str, bool]:
    damage, expected, finished = DAMAGE[request.param]
    session = tmp_path / "session"
    shutil.copytree(good_session, session)
    damage(session)
    return session, expected, finished


@pytest.mark.parametrize("damaged", list(DAMAGE), indirect=True)
def test_the_reader_names_the_problem_and_shows_the_rest(damaged):
    session, expected, finished = damaged
    snapshot = read_session(session)
    assert any(expected in p for p in snapshot.problems), snapshot.problems
    assert any(expected in line for line in snapshot.log)  # the live view's log shows it
    runs = {r.run_id: r for r in snapshot.runs}
    assert RUN_ID in runs and runs[RUN_ID].finished == finished
    assert not any("other__" in r for r in runs)  # a half-written row is not a run


@pytest.mark.parametrize("damaged", list(DAMAGE), indirect=True)
def test_report_prints_the_problem_first_and_the_runs_after(damaged):
    session, expected, _ = damaged
    done = cli_here("report", str(session))  # reads files only: no process of its own
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Problems reading this session"), done.stdout[:500]
    assert expected in done.stdout
    assert "tiny-bert-random" in done.stdout and "finished" in done.stdout


def test_a_valid_session_reports_no_problems(good_session):
    snapshot = read_session(good_session)
    assert snapshot.problems == ()
    assert not any("problem" in line for line in snapshot.log)


def test_a_live_reader_does_not_call_a_line_being_written_a_problem(good_session, tmp_path):
    session = tmp_path / "session"
    shutil.copytree(good_session, session)
    cut_last_line(session / "events.jsonl")  # as the runner is writing it
    info = json.loads((session / "session.json").read_text())
    info["runner_pid"] = os.getpid()  # a runner that is alive
    (session / "session.json").write_text(json.dumps(info))
    reader = SessionReader(session)
    while reader.read_some():
        pass
    assert reader.snapshot().problems == ()
    reader.finish()  # the session has ended: now it is cut short
    assert "cut short" in reader.snapshot().problems[0]


def test_a_problem_that_is_fixed_is_no_longer_reported(good_session, tmp_path):
    session = tmp_path / "session"
    shutil.copytree(good_session, session)
    good = (session / "session.json").read_bytes()
    (session / "session.json").write_bytes(good[:10])
    reader = SessionReader(session)
    reader.read_some()
    assert reader.snapshot().problems
    (session / "session.json").write_bytes(good + b"\n")
    reader.read_some()
    assert reader.snapshot().problems == ()


async def test_attach_shows_the_problems_in_the_live_log(good_session, tmp_path):
    from energy_console.tui.app import EnergyConsoleApp
    from energy_console.tui.screens.live import LiveScreen
    from textual.widgets import RichLog

    session = tmp_path / "session"
    shutil.copytree(good_session, session)
    (session / "runs.csv").unlink()
    damage_lines(session / "events.jsonl", 1, b"\xff\xfe{")
    app = EnergyConsoleApp(attach=session, results_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = pilot.app.screen
        assert isinstance(screen, LiveScreen)
        text = ""
        for _ in range(100):
            await pilot.pause(0.05)
            text = "\n".join(line.text for line in screen.query_one(RichLog).lines)
            if "runs.csv is missing" in text and "events.jsonl" in text:
                break
        assert "problem: runs.csv is missing" in text
        assert "problem: events.jsonl: 1 line(s) unreadable" in text
        assert {r.run_id for r in screen.snapshot.runs} == {RUN_ID}
