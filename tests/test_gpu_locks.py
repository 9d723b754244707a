"""Per-GPU locks: sessions on disjoint GPUs run at once, on a shared GPU the second is refused."""

from __future__ import annotations

import os

import pytest
from energy_console.core.session.locks import SessionLocks, gpu_lock_path
from energy_console.core.session.machine_lock import LockRefused, MachineBusy


def test_sessions_on_disjoint_gpus_hold_their_locks_at_once(tmp_path):
    first = SessionLocks(gpus=[0, 1], path=tmp_path / "lock")
    second = SessionLocks(gpus=[2], path=tmp_path / "lock")
    first.acquire(tmp_path / "a")
    second.acquire(tmp_path / "b")  # no MachineBusy
    assert gpu_lock_path(tmp_path / "lock", 2).exists()
    first.release()
    second.release()


def test_a_second_session_on_a_gpu_already_measured_is_refused_naming_the_gpu(tmp_path):
    first = SessionLocks(gpus=[0, 2], path=tmp_path / "lock")
    first.acquire(tmp_path / "session-a")
    with pytest.raises(MachineBusy) as info:
        SessionLocks(gpus=[2, 3], path=tmp_path / "lock").acquire(tmp_path / "session-b")
    assert "GPU 2" in str(info.value) and "session-a" in str(info.value)
    # the refused session held nothing: GPU 3 is free for a third session
    third = SessionLocks(gpus=[3], path=tmp_path / "lock")
    third.acquire(tmp_path / "session-c")
    third.release()
    first.release()


def test_a_whole_machine_session_and_a_gpu_session_exclude_each_other(tmp_path):
    machine = SessionLocks(path=tmp_path / "lock")
    machine.acquire(tmp_path / "whole")
    with pytest.raises(MachineBusy) as info:
        SessionLocks(gpus=[1], path=tmp_path / "lock").acquire(tmp_path / "gpu")
    assert "this machine" in str(info.value)
    machine.release()
    gpu = SessionLocks(gpus=[1], path=tmp_path / "lock")
    gpu.acquire(tmp_path / "gpu")
    with pytest.raises(MachineBusy):
        SessionLocks(path=tmp_path / "lock").acquire(tmp_path / "whole")
    gpu.release()


def test_an_exclusive_profile_on_gpus_keeps_other_sessions_off_the_cpu(tmp_path):
    exclusive = SessionLocks(gpus=[0], exclusive=True, path=tmp_path / "lock")
    exclusive.acquire(tmp_path / "cpu-matters")
    with pytest.raises(MachineBusy):
        SessionLocks(gpus=[1], path=tmp_path / "lock").acquire(tmp_path / "other")
    exclusive.release()


def test_a_gpu_lock_path_that_is_a_symlink_is_refused_like_the_machine_lock(tmp_path):
    target = tmp_path / "precious"
    target.write_text("keep")
    os.symlink(target, gpu_lock_path(tmp_path / "lock", 0))
    with pytest.raises(LockRefused) as info:
        SessionLocks(gpus=[0], path=tmp_path / "lock").acquire(tmp_path / "s")
    assert "symbolic link" in str(info.value)
    assert target.read_text() == "keep"
    after = SessionLocks(path=tmp_path / "lock")
    after.acquire(tmp_path / "after")  # the machine lock taken first was released again
    after.release()
