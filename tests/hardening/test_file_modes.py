"""A session's files are private to the user who measures (0600, folders 0700), so co-users of a
shared box read neither its notices nor its profile; in a results folder shared on purpose (a
setgid folder of a group) the group may read them (0640, 0750). Real sessions, in this process:
its forkserver was started under another umask than either session's, and a worker creates its
files with its session's mode all the same."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.worker_process import forkserver_context

from tests.session_helpers import run_cli_here, write_profile

TINY_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "tiny.yaml"

pytestmark = pytest.mark.session

BODY = """\
models: [demo/tiny-bert-random]
techniques: [baseline]
inputs: {batch_sizes: [1], sequence_lengths: [8]}
"""


@pytest.fixture(scope="module", autouse=True)
def forkserver_under_the_default_umask():
    """This process's forkserver, started under 0o022 unless a session of this process started
    it before (under 0o077 or 0o027): never under the umask of both sessions below."""
    umask = os.umask(0o022)
    try:
        forkserver_context(load_profile(TINY_PROFILE))
    finally:
        os.umask(umask)


def modes(session: Path) -> dict[str, int]:
    return {p.relative_to(session).as_posix() or ".": stat.S_IMODE(p.stat().st_mode)
            for p in [session, *session.rglob("*")]}


def _session(results: Path, tmp_path: Path) -> dict[str, int]:
    """The modes of each file and folder of a session of one run, folders named with a "/"."""
    profile = write_profile(tmp_path, BODY)
    done = run_cli_here(str(profile), "--results-dir", str(results), "--quiet")
    assert done.returncode == 0, done.stderr
    (session,) = [p for p in results.iterdir() if p.is_dir()]
    found = modes(session)
    assert {"runs.csv", "samples.csv", "session.json", "profile.yaml"} <= set(found)
    assert any(name.endswith("/worker.log") for name in found)  # a worker's own file
    return {name + "/" * (session / name).is_dir(): mode for name, mode in found.items()}


def test_every_file_and_folder_of_a_session_is_private_to_its_user(tmp_path):
    results = tmp_path / "results"
    results.mkdir(mode=0o755)
    found = _session(results, tmp_path)
    assert found["./"] == 0o700 and found["events.jsonl"] == 0o600
    assert {name: mode for name, mode in found.items() if mode & 0o077} == {}


def test_a_results_folder_shared_with_a_group_on_purpose_lets_the_group_read(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    results.chmod(0o2775)  # setgid: a lab's shared folder
    found = _session(results, tmp_path)
    assert {name: mode for name, mode in found.items()
            if mode & 0o777 != (0o750 if name.endswith("/") else 0o640)} == {}
