"""Size ratio and p50 latency ratio of every CPU technique against baseline, per demo model.

Run: .venv/bin/python bench/bench_techniques.py [iterations]
A simple timing loop (batch 1; seq 128 for text, 64 px for images), not the full protocol.
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import torch  # noqa: E402
from energy_console.core.compression import (  # noqa: E402
    NotApplicable,
    TechniqueContext,
    apply_technique,
)
from energy_console.core.models import load_model  # noqa: E402
from energy_console.core.models.size import measure_size  # noqa: E402
from energy_console.core.spec.profile import ModelEntry  # noqa: E402
from energy_console.core.spec.technique import Step, TechniqueSpec  # noqa: E402

MODELS = {
    "demo/tiny-bert-random": 128,
    "demo/tiny-gpt2-random": 128,
    "demo/tiny-resnet-random": 64,
    "demo/tiny-vit-random": 64,
}
TECHNIQUES = [
    ("fp16", {}),
    ("bf16", {}),
    ("dynamic-int8", {}),
    ("static-int8", {}),
    ("weight-int8", {}),
    ("weight-int4", {}),
    ("weight-fp8", {}),
    ("onnx-int8", {}),
    ("magnitude-prune", {"amount": 0.5}),
    ("structured-prune", {"ratio": 0.5}),
]


def p50_ms(module, inputs, iterations: int, no_grad: bool) -> float:
    times = []
    with torch.no_grad() if no_grad else torch.inference_mode():
        for _ in range(10):
            module(**inputs)
        for _ in range(iterations):
            t0 = time.perf_counter()
            module(**inputs)
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _is_float(value) -> bool:
    return isinstance(value, torch.Tensor) and torch.is_floating_point(value)


def bench(ref: str, size: int, iterations: int) -> None:
    loaded = load_model(ModelEntry(ref=ref, source="demo"), "cpu")
    inputs = loaded.make_inputs(1, size, seed=0)
    base_size = measure_size(loaded.module).size_bytes
    base_ms = p50_ms(loaded.module, inputs, iterations, False)
    print(f"\n{ref}  baseline {base_size / 1e6:.2f} MB, p50 {base_ms:.2f} ms")
    print(f"  {'technique':18s} {'size ratio':>10s} {'p50 ratio':>10s}")
    for name, params in TECHNIQUES:
        ctx = TechniqueContext(
            device="cpu",
            task=loaded.task,
            loaded=loaded,
            calibration_inputs=lambda: [
                loaded.make_inputs(1, size, seed=100 + i) for i in range(4)
            ],
        )
        spec = TechniqueSpec((Step(name, params),))
        try:
            module = apply_technique(copy.deepcopy(loaded.module), spec, ctx)
        except NotApplicable as exc:
            print(f"  {name:18s} skipped: {str(exc)[:70]}")
            continue
        run_inputs = {
            k: v.to(ctx.input_dtype) if ctx.input_dtype is not None and _is_float(v) else v
            for k, v in inputs.items()
        }
        ms = p50_ms(module, run_inputs, iterations, getattr(ctx, "needs_no_grad", False))
        # the baseline timed again beside each technique: this machine's speed drifts
        pair_base_ms = p50_ms(loaded.module, inputs, iterations, False)
        ratio = measure_size(module).size_bytes / base_size
        print(f"  {name:18s} {ratio:10.3f} {ms / pair_base_ms:10.2f}")


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {iterations} iterations")
    for ref, size in MODELS.items():
        bench(ref, size, iterations)


if __name__ == "__main__":
    main()
