"""The machine lock on hostile ground: real files, links, FIFOs, owners and processes.

The lock lives in a directory other local users may write to (/run/lock, /tmp) and sessions often
run as root, so whatever sits at the lock path must never be followed, chmodded or truncated.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from energy_console.core.session import machine_lock
from energy_console.core.session.machine_lock import LockRefused, MachineBusy, MachineLock

from tests.session_helpers import ROOT, write_profile

AS_ROOT = os.geteuid() == 0
NOBODY = 65534


def snapshot(path: Path) -> tuple[bytes, int, int]:
    info = os.stat(path)
    return path.read_bytes(), stat.S_IMODE(info.st_mode), info.st_uid


def victim_file(tmp_path: Path) -> Path:
    victim = tmp_path / "precious.conf"
    victim.write_bytes(b"secret=1\n" * 100)
    victim.chmod(0o600)
    return victim


def test_a_symlink_at_the_lock_path_is_refused_and_its_target_left_untouched(tmp_path):
    victim = victim_file(tmp_path)
    before = snapshot(victim)
    link = tmp_path / "lock"
    link.symlink_to(victim)
    with pytest.raises(LockRefused) as info:
        MachineLock(link).acquire(tmp_path / "s")
    message = str(info.value)
    assert isinstance(info.value, MachineBusy)  # what the runner catches: the session fails
    assert "symbolic link" in message and str(victim) in message
    assert "ENERGY_CONSOLE_LOCK" in message and f"rm {link}" in message
    assert snapshot(victim) == before
    assert link.is_symlink()


def test_a_dangling_symlink_is_refused_and_its_target_not_created(tmp_path):
    target = tmp_path / "would-be-created"
    link = tmp_path / "lock"
    link.symlink_to(target)
    with pytest.raises(LockRefused, match="symbolic link"):
        MachineLock(link).acquire(tmp_path / "s")
    assert not target.exists() and not target.is_symlink()


def test_a_session_whose_lock_path_is_a_symlink_is_refused_through_the_cli(tmp_path):
    victim = victim_file(tmp_path)
    before = snapshot(victim)
    link = tmp_path / "lock"
    link.symlink_to(victim)
    profile = write_profile(tmp_path, "models: [demo/tiny-bert-random]\ntechniques: [baseline]\n"
                            "inputs: {batch_sizes: [1], sequence_lengths: [8]}\n")
    env = dict(os.environ, ENERGY_CONSOLE_LOCK=str(link))
    result = subprocess.run(
        [sys.executable, "-m", "energy_console.core.cli", "run", str(profile), "--quiet",
         "--results-dir", str(tmp_path / "results")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 1, result.stderr
    assert "symbolic link" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(victim) == before


@pytest.mark.skipif(not AS_ROOT, reason="chown to another uid needs root")
def test_a_lock_file_owned_by_another_user_is_refused_and_left_as_it_is(tmp_path):
    lock = tmp_path / "lock"
    lock.write_bytes(b'{"pid": 1, "session": "theirs"}')
    lock.chmod(0o600)
    os.chown(lock, NOBODY, NOBODY)
    before = snapshot(lock)
    with pytest.raises(LockRefused) as info:
        MachineLock(lock).acquire(tmp_path / "s")
    assert f"uid {NOBODY}" in str(info.value) and "not to you or root" in str(info.value)
    assert snapshot(lock) == before


def test_a_fifo_at_the_lock_path_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "lock"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(LockRefused, match="FIFO"):
        MachineLock(fifo).acquire(tmp_path / "s")
    assert time.monotonic() - started < 2
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_directory_at_the_lock_path_is_refused(tmp_path):
    (tmp_path / "lock").mkdir()
    with pytest.raises(LockRefused, match="a directory"):
        MachineLock(tmp_path / "lock").acquire(tmp_path / "s")


def test_a_hard_link_to_another_file_is_refused_and_left_untouched(tmp_path):
    victim = victim_file(tmp_path)
    before = snapshot(victim)
    os.link(victim, tmp_path / "lock")
    with pytest.raises(LockRefused, match="2 names"):
        MachineLock(tmp_path / "lock").acquire(tmp_path / "s")
    assert snapshot(victim) == before


def test_a_lock_in_a_directory_anyone_may_rewrite_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # world-writable and not sticky: anyone could swap the file
    with pytest.raises(LockRefused, match="not sticky"):
        MachineLock(shared / "lock").acquire(tmp_path / "s")
    assert not (shared / "lock").exists()


def test_a_missing_directory_is_a_clear_refusal_not_a_crash(tmp_path):
    with pytest.raises(LockRefused, match="directory cannot be opened"):
        MachineLock(tmp_path / "nope" / "lock").acquire(tmp_path / "s")


def test_an_existing_own_lock_file_is_neither_chmodded_nor_truncated(tmp_path):
    lock = tmp_path / "lock"
    tail = b"x" * 300
    lock.write_bytes(b"old holder record".ljust(machine_lock.RECORD_SIZE) + tail)
    lock.chmod(0o600)
    first = MachineLock(lock)
    first.acquire(tmp_path / "session-a")
    data = lock.read_bytes()
    assert stat.S_IMODE(os.stat(lock).st_mode) == 0o600
    assert len(data) == machine_lock.RECORD_SIZE + len(tail) and data.endswith(tail)
    assert b"session-a" in data[: machine_lock.RECORD_SIZE]
    first.release()
    assert lock.read_bytes().endswith(tail)


def test_a_new_lock_file_is_created_0644_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        lock = MachineLock(tmp_path / "lock")
        lock.acquire(tmp_path / "s")
        lock.release()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "lock").st_mode) == 0o644


HOLD = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    from energy_console.core.session.machine_lock import MachineLock
    MachineLock(sys.argv[1]).acquire(Path(sys.argv[2]))
    print("held", flush=True)
    time.sleep(60)
""")

