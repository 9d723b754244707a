"""Starting a runner as its own process, detached from the terminal that asked for it.

The runner gets its own session (start_new_session) and writes its output to runner.log, so the
measurement goes on when the terminal or the SSH connection goes away, and nothing it prints can
break a full-screen view.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path


def start_runner(profile_path: Path, session_dir: Path, device: str | None = None,
                 resume: bool = False, allow_changes: bool = False,
                 placement: tuple[str, ...] = ()) -> int:
    """Start `energy-console run` for the profile into session_dir (continuing it when
    `resume`; `placement`: its --gpus/--ray arguments); returns the runner's pid."""
    session_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "energy_console.core.cli", "run", str(profile_path),
               "--resume" if resume else "--session-dir", str(session_dir), "--quiet"]
    if device:
        command += ["--device", device]
    if allow_changes:
        command.append("--resume-with-changes")
    command += list(placement)
    with (session_dir / "runner.log").open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    # Reap it when it ends, so a long-lived console never keeps a zombie runner around.
    threading.Thread(target=process.wait, name="runner-reaper", daemon=True).start()
    return process.pid
