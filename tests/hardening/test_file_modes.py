"""A session's files are private to the user who measures (0600, folders 0700), so co-users of a
shared box read neither its notices nor its profile; in a results folder shared on purpose (a
setgid folder of a group) the group may read them (0640, 0750). Real runner sessions."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.session_helpers import run_cli, write_profile

pytestmark = pytest.mark.session

BODY = """\
models: [demo/tiny-bert-random]
techniques: [baseline]
inputs: {batch_sizes: [1], sequence_lengths: [8]}
"""


def modes(session: Path) -> dict[str, int]:
    return {p.relative_to(session).as_posix() or ".": stat.S_IMODE(p.stat().st_mode)
            for p in [session, *session.rglob("*")]}


def _session(results: Path, tmp_path: Path) -> Path:
    profile = write_profile(tmp_path, BODY)
    done = run_cli(str(profile), "--results-dir", str(results), "--quiet")
    assert done.returncode == 0, done.stderr
    (session,) = [p for p in results.iterdir() if p.is_dir()]
    return session


def test_every_file_and_folder_of_a_session_is_private_to_its_user(tmp_path):
    results = tmp_path / "results"
    results.mkdir(mode=0o755)
    found = modes(_session(results, tmp_path))
    assert found["."] == 0o700 and found["events.jsonl"] == 0o600
    assert {"runs.csv", "samples.csv", "session.json", "profile.yaml"} <= set(found)
    opened = {name: mode for name, mode in found.items() if mode & 0o077}
    assert opened == {}


def test_a_results_folder_shared_with_a_group_on_purpose_lets_the_group_read(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o2775)  # setgid: a lab's shared folder
    found = modes(_session(results, tmp_path))
    assert found["."] & 0o777 == 0o750 and found["events.jsonl"] == 0o640
    assert {name: mode for name, mode in found.items() if mode & 0o007} == {}
