"""What the forkserver of a session imports before it forks each variant's worker."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.worker_process import ONNX_PACKAGE, preload_modules

from tests.session_helpers import write_profile

BASE = "energy_console.core.worker.preload"
TINY = load_profile(Path(__file__).parent / "profiles" / "tiny.yaml")  # baseline, dynamic-int8


def test_a_torch_session_preloads_torch_and_transformers_alone():
    assert preload_modules(TINY) == [BASE]


def test_an_onnx_technique_in_a_chain_or_an_onnx_model_preloads_onnx(tmp_path):
    chain = load_profile(write_profile(tmp_path, """\
models: [demo/tiny-bert-random]
techniques: [baseline, {chain: [structured-prune, onnx-int8]}]
inputs: {batch_sizes: [1], sequence_lengths: [8]}
"""))
    assert preload_modules(chain) == [ONNX_PACKAGE, BASE]

    onnx_model = dataclasses.replace(TINY.models[0], source="onnx", ref="model.onnx")
    assert preload_modules(dataclasses.replace(TINY, models=(onnx_model,))) == [ONNX_PACKAGE, BASE]


def test_preloading_onnx_starts_no_thread():
    """The forkserver forks workers from itself: a thread an import started would not be in
    them (and a lock it held would stay held). numpy's (OpenBLAS) is there with or without."""
    new_threads = subprocess.run(
        [sys.executable, "-c", "import os, numpy; before = len(os.listdir('/proc/self/task')); "
         f"import {ONNX_PACKAGE}; print(len(os.listdir('/proc/self/task')) - before)"],
        capture_output=True, text=True, check=True).stdout
    assert int(new_threads) == 0
