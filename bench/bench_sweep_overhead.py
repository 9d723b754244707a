"""How much of a session's wall time is spent measuring: the share inside timed windows, what each
model variant costs once (load, references, compress) and what each later input size adds.

Two sweeps, each a real `energy-console run` (real runner, real workers):

- demo: demo/tiny-bert-random × 4 techniques × 3 sequence lengths (12 runs, 0.5 s windows)
- realistic: a GPT-2 medium config (24 layers, 1024 wide, ~355M parameters, random weights)
  saved to disk once (~1.4 GB, kept in --model-dir), × 4 techniques × 3 sequence lengths,
  --window-s windows (default 8 s: a forward pass of this model takes about a second on 2
  cores, and each run also warms up and evaluates its quality outside the windows)

Figures come from the session's own files: wall time from session_started to session_finished
(events.jsonl), window time from each run's result.json `repeats`, per-variant and per-run
timings from result.json `timings_s`. Run it with another checkout's python to compare versions
(the profiles use no keys an older version lacks):

    .venv/bin/python bench/bench_sweep_overhead.py [--sweep demo|realistic|both] [--window-s 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEMO = """\
name: bench-demo
device: cpu
sensors: {{cpu_tdp_w: 20}}
models: [demo/tiny-bert-random]
techniques: [baseline, dynamic-int8, bf16, {{magnitude-prune: {{amount: 0.5}}}}]
inputs: {{batch_sizes: [1], sequence_lengths: [16, 32, 64]}}
protocol: {{idle_seconds: 2, warmup: 5, min_window_s: {window_s}, repeats: 3}}
"""

REALISTIC = """\
name: bench-realistic
device: cpu
sensors: {{cpu_tdp_w: 20}}
models:
  - path: {model}
    task: causal-lm
techniques:
  - baseline
  - dynamic-int8
  - {{magnitude-prune: {{amount: 0.5}}}}
  - chain: [{{magnitude-prune: {{amount: 0.5}}}}, dynamic-int8]
inputs: {{batch_sizes: [1], sequence_lengths: [8, 16, 32]}}
protocol: {{idle_seconds: 2, warmup: 2, min_window_s: {window_s}, repeats: 3}}
"""


def gpt2_medium(folder: Path) -> Path:
    """GPT-2 medium's shape with random weights, saved once."""
    if (folder / "config.json").is_file():
        return folder
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(n_layer=24, n_embd=1024, n_head=16, n_positions=1024, vocab_size=50257)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def run_session(profile_text: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    profile = folder / "profile.yaml"
    profile.write_text(profile_text)
    session = folder / "session"
    env = {**os.environ, "HF_HUB_OFFLINE": "1",
           "ENERGY_CONSOLE_LOCK": str(folder / "lock")}
    done = subprocess.run(
        [sys.executable, "-m", "energy_console.core.cli", "run", str(profile), "--quiet",
         "--session-dir", str(session)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"session failed ({done.returncode}): {done.stderr[-2000:]}")
    return session


def figures(session: Path) -> dict:
    events = [json.loads(line) for line in (session / "events.jsonl").read_text().splitlines()]
    started = next(e["t"] for e in events if e["kind"] == "session_started")
    ended = next(e["t"] for e in events if e["kind"] == "session_finished")
    idle_s = sum(e["duration_s"] for e in events if e["kind"] == "idle_baseline")
    first_idle_t = next((e["t"] for e in events if e["kind"] == "idle_baseline"), started)
    wall_s = ended - started
    window_s = warmup_s = quality_s = 0.0
    variant, later, outside = [], [], []
    finished_t = {e["run_id"]: e["t"] for e in events if e["kind"] == "run_finished"}
    order = [e["run_id"] for e in events if e["kind"] == "run_started"]
    previous_end = started
    for run_id in order:
        phases = [e for e in events if e["kind"] == "phase" and e["run_id"] == run_id]
        warmup_t = next(e["t"] for e in phases if e["phase"] == "warmup")
        repeat_t = next(e["t"] for e in phases if e["phase"] == "repeat")
        quality_t = next(e["t"] for e in phases if e["phase"] == "quality")
        warmup_s += repeat_t - warmup_t
        quality_s += finished_t[run_id] - quality_t
        result = json.loads((session / "runs" / run_id / "result.json").read_text())
        windows = sum(r["duration_s"] for r in result["repeats"])
        window_s += windows
        timings = result["timings_s"]
        if "worker_start_to_first_warmup" in timings:
            variant.append(timings)
        else:
            later.append(timings.get("run_start_to_first_warmup", float("nan")))
            outside.append(finished_t[run_id] - previous_end - windows)
        previous_end = finished_t[run_id]
    return {"runs": len(order), "wall_s": wall_s, "window_s": window_s, "variant": variant,
            "later": later, "outside": outside, "warmup_s": warmup_s, "quality_s": quality_s,
            "idle_s": idle_s, "startup_s": first_idle_t - idle_s - started}


def med(values: list[float]) -> str:
    return f"{statistics.median(values):.3f}" if values else "—"


def report(name: str, f: dict) -> None:
    print(f"{name}: {f['runs']} runs, wall {f['wall_s']:.1f} s, inside timed windows "
          f"{f['window_s']:.1f} s = {100 * f['window_s'] / f['wall_s']:.0f} %")
    work = f["window_s"] + f["warmup_s"] + f["quality_s"]
    print(f"  outside the windows: session start-up (sensors, forkserver imports) "
          f"{f['startup_s']:.1f} s, idle baselines {f['idle_s']:.1f} s, warm-up "
          f"{f['warmup_s']:.1f} s, quality and records after the windows {f['quality_s']:.1f} s; "
          f"the rest (load, references, compress, worker starts) "
          f"{f['wall_s'] - work - f['startup_s'] - f['idle_s']:.1f} s")
    v = f["variant"]
    print(f"  workers started: {len(v)}; per worker, median s: start to first warm-up "
          f"{med([t['worker_start_to_first_warmup'] for t in v])}, load "
          f"{med([t['load'] for t in v])}, compress {med([t['compress'] for t in v])}")
    if f["later"]:
        print(f"  later sizes of a variant ({len(f['later'])}), median s: run start to first "
              f"warm-up {med(f['later'])}; all time outside its windows (warm-up, quality, "
              f"flops, records) {med(f['outside'])}")
    else:
        print("  every run started its own worker (no later sizes in a worker)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sweep", choices=("demo", "realistic", "both"), default="both")
    parser.add_argument("--window-s", type=float, default=8.0, help="realistic sweep's windows")
    parser.add_argument("--model-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "energy-console-bench-gpt2-medium")
    parser.add_argument("--keep", type=Path, help="keep the sessions under this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        if args.sweep in ("demo", "both"):
            t0 = time.monotonic()
            session = run_session(DEMO.format(window_s=0.5), Path(tmp) / "demo")
            report(f"demo ({time.monotonic() - t0:.0f} s)", figures(session))
        if args.sweep in ("realistic", "both"):
            model = gpt2_medium(args.model_dir)
            folder = Path(tmp) / "realistic"
            t0 = time.monotonic()
            session = run_session(REALISTIC.format(model=model, window_s=args.window_s), folder)
            report(f"realistic, GPT-2 medium shape ({time.monotonic() - t0:.0f} s)",
                   figures(session))


if __name__ == "__main__":
    main()
