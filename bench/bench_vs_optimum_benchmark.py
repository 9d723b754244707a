"""energy-console's generation timing side by side with optimum-benchmark's, on one model folder.

Run: .venv/bin/python bench/bench_vs_optimum_benchmark.py [--model DIR | --gpt2-small]
     [--tries 5] [--prompt-tokens 16] [--new-tokens 16] [--ob-venv DIR]

optimum-benchmark runs in its own virtual environment: its 0.6.0 imports transformers'
SpecialTokensMixin, which transformers 5 (this project's) no longer has, so it needs
transformers < 5. On first use the script makes that environment (default
.venv-optimum-benchmark/ at the checkout's root, git-ignored; --ob-venv picks another folder):
`python -m venv`, a .pth file that puts the folder holding this project's torch (its
site-packages) on its path, so no second torch is installed (a plain `pip install torch` would
fetch a multi-GB CUDA build), then one pip command, printed before it runs, that installs
optimum-benchmark==0.6.0 and transformers<5 and pins torch to the build already there (here
torch==2.13.0+cpu: pip finds it satisfied and downloads none). Its packages come before the
.pth folder on its path, so its transformers 4 (and the huggingface-hub and tokenizers that go
with it) hide the project's.

Without --model the demo LM (demo/tiny-gpt2-random, 0.6M parameters) is saved to a temporary
folder with its tokenizer, or with --gpt2-small a GPT-2-small-shaped LM (124M parameters, random
weights, the demo tokenizer); transformers 4.57 reads the folder transformers 5 wrote, and
optimum-benchmark needs no tokenizer (it draws random prompt ids). Any causal-LM folder with its
tokenizer works (the issue's figures were a 135M model).

Both tools get the same folder and settings: CPU, batch 1, prompts of exactly --prompt-tokens
tokens (the shipped text prompts joined four at a time and cut to their last tokens;
optimum-benchmark draws random ids of that length), exactly --new-tokens new tokens
(energy-console's fixed length, optimum-benchmark's min_new_tokens), one torch thread, greedy.
The tools run interleaved, each `--tries` times, and the script prints, per try,
energy-console's TTFT p50 over optimum-benchmark's prefill latency p50 and its TPOT p50 over
optimum-benchmark's per-token latency p50, then the median ratio of each. energy-console runs
as a real session (runner, worker, sampler) from this environment, with a machine lock of its own
(optimum-benchmark takes none); optimum-benchmark inline in a process of its own environment
(bench/optimum_benchmark_side.py). On a loaded machine single tries scatter widely: read the
medians, and compare on a quiet one.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import importlib.util
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "data" / "prompts-text.jsonl"
OB_SIDE = ROOT / "bench" / "optimum_benchmark_side.py"
OB_VENV = ROOT / ".venv-optimum-benchmark"
OB_PACKAGES = ("optimum-benchmark==0.6.0", "transformers<5")


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


def gpt2_small_folder(out: Path) -> Path:
    """GPT-2 small's shape (12 layers, 768 wide, 124M parameters) with random weights and the
    demo tokenizer: a model whose tokens cost compute, not only Python calls, made offline."""
    import torch
    from energy_console.core.models.demo_tokenizer import DemoTokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=12, n_embd=768, n_head=12, n_positions=1024, vocab_size=50257)
    GPT2LMHeadModel(config).save_pretrained(out)
    DemoTokenizer(config.vocab_size).save_pretrained(out)
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
    # its own machine lock, as optimum-benchmark takes none: a timing comparison, not an energy one
    env = {**os.environ, "ENERGY_CONSOLE_LOCK": str(work / "lock")}
    subprocess.run([sys.executable, "-m", "energy_console.core.cli", "run", "--quiet",
                    "--results-dir", str(results), str(profile)], check=True, cwd=ROOT, env=env)
    session = max(results.iterdir(), key=lambda p: p.stat().st_mtime)
    with (session / "runs.csv").open(newline="") as handle:
        row = next(csv.DictReader(handle))
    if row["status"] != "finished":
        raise SystemExit(f"energy-console's run {row['status']}: {row['reason']}")
    return {"ttft_ms": float(row["ttft_ms_p50"]), "tpot_ms": float(row["tpot_ms_p50"]),
            "prompt_tokens": float(row["prompt_tokens"]),
            "output_tokens": float(row["output_tokens"])}


def optimum_benchmark_venv(venv: Path) -> Path:
    """The python of optimum-benchmark's environment, made (see the module's doc) if it has none."""
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import optimum_benchmark"],
                                          capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                           "'purelib'))"], check=True, capture_output=True, text=True)
    torch_spec = importlib.util.find_spec("torch")
    assert torch_spec is not None and torch_spec.origin is not None, "this project needs torch"
    torch_folder = Path(torch_spec.origin).parents[1]
    (Path(site.stdout.strip()) / "zz_project_torch.pth").write_text(f"{torch_folder}\n")
    pip = [str(python), "-m", "pip", "install", *OB_PACKAGES,
           f"torch=={importlib.metadata.version('torch')}"]
    print("optimum-benchmark's environment:", shlex.join(pip), flush=True)
    subprocess.run(pip, check=True)
    return python


def optimum_benchmark_try(python: Path, model: Path, prompt_tokens: int, new_tokens: int
                          ) -> dict[str, Any]:
    out = subprocess.run([str(python), str(OB_SIDE), str(model), "--prompt-tokens",
                          str(prompt_tokens), "--new-tokens", str(new_tokens)],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"optimum-benchmark failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="causal-LM folder with its tokenizer")
    parser.add_argument("--gpt2-small", action="store_true",
                        help="without --model: a random GPT-2-small-shaped LM instead of the demo")
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--ob-venv", type=Path, default=OB_VENV,
                        help="optimum-benchmark's virtual environment (made on first use)")
    args = parser.parse_args()
    python = optimum_benchmark_venv(args.ob_venv)
    with tempfile.TemporaryDirectory(prefix="vs-ob-") as tmp:
        work = Path(tmp)
        model = args.model or (gpt2_small_folder if args.gpt2_small else demo_folder)(
            work / "model")
        ttft, tpot = [], []
        for n in range(1, args.tries + 1):
            ours = energy_console_try(model, work / f"try{n}", args.prompt_tokens,
                                      args.new_tokens)
            print(f"try {n}: energy-console TTFT {ours['ttft_ms']:.2f} ms, TPOT "
                  f"{ours['tpot_ms']:.2f} ms (prompt {ours['prompt_tokens']:.1f} tokens, "
                  f"{ours['output_tokens']:.1f} made)", flush=True)
            theirs = optimum_benchmark_try(python, model, args.prompt_tokens, args.new_tokens)
            ttft.append(ours["ttft_ms"] / theirs["prefill_ms"])
            tpot.append(ours["tpot_ms"] / theirs["per_token_ms"])
            print(f"try {n}: optimum-benchmark (transformers {theirs['transformers']}, torch "
                  f"{theirs['torch']}) prefill {theirs['prefill_ms']:.2f} ms, per token "
                  f"{theirs['per_token_ms']:.2f} ms; ratios {ttft[-1]:.3f} and {tpot[-1]:.3f}",
                  flush=True)
        print(f"median ratio energy-console / optimum-benchmark: TTFT/prefill "
              f"{statistics.median(ttft):.3f} ({min(ttft):.3f}-{max(ttft):.3f}), TPOT/per-token "
              f"{statistics.median(tpot):.3f} ({min(tpot):.3f}-{max(tpot):.3f})")


if __name__ == "__main__":
    main()
