"""What Ray costs per run (`run --ray`) against a local lane (`run --gpus`), on this machine.

Two figures, medians over several tries:
1. scheduling alone: a no-op task that asks what a run asks (`num_gpus=1`, one energy_console_gpu
   slot), submitted and awaited one at a time on a local cluster;
2. a run end to end: the same profile (one tiny model, N runs, `exclusive: true` so runs follow
   one another) measured through one local lane and through Ray; per run, the session's wall time
   minus the time its workers ran (RunStarted to WorkerEnded), i.e. what surrounds a run. Ray's
   share is the difference: the task's start, its sensor detection and calibration, its sampler,
   its own idle baseline (protocol.idle_seconds, here 0.3 s) and bringing the record back.

The machine is a fake lab box (tests/fakes: NVML with one GPU, Ray told it has one); workers run
on the CPU. On a shared 2-core VM the spread is wide: read the ratios, not the third digit.

    .venv/bin/python bench/bench_ray_overhead.py [--runs 4] [--tries 3] [--tasks 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FAKES = ROOT / "tests" / "fakes"
os.environ.update({
    "PYTHONPATH": os.pathsep.join([str(FAKES), os.environ.get("PYTHONPATH", "")]),
    "ENERGY_CONSOLE_TEST_FAKE_NVML": "gpus:1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false",
    "ENERGY_CONSOLE_LOCK": os.path.join(tempfile.gettempdir(), f"ec-bench-{os.getpid()}.lock"),
})
os.environ.pop("CUDA_VISIBLE_DEVICES", None)
sys.path.insert(0, str(FAKES))  # this process's `import pynvml` is the fake too

import ray  # noqa: E402
from energy_console.core.profile import parse_profile  # noqa: E402
from energy_console.core.ray_lab import RAY_SLOT  # noqa: E402
from energy_console.core.runner import Runner  # noqa: E402

PROFILE = """\
name: ray-bench
device: cpu
exclusive: true
sensors: {{cpu_tdp_w: 20}}
models: [demo/tiny-bert-random]
techniques: [baseline]
inputs: {{batch_sizes: [{batches}], sequence_lengths: [8]}}
protocol: {{idle_seconds: 0.3, warmup: 1, min_window_s: 0.2, repeats: 2, threads: 1}}
"""


def noop() -> int:
    return os.getpid()


def scheduling_ms(tasks: int) -> float:
    task = ray.remote(noop).options(num_gpus=1, resources={RAY_SLOT: 1}, max_retries=0)
    ray.get(task.remote())  # a worker started
    times = []
    for _ in range(tasks):
        t0 = time.perf_counter()
        ray.get(task.remote())
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def around_each_run_s(folder: Path, runs: int, ray_mode: bool) -> float:
    """(session wall - time inside workers) / runs: what surrounds a run."""
    profile = parse_profile(PROFILE.format(batches=", ".join(str(b + 1) for b in range(runs))))
    session = folder / ("ray" if ray_mode else "lane")
    t0 = time.time()
    outcome = Runner(profile, session, gpus=None if ray_mode else (0,),
                     ray_address="auto" if ray_mode else None).run()
    wall = time.time() - t0
    assert outcome.finished == runs, outcome
    events = [json.loads(line) for line in (session / "events.jsonl").read_text().splitlines()]
    starts = {e["run_id"]: e["t"] for e in events if e["kind"] == "run_started"}
    inside = sum(e["t"] - starts[e["run_id"]] for e in events if e["kind"] == "worker_ended")
    idle = next(e["duration_s"] for e in events if e["kind"] == "idle_baseline")
    return (wall - idle - inside) / runs  # the session's own idle baseline is paid once


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--tries", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=30)
    args = parser.parse_args()
    ray.init(num_cpus=2, num_gpus=1, resources={RAY_SLOT: 1}, include_dashboard=False,
             object_store_memory=80 * 1024 * 1024, log_to_driver=False)
    try:
        print(f"Ray no-op task, num_gpus=1 + slot, one at a time: "
              f"{scheduling_ms(args.tasks):.1f} ms median over {args.tasks}")
        lane, remote = [], []
        with tempfile.TemporaryDirectory() as folder:
            for i in range(args.tries):
                lane.append(around_each_run_s(Path(folder) / f"t{i}", args.runs, False))
                remote.append(around_each_run_s(Path(folder) / f"t{i}", args.runs, True))
        med_lane, med_ray = statistics.median(lane), statistics.median(remote)
        print(f"around each run (s), median of {args.tries} sessions of {args.runs} runs: "
              f"local lane {med_lane:.2f} {[round(x, 2) for x in lane]}, "
              f"Ray {med_ray:.2f} {[round(x, 2) for x in remote]}")
        print(f"Ray's overhead per run: {med_ray - med_lane:.2f} s "
              f"(of which 0.30 s is the node's own idle baseline)")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
