"""Shared test set-up: no network, no progress bars, quiet torch deprecations, and a bare host.

Every test, and every process a test starts, sees a machine without RAPL, NVML or CUDA, whatever
machine runs the suite (tests/fakes/host.py says how); tests that want hardware add fakes on top.
"""

from __future__ import annotations

import os
import tempfile

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
