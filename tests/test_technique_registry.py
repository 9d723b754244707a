"""The technique registry is complete and in catalogue order whichever module is imported first."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import energy_console.core.compression as compression
import pytest

CATALOGUE = ["baseline", "fp16", "bf16", "dynamic-int8", "static-int8", "weight-int8",
             "weight-int4", "weight-fp8", "onnx-int8", "onnx-fp32", "onnx-fp16", "onnx-qdq-int8",
             "onnx-qdq-16x8", "magnitude-prune", "structured-prune", "sparse-2:4",
             "finetune", "qat", "weight-int8-qat", "kv-cache-quant", "static-cache"]
# every module of the registry's package, and the light core modules that read the registry
FIRST_IMPORTS = [f"{compression.__name__}.{m.name}" for m in pkgutil.iter_modules(
    compression.__path__)] + [compression.__name__] + [
    f"energy_console.core.{name}"
    for name in ("session.profile_check", "session.plan", "cli.commands")]


# One interpreter, forked once per module before it imports anything of the project: each child
# starts as a fresh interpreter would, without paying for a new one (24 of them).
FIRST_IMPORT_IN_CHILDREN = """\
import os, sys, traceback
for first in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            __import__(first)
            from energy_console.core.compression import techniques
            print(first, *techniques(), flush=True)
        except BaseException:
            print(first, "FAILED", repr(traceback.format_exc()), flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
"""


@pytest.fixture(scope="module")
def registry_by_first_import() -> dict[str, list[str]]:
    done = subprocess.run([sys.executable, "-c", FIRST_IMPORT_IN_CHILDREN, *FIRST_IMPORTS],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {first: names for first, *names in map(str.split, done.stdout.splitlines())}


@pytest.mark.parametrize("first", FIRST_IMPORTS)
def test_the_registry_is_complete_whatever_module_is_imported_first(
        first, registry_by_first_import):
    assert registry_by_first_import[first] == CATALOGUE


def test_a_chain_stops_at_the_first_step_that_cannot_apply_with_its_reason():
    from energy_console.core.compression import (
        NotApplicable,
        TechniqueContext,
        apply_technique,
        parse_technique,
    )

    chain = parse_technique({"chain": ["baseline", "sparse-2:4", "fp16"]})
    ctx = TechniqueContext("cpu", "text-classification", None, list)
    with pytest.raises(NotApplicable, match="^sparse-2:4 runs on cuda only, not on cpu$"):
        apply_technique(object(), chain, ctx)


def test_applying_a_chain_returns_the_module_its_last_step_gave():
    from energy_console.core.compression import TechniqueContext, apply_technique, parse_technique

    module = object()
    ctx = TechniqueContext("cpu", "text-classification", None, list)
    assert apply_technique(module, parse_technique("baseline"), ctx) is module


def test_techniques_known_to_break_an_architecture_say_so_in_the_list_and_the_setup():
    from energy_console.core.compression import techniques
    from energy_console.core.compression.catalogue import format_techniques
    from energy_console.tui.setup_choices import technique_prompt

    assert "    not for YOLOS: " in format_techniques()
    prune = techniques()["structured-prune"]
    assert "not for YOLOS, RT-DETR" in technique_prompt("structured-prune", prune, None)
