"""optimum-benchmark's half of bench/bench_vs_optimum_benchmark.py: one inline benchmark of a
causal-LM folder, its prefill and per-token decode latency p50 printed as one JSON line.

It runs in optimum-benchmark's own virtual environment (transformers < 5: optimum-benchmark 0.6.0
imports transformers' SpecialTokensMixin, which transformers 5 no longer has), started by the
comparison script; it imports nothing of energy-console. Run alone:
    <venv>/bin/python bench/optimum_benchmark_side.py MODEL_DIR --prompt-tokens 16 --new-tokens 16
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="causal-LM folder (config.json and weights)")
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=16)
    args = parser.parse_args()

    import torch
    import transformers
    from optimum_benchmark import (
        Benchmark,
        BenchmarkConfig,
        InferenceConfig,
        InlineConfig,
        PyTorchConfig,
    )

    torch.set_num_threads(1)
    config = BenchmarkConfig(
        name="vs-energy-console",
        launcher=InlineConfig(),
        backend=PyTorchConfig(model=args.model, device="cpu", task="text-generation",
                              no_weights=False),
        scenario=InferenceConfig(
            latency=True, memory=False, energy=False, duration=6, iterations=10, warmup_runs=2,
            input_shapes={"batch_size": 1, "sequence_length": args.prompt_tokens},
            generate_kwargs={"max_new_tokens": args.new_tokens,
                             "min_new_tokens": args.new_tokens, "do_sample": False}),
    )
    report = Benchmark.launch(config)
    print(json.dumps({"prefill_ms": report.prefill.latency.p50 * 1000.0,
                      "per_token_ms": report.per_token.latency.p50 * 1000.0,
                      "transformers": transformers.__version__,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
