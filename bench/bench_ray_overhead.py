"""What Ray costs (`run --ray`) against a local lane (`run --gpus`), on this machine.

Figures, medians over several sessions:
1. a Ray call alone: a no-op method of an actor that holds what a station holds (`num_gpus=1`,
   one energy_console_gpu slot), called and awaited one at a time;
2. between runs: on one GPU, from a run's WorkerEnded to the next run's RunStarted (the record
   of the run written, the next one sent and its worker started), through one local lane and
   through one Ray station; the difference is Ray's overhead per run;
3. session start-up: SessionStarted to the first RunStarted (the head's idle baseline, then
   for Ray the station: its worker process, forkserver with torch preloaded, sensor
   calibration, its own idle baseline), paid once per session and station.

The profile: one tiny model, N runs, `exclusive: true` (one run at a time). The machine is a fake
lab box (tests/fakes: NVML with one GPU, Ray told it has one); workers run on the CPU. On a
shared 2-core VM the spread is wide: read the ratios, not the third digit.

    .venv/bin/python bench/bench_ray_overhead.py [--runs 4] [--tries 3] [--calls 30]
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
from energy_console.core.scale.placement import GpuLanes, RayCluster, dispatch_for  # noqa: E402
from energy_console.core.scale.ray_station import RAY_SLOT  # noqa: E402
from energy_console.core.session.profile_check import parse_profile  # noqa: E402
from energy_console.core.session.runner import Runner  # noqa: E402

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


class Station:
    def noop(self) -> int:
        return os.getpid()


def call_ms(calls: int) -> float:
    station = ray.remote(Station).options(num_gpus=1, resources={RAY_SLOT: 1}).remote()
    ray.get(station.noop.remote())  # started
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        ray.get(station.noop.remote())
        times.append((time.perf_counter() - t0) * 1e3)
    ray.kill(station)
    return statistics.median(times)


def session_figures(folder: Path, runs: int, ray_mode: bool) -> tuple[float, float]:
    """(median gap between runs on the GPU, start-up to the first run), seconds."""
    profile = parse_profile(PROFILE.format(batches=", ".join(str(b + 1) for b in range(runs))))
    session = folder / ("ray" if ray_mode else "lane")
    where = RayCluster("auto") if ray_mode else GpuLanes((0,))
    outcome = Runner(profile, session, dispatch=dispatch_for(where)).run()
    assert outcome.finished == runs, outcome
    events = [json.loads(line) for line in (session / "events.jsonl").read_text().splitlines()]
    starts = sorted(e["t"] for e in events if e["kind"] == "run_started")
    ends = sorted(e["t"] for e in events if e["kind"] == "worker_ended")
    session_t = next(e["t"] for e in events if e["kind"] == "session_started")
    gaps = [b - a for a, b in zip(ends, starts[1:], strict=False)]
    return statistics.median(gaps), starts[0] - session_t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--tries", type=int, default=3)
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    ray.init(num_cpus=2, num_gpus=1, resources={RAY_SLOT: 1}, include_dashboard=False,
             object_store_memory=80 * 1024 * 1024, log_to_driver=False)
    try:
        print(f"Ray actor call (no-op, num_gpus=1 + slot), one at a time: "
              f"{call_ms(args.calls):.1f} ms median over {args.calls}")
        figures: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        with tempfile.TemporaryDirectory() as folder:
            for i in range(args.tries):
                for ray_mode in (False, True):
                    figures[ray_mode].append(
                        session_figures(Path(folder) / f"t{i}", args.runs, ray_mode))
        for what, index in (("between runs on one GPU", 0), ("session start-up", 1)):
            lane = [f[index] for f in figures[False]]
            remote = [f[index] for f in figures[True]]
            print(f"{what} (s), median of {args.tries} sessions of {args.runs} runs: local lane "
                  f"{statistics.median(lane):.2f} {[round(x, 2) for x in lane]}, Ray "
                  f"{statistics.median(remote):.2f} {[round(x, 2) for x in remote]}")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
