"""What the forkserver of a session imports before it forks each variant's worker: what its
models' sources and its techniques name, and the worker's own code last."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from energy_console.core.models.base import ONNX_PACKAGE, TRANSFORMERS_CLASSES
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.worker_process import WORKER_PRELOAD, preload_modules

from tests.session_helpers import ROOT, write_plain_torch_profile, write_profile

TINY = load_profile(Path(__file__).parent / "profiles" / "tiny.yaml")  # baseline, dynamic-int8
PLAIN_TORCH = "import torch\n\n\nclass Net(torch.nn.Module):\n    pass\n"


def factory_profile_file(folder: Path, module_source: str | None, module: str = "lab.net") -> Path:
    """A profile file of one `factory:` model whose module file (under `folder`) holds
    `module_source`; None: no file there (the module is looked for on sys.path)."""
    if module_source is not None:
        path = folder / Path(*module.split(".")).with_suffix(".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(module_source)
    return write_profile(folder, f"""\
models:
  - factory: {module}:Net
    task: image-classification
    input_shape: [3, 32, 32]
techniques: [baseline]
inputs: {{batch_sizes: [1], resolutions: [32]}}
""")


def factory_profile(folder: Path, module_source: str | None, module: str = "lab.net"):
    return load_profile(factory_profile_file(folder, module_source, module))


def test_a_transformers_session_preloads_transformers_classes_and_the_worker():
    assert preload_modules(TINY) == [TRANSFORMERS_CLASSES, WORKER_PRELOAD]


def test_an_onnx_technique_in_a_chain_or_an_onnx_model_preloads_onnx(tmp_path):
    chain = load_profile(write_profile(tmp_path, """\
models: [demo/tiny-bert-random]
techniques: [baseline, {chain: [structured-prune, onnx-int8]}]
inputs: {batch_sizes: [1], sequence_lengths: [8]}
"""))
    assert preload_modules(chain) == [TRANSFORMERS_CLASSES, ONNX_PACKAGE, WORKER_PRELOAD]

    onnx_model = dataclasses.replace(TINY.models[0], source="onnx", ref="model.onnx")
    assert preload_modules(dataclasses.replace(TINY, models=(onnx_model,))) == [
        ONNX_PACKAGE, WORKER_PRELOAD]


def test_a_factory_model_preloads_transformers_only_where_its_module_imports_it(tmp_path):
    assert preload_modules(factory_profile(tmp_path / "a", PLAIN_TORCH)) == [WORKER_PRELOAD]
    for imports in ("import transformers", "from transformers import BertModel",
                    "import transformers.models.bert as bert",
                    "def build():\n    from transformers import AutoModel"):
        profile = factory_profile(tmp_path / str(hash(imports)), f"{imports}\n{PLAIN_TORCH}")
        assert preload_modules(profile) == [TRANSFORMERS_CLASSES, WORKER_PRELOAD], imports
    relative = factory_profile(tmp_path / "b", f"from .transformers import x\n{PLAIN_TORCH}")
    assert preload_modules(relative) == [WORKER_PRELOAD]  # the package's own module


@pytest.mark.parametrize("source", [None, "def broken(:\n", "x = 1\n" * 200_000],
                         ids=["on sys.path", "not Python", "over the read limit"])
def test_a_factory_module_that_cannot_be_read_preloads_transformers(tmp_path, source):
    """Not knowing what it imports: the forkserver pays transformers once, not each worker."""
    module = "json.tool" if source is None else "lab.net"
    assert preload_modules(factory_profile(tmp_path, source, module)) == [
        TRANSFORMERS_CLASSES, WORKER_PRELOAD]


@pytest.mark.session
def test_a_plain_torch_sessions_workers_fork_without_transformers_and_load_their_model(tmp_path):
    """A forkserver started as a session of the factory model would start it (in a process of
    its own: the test process's forkserver preloads every source's modules): the worker it forks
    has torch and the worker's code, not transformers, and loads the model all the same."""
    profile = write_plain_torch_profile(tmp_path)
    script = textwrap.dedent("""\
        import sys
        from energy_console.core.models import load_model
        from energy_console.core.session.profile_check import load_profile
        from energy_console.core.session.worker_process import forkserver_context

        def report(conn):
            before = sorted(m for m in ("torch", "transformers") if m in sys.modules)
            load_model(load_profile(sys.argv[1]).models[0], "cpu")
            conn.send((before, "transformers" in sys.modules))

        if __name__ == "__main__":
            context = forkserver_context(load_profile(sys.argv[1]))
            ours, theirs = context.Pipe()
            worker = context.Process(target=report, args=(theirs,))
            worker.start()
            print(ours.recv())
            worker.join()
        """)
    (tmp_path / "probe.py").write_text(script)
    done = subprocess.run([sys.executable, str(tmp_path / "probe.py"), str(profile)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "(['torch'], False)"


def test_preloading_onnx_starts_no_thread():
    """The forkserver forks workers from itself: a thread an import started would not be in
    them (and a lock it held would stay held). numpy's (OpenBLAS) is there with or without."""
    new_threads = subprocess.run(
        [sys.executable, "-c", "import os, numpy; before = len(os.listdir('/proc/self/task')); "
         f"import {ONNX_PACKAGE}; print(len(os.listdir('/proc/self/task')) - before)"],
        capture_output=True, text=True, check=True).stdout
    assert int(new_threads) == 0