TRY = textwrap.dedent("""\
    import os, sys
    from pathlib import Path
    from energy_console.core.session.machine_lock import MachineBusy, MachineLock
    if len(sys.argv) > 3:  # become another user after the imports (python lives under /root)
        os.setgroups([]); os.setgid(int(sys.argv[3])); os.setuid(int(sys.argv[3]))
    try:
        MachineLock(sys.argv[1]).acquire(Path(sys.argv[2]))
    except MachineBusy as exc:
        print(type(exc).__name__, exc)
        sys.exit(3)
    print("acquired")
""")


def hold(lock: Path, session: str) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock), session],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_process_is_refused_naming_the_first(tmp_path):
    holder = hold(tmp_path / "lock", "/results/session-first")
    try:
        second = subprocess.run([sys.executable, "-c", TRY, str(tmp_path / "lock"), "s2"],
                                capture_output=True, text=True, timeout=60)
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == 3, second.stderr
    assert second.stdout.startswith("MachineBusy ")
    assert f"runner pid {holder.pid}" in second.stdout
    assert "session /results/session-first" in second.stdout


@pytest.mark.skipif(not AS_ROOT, reason="needs root to become another user")
def test_root_and_another_user_exclude_each_other_through_roots_lock(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /run/lock and /tmp
    # pytest's folders are private (one level deeper per xdist worker); the other user must
    # reach the lock through each of them, up to the temp dir
    temp_root = Path(tempfile.gettempdir()).resolve()
    for folder in (tmp_path, *tmp_path.parents):
        if temp_root not in folder.parents:
            break
        folder.chmod(0o755)
    lock = shared / "lock"
    holder = hold(lock, "/results/root-session")
    try:
        refused = subprocess.run([sys.executable, "-c", TRY, str(lock), "s", str(NOBODY)],
                                 capture_output=True, text=True, timeout=60)
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == 3, refused.stderr
    assert f"runner pid {holder.pid} of user root" in refused.stdout
    before = snapshot(lock)
    taken = subprocess.run([sys.executable, "-c", TRY, str(lock), "s", str(NOBODY)],
                           capture_output=True, text=True, timeout=60)
    assert taken.stdout.strip() == "acquired", taken.stdout + taken.stderr
    assert snapshot(lock) == before  # read-only for them: root's file is not rewritten


def test_the_default_lock_prefers_a_per_user_or_root_only_place(tmp_path, monkeypatch):
    monkeypatch.delenv(machine_lock.LOCK_ENV, raising=False)
    path = machine_lock.default_lock_path()
    if AS_ROOT and os.path.isdir("/run/lock"):
        assert path == Path("/run/lock/energy-console.lock")
    else:
        assert path.parent != Path("/tmp") or not os.environ.get("XDG_RUNTIME_DIR")
    monkeypatch.setenv(machine_lock.LOCK_ENV, str(tmp_path / "x.lock"))
    assert MachineLock().path == tmp_path / "x.lock"
