"""Shared test set-up: no network, no progress bars, quiet torch deprecations, and a bare host.

Every test, and every process a test starts, sees a machine without RAPL, NVML or CUDA, whatever
machine runs the suite (tests/fakes/host.py says how); tests that want hardware add fakes on top.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from tests.fakes.host import use_bare_host

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Sessions take a machine-wide lock; tests use their own, so a test run and a real session (or two
# test runs) on one machine do not refuse each other.
os.environ["ENERGY_CONSOLE_LOCK"] = os.path.join(
    tempfile.gettempdir(), f"energy-console-test-{os.getpid()}.lock"
)
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def bare_host(tmp_path_factory):
    """No RAPL, NVML or CUDA for the whole run (before any module-scoped session fixture)."""
    with pytest.MonkeyPatch.context() as patch:
        use_bare_host(patch, tmp_path_factory.mktemp("powercap-empty"))
        yield


# The files that take longest alone (single process, measured on the development machine), the
# longest first, then the fast tier's longest: they start first, so that no process is left with
# one of them at the end while the others idle. A file not listed only starts later; nothing else
# depends on this list.
SLOWEST_FILES = (
    "test_detection_session.py",
    "hardening/test_disk_full.py",
    "test_session_quality.py",
    "test_session.py",
    "test_session_ray.py",
    "hardening/test_big_stop.py",
    "test_variant_session.py",
    "test_generate_session.py",
    "test_train_session.py",
    "test_techniques.py",
    "test_quality.py",
    "test_tui_untrusted_text.py",
    "test_snapshots.py",
    "test_tui_opened.py",
    "hardening/test_profile_input.py",
)


def pytest_collection_modifyitems(items):
    """The order the test processes take files in (`--dist loadfile --no-loadscope-reorder`,
    pyproject): SLOWEST_FILES first, then files by their number of session tests, then by their
    number of tests; each file's tests stay together and in their order."""
    tests_dir = Path(__file__).parent
    slowest = {tests_dir / name: rank for rank, name in enumerate(SLOWEST_FILES)}
    sessions = Counter(item.path for item in items if item.get_closest_marker("session"))
    tests = Counter(item.path for item in items)
    first_seen = {path: i for i, path in enumerate(dict.fromkeys(item.path for item in items))}
    items.sort(key=lambda item: (slowest.get(item.path, len(slowest)), -sessions[item.path],
                                 -tests[item.path], first_seen[item.path]))


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pyproject's addopts): one test process more than the machine has cores, up to
    --maxprocesses. Session tests spend part of their time waiting (idle baselines, paced models,
    signals, the console settling); a process more keeps the cores busy. On the 2-core
    development machine: the whole suite 6 min 38 s on 2 processes, 5 min 43 s on 3 (busy 79 %
    -> 95 % of the cores); the fast tier 75 s -> 64 s. PYTEST_XDIST_AUTO_NUM_WORKERS, where set,
    is taken as it is (by xdist's own hook)."""
    from xdist.plugin import pytest_xdist_auto_num_workers as xdist_count

    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return xdist_count(config) + 1


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Torch in the test processes runs on one thread, as the workers do (protocol.threads: 1).
    The test processes already fill the cores (`-n auto`), and on a busy machine torch's extra
    threads spin waiting for a core: the in-process torch tests of tests/test_techniques.py took
    26 s of CPU on two threads, 13 s on one (test_quality 48 -> 14 s). Torch is left alone where
    no test has imported it, and the processes a test starts (workers, the CLI) keep their own
    setting (a profile's `threads:` included)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)
