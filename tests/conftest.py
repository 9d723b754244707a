"""Shared test set-up: no network, no progress bars, quiet torch deprecations."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Sessions take a machine-wide lock; tests use their own, so a test run and a real session (or two
# test runs) on one machine do not refuse each other.
os.environ["ENERGY_CONSOLE_LOCK"] = os.path.join(
    tempfile.gettempdir(), f"energy-console-test-{os.getpid()}.lock"
)
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
