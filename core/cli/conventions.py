"""What every headless command shares: its exit statuses and where sessions are found."""

from __future__ import annotations

import argparse
from pathlib import Path

from energy_console.core.store.session_dir import default_results_root

EXIT_OK, EXIT_RUNS_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def results_root(args: argparse.Namespace) -> Path:
    """--results-dir, else $ENERGY_CONSOLE_RESULTS_DIR or results/."""
    return getattr(args, "results_dir", None) or default_results_root()
