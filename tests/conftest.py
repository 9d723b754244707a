"""Shared test set-up: no network, no progress bars, quiet torch deprecations, and a bare host.

Every test, and every process a test starts, sees a machine without RAPL, NVML or CUDA, whatever
machine runs the suite (tests/fakes/host.py says how); tests that want hardware add fakes on top.
"""

from __future__ import annotations

import gc
import os
import re
import sys
import tempfile
import warnings
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
# Test processes keep what they compile in __pycache__ (git-ignored), PYTHONDONTWRITEBYTECODE or
# not: without it each test process rewrites and compiles every test module again, on every run
# (2.5 CPU-s a process on the 2-core development machine). Processes a test starts only read.
sys.dont_write_bytecode = False
# Fewer young-generation collections in the test processes: Textual's painting and the torch tests
# make millions of short-lived objects, and at Python's default threshold (700) the collector ran
# 2,400 times in tests/test_snapshots.py and test_tui_opened.py (3.4 of their 25 CPU-s), 1,600
# times in the torch tests (2.4 of 25 CPU-s); at 50,000, 20 times (0.4 and 0.9 CPU-s), the same
# peak memory. Reference cycles are still collected, a little later.
gc.set_threshold(50_000, 10, 10)


def _freeze_survivors() -> None:
    """One full collection, then what survived it frozen out of the collector's sight: later
    collections walk only what is made after."""
    gc.collect()
    gc.freeze()


def pytest_collection_finish(session):
    """What collecting imported (torch, transformers, Textual: about a million objects) lives to
    the end of the process, so the tests' full collections need not walk it."""
    _freeze_survivors()


def pytest_unconfigure(config):
    """Before pytest's own check for exceptions raised in finalizers at exit: that check collects
    5 times over, and each pass walked every object a test process holds at its end (1.2 million
    after the torch and console tests: 5.3 CPU-s, paid by each test process as the suite ends).
    Its passes now see what this collection's finalizers left, where a finalizer that raises is
    still found."""
    _freeze_survivors()


# A test file whose every test is a session test says so at its top, in this one form.
SESSION_FILE = re.compile(r"^pytestmark = pytest\.mark\.session\b", re.MULTILINE)


def is_fast_tier(config: pytest.Config) -> bool:
    """Whether `-m` is the fast tier's `not session` (spaces aside): the one expression the
    README runs and the tier's shortcuts below are for; any other leaves them off."""
    return " ".join(config.getoption("markexpr").split()) == "not session"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under `-m "not session"` (the fast tier) a file of session tests only is not even
    imported: every test process would import it, and its imports (torch, ray, transformers
    models) only to deselect all it holds."""
    if (collection_path.suffix == ".py" and collection_path.name.startswith("test_")
            and is_fast_tier(config)
            and SESSION_FILE.search(collection_path.read_text(encoding="utf-8"))):
        return True
    return None


@pytest.fixture(scope="session", autouse=True)
def bare_host(tmp_path_factory):
    """No RAPL, NVML or CUDA for the whole run (before any module-scoped session fixture)."""
    with pytest.MonkeyPatch.context() as patch:
        use_bare_host(patch, tmp_path_factory.mktemp("powercap-empty"))
        yield


@pytest.fixture(scope="session", autouse=True)
def one_preload_for_every_session_here():
    """A forkserver serves every session of its process with its first session's preload, which
    names only what that session's models use: the first session a test process runs could leave
    all its later ones importing transformers in each worker. So the forkserver of the sessions a
    test process runs in itself (started by the first of them, as before) preloads what any
    source names. Only the runner's lookup is replaced: tests/test_worker_preload.py calls
    preload_modules itself, and a runner process of its own computes its session's preload."""
    from energy_console.core.models.base import ONNX_PACKAGE, TRANSFORMERS_CLASSES
    from energy_console.core.session import worker_process

    every_source = [TRANSFORMERS_CLASSES, ONNX_PACKAGE, worker_process.WORKER_PRELOAD]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(worker_process, "preload_modules", lambda profile: every_source)
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


# The fast tier's files whose tests import torch in the test process (demo models, techniques,
# tensors), found by tracing imports; tests/test_tui_add_model.py imports onnx, as the others do.
# A fresh process pays 5-9 CPU-s to import torch and transformers' model code; under
# `-m "not session"` these files run in one test process, one after the other, so the others
# never import them. A file missing here is only slower (the hook below names it).
TORCH_FILES = frozenset({
    "hardening/test_cache_trust.py",
    "test_datasets.py",
    "test_detection.py",
    "test_flops.py",
    "test_generate.py",
    "test_magnitude.py",
    "test_model_files.py",
    "test_onnx_calibration.py",
    "test_protocol.py",
    "test_quality.py",
    "test_techniques.py",
    "test_tui_add_model.py",
    "test_variant_cache.py",
    "test_worker_messages.py",
})
TORCH_SCOPE = "tests/conftest.py::TORCH_FILES"
HAD_TORCH = pytest.StashKey[bool]()  # whether torch was imported when the test's setup began


def in_torch_files(path: Path) -> bool:
    return path.relative_to(Path(__file__).parent).as_posix() in TORCH_FILES


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` with TORCH_FILES as one file, in the fast tier. The whole suite keeps
    one file per unit: there every process runs sessions, and a unit that long would be its
    tail."""
    if config.getvalue("dist") != "loadfile" or not is_fast_tier(config):
        return None
    from xdist.scheduler import LoadFileScheduling

    class TorchFilesTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return TORCH_SCOPE if path.removeprefix("tests/") in TORCH_FILES else path

    return TorchFilesTogether(config, log)


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
    setting (a profile's `threads:` included). A test of TORCH_FILES imports torch here, before
    its fixtures, which may train a model."""
    torch = sys.modules.get("torch")
    item.stash[HAD_TORCH] = torch is not None
    if torch is None and in_torch_files(item.path):
        import torch
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    """In the fast tier, a test outside TORCH_FILES whose process had no torch before it and has
    it now is named in a warning: its file belongs in TORCH_FILES."""
    if (not item.stash.get(HAD_TORCH, True) and "torch" in sys.modules
            and not in_torch_files(item.path)
            and is_fast_tier(item.config)):
        warnings.warn(pytest.PytestWarning(
            f"{item.path.name} imports torch: add it to TORCH_FILES in tests/conftest.py, so "
            "that the fast tier imports torch in one test process only"), stacklevel=1)
