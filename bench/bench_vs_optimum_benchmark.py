"""energy-console's generation timing side by side with optimum-benchmark's, on one model folder.

Run: .venv/bin/python bench/bench_vs_optimum_benchmark.py [--model DIR] [--tries 3]
     [--prompt-tokens 16] [--new-tokens 16]

Needs `pip install optimum-benchmark` (0.6; it adds accelerate, datasets and hydra, not torch)
on a box whose transformers it can import: optimum-benchmark 0.6.0 imports transformers'
SpecialTokensMixin, which transformers 5 no longer has, so with this project's transformers 5 it
stops at "cannot import name 'SpecialTokensMixin'" (run it where transformers < 5 is installed).
Without --model the demo LM (demo/tiny-gpt2-random) is saved to a temporary folder with its
tokenizer; any causal-LM folder with its tokenizer works (the issue's figures were a 135M model).

Both tools get the same folder and settings: CPU, batch 1, prompts of exactly --prompt-tokens
tokens (the shipped text prompts joined four at a time and cut to their last tokens;
optimum-benchmark draws random ids of that length), exactly --new-tokens new tokens
(energy-console's fixed length, optimum-benchmark's min_new_tokens), one torch thread, greedy.
The tools run interleaved, each `--tries` times, and the script prints, per try,
energy-console's TTFT p50 over optimum-benchmark's prefill latency p50 and its TPOT p50 over
optimum-benchmark's per-token latency p50, then the median ratio of each. energy-console runs
as a real session (runner, worker, sampler); optimum-benchmark inline in this process.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "data" / "prompts-text.jsonl"


def demo_folder(out: Path) -> Path:
    """The demo LM and its tokenizer saved as a model folder."""
    from energy_console.core.models import load_model
    from energy_console.core.models.demo_tokenizer import DemoTokenizer
    from energy_console.core.session.plan import expand
    from energy_console.core.session.profile_check import parse_profile

    spec = expand(parse_profile("name: d\nmodels: [demo/tiny-gpt2-random]\n"), "cpu")[0]
    loaded = load_model(spec.model, "cpu")
    loaded.module.save_pretrained(out)
    DemoTokenizer(loaded.config.vocab_size).save_pretrained(out)
    return out


def energy_console_try(model: Path, work: Path, prompt_tokens: int, new_tokens: int
                       ) -> dict[str, float]:
    work.mkdir(parents=True)
    texts = [json.loads(line)["prompt"] for line in PROMPTS.read_text().splitlines() if line]
    prompts = work / "prompts.jsonl"  # each longer than the cut, so every prompt is cut alike
    prompts.write_text("".join(json.dumps({"prompt": " ".join(texts[i:i + 4] + texts[:4])})
                               + "\n" for i in range(len(texts))))
    profile = work / "profile.yaml"
    profile.write_text(f"""\
name: vs-optimum-benchmark
device: cpu
models:
  - path: {model}
    workload: generate
    dataset: {prompts}
techniques: [baseline]
inputs: {{batch_sizes: [1], sequence_lengths: [{prompt_tokens}], max_new_tokens: [{new_tokens}]}}
protocol: {{idle_seconds: 1, warmup: 2, min_window_s: 2, repeats: 3, threads: 1}}
""")
    results = work / "results"
    subprocess.run([sys.executable, "-m", "energy_console.core.cli", "run", "--quiet",
                    "--results-dir", str(results), str(profile)], check=True, cwd=ROOT)
    session = max(results.iterdir(), key=lambda p: p.stat().st_mtime)
    with (session / "runs.csv").open(newline="") as handle:
        row = next(csv.DictReader(handle))
    if row["status"] != "finished":
        raise SystemExit(f"energy-console's run {row['status']}: {row['reason']}")
    return {"ttft_ms": float(row["ttft_ms_p50"]), "tpot_ms": float(row["tpot_ms_p50"]),
            "prompt_tokens": float(row["prompt_tokens"]),
            "output_tokens": float(row["output_tokens"])}


def optimum_benchmark_try(model: Path, prompt_tokens: int, new_tokens: int) -> dict[str, float]:
    import torch
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
        backend=PyTorchConfig(model=str(model), device="cpu", task="text-generation",
                              no_weights=False),
        scenario=InferenceConfig(
            latency=True, memory=False, energy=False, duration=6, iterations=10, warmup_runs=2,
            input_shapes={"batch_size": 1, "sequence_length": prompt_tokens},
            generate_kwargs={"max_new_tokens": new_tokens, "min_new_tokens": new_tokens,
                             "do_sample": False}),
    )
    report = Benchmark.launch(config)
    return {"prefill_ms": report.prefill.latency.p50 * 1000.0,
            "per_token_ms": report.per_token.latency.p50 * 1000.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="causal-LM folder with its tokenizer")
    parser.add_argument("--tries", type=int, default=3)
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vs-ob-") as tmp:
        work = Path(tmp)
        model = args.model or demo_folder(work / "model")
        ttft, tpot = [], []
        for n in range(1, args.tries + 1):
            ours = energy_console_try(model, work / f"try{n}", args.prompt_tokens,
                                      args.new_tokens)
            print(f"try {n}: energy-console TTFT {ours['ttft_ms']:.2f} ms, TPOT "
                  f"{ours['tpot_ms']:.2f} ms (prompt {ours['prompt_tokens']:.1f} tokens, "
                  f"{ours['output_tokens']:.1f} made)", flush=True)
            theirs = optimum_benchmark_try(model, args.prompt_tokens, args.new_tokens)
            ttft.append(ours["ttft_ms"] / theirs["prefill_ms"])
            tpot.append(ours["tpot_ms"] / theirs["per_token_ms"])
            print(f"try {n}: optimum-benchmark prefill {theirs['prefill_ms']:.2f} ms, per token "
                  f"{theirs['per_token_ms']:.2f} ms; ratios {ttft[-1]:.3f} and {tpot[-1]:.3f}",
                  flush=True)
        print(f"median ratio energy-console / optimum-benchmark: TTFT/prefill "
              f"{statistics.median(ttft):.3f} ({min(ttft):.3f}-{max(ttft):.3f}), TPOT/per-token "
              f"{statistics.median(tpot):.3f} ({min(tpot):.3f}-{max(tpot):.3f})")


if __name__ == "__main__":
    main()
