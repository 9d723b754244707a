"""energy-console beside CodeCarbon on one workload: what each reports and what measuring costs.

The workload: a demo model's forward pass (default demo/tiny-bert-random, batch 1, 64 tokens, one
torch thread), the same number of inferences for both tools.

- energy-console: a real session (`energy-console run` on a profile written here: the model,
  `baseline`, a fixed number of iterations per window). Its figure is the timed windows' energy
  per inference with its 95 % interval, idle baseline and dynamic energy beside it. The measuring
  side is the runner process (the sampler thread, and the orchestration and records around it):
  its CPU time, all threads, polled with psutil, per second of the session's wall time.
- CodeCarbon: its OfflineEmissionsTracker (default settings, `measure_power_secs` 15, machine
  tracking mode) started and stopped around the same loop, in the same process as CodeCarbon
  is used in a notebook. It runs in its own venv (CodeCarbon is no dependency of this project):

      python3 -m venv .venv-codecarbon && .venv-codecarbon/bin/pip install codecarbon

  and imports torch, transformers and energy_console (for the same demo model and inputs) from
  this project's venv, added after its own packages. Its figure is the tracked energy over the
  number of inferences, no interval. The measuring side: CPU time of start() and stop() on the
  main thread plus every other thread's CPU time during the loop, per second tracked.

What it shows: both tools' figures for one workload on this machine, and what they count. What
it does not show: which is right. On a box without RAPL or NVML both are models (energy-console's
CPU estimate, CodeCarbon's TDP x CPU load and a RAM constant), so their ratio is a ratio of models.

    .venv/bin/python bench/bench_vs_codecarbon.py [--inferences 2000] [--repeats 5]
        [--model demo/tiny-bert-random] [--codecarbon-python .venv-codecarbon/bin/python]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODECARBON_PYTHON = ROOT / ".venv-codecarbon" / "bin" / "python"
BATCH, SEQUENCE, WARMUP, THREADS = 1, 64, 5, 1
J_PER_KWH = 3.6e6
PROFILE = """name: vs-codecarbon
device: cpu
models:
  - demo: {model}
techniques: [baseline]
inputs: {{batch_sizes: [{batch}], sequence_lengths: [{sequence}]}}
protocol:
  idle_seconds: 2
  warmup: {warmup}
  iterations: {iterations}
  repeats: {repeats}
  sample_hz: 20
  threads: {threads}
"""


def energy_console_side(model: str, inferences: int, repeats: int, tmp: Path) -> dict:
    """A real session of `inferences` timed inferences; its row, sensors and runner CPU."""
    from energy_console.core.measure.sampler import DISPLAY_HZ
    from energy_console.core.measure.sensors.base import POLLED_POWER

    profile = tmp / "profile.yaml"
    profile.write_text(PROFILE.format(model=model, batch=BATCH, sequence=SEQUENCE,
                                      warmup=WARMUP, iterations=inferences // repeats,
                                      repeats=repeats, threads=THREADS))
    results = tmp / "results"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    wall0 = time.monotonic()
    runner = subprocess.Popen(
        [sys.executable, "-m", "energy_console", "run", str(profile), "--results-dir",
         str(results)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    threads_cpu_s: dict[int, float] = {}  # the runner's threads, their last reading
    wakes: dict[int, tuple[int, float, float]] = {}  # tid: (context switches, first, last seen)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(runner.stdout), daemon=True)
    reader.start()
    while runner.poll() is None:
        threads_cpu_s.update(thread_cpu_s(runner.pid))
        now = time.monotonic()
        for tid in threads_cpu_s:
            switches = context_switches(runner.pid, tid)
            if switches is not None:
                wakes[tid] = (switches, wakes.get(tid, (0, now, now))[1], now)
        time.sleep(0.2)
    wall_s = time.monotonic() - wall0
    reader.join()
    if runner.returncode != 0:
        raise RuntimeError("energy-console run failed:\n" + "".join(output[-20:]))
    (session,) = [p for p in results.iterdir() if p.is_dir()]
    with open(session / "runs.csv", newline="") as f:
        (row,) = [r for r in csv.DictReader(f) if r["status"] == "finished"]
    sensors = json.loads((session / "session.json").read_text())["sensors"]
    main_s = threads_cpu_s.pop(runner.pid, 0.0)
    # Python 3.11 names no OS thread: the sampler is the one waking at its rate (the display
    # rate where no sensor is power-only), beside the progress display's refresh thread (10 Hz)
    sampler_hz = 20.0 if any(s["method"] == POLLED_POWER for s in sensors) else DISPLAY_HZ
    rates = {tid: n / max(last - first, 1.0) for tid, (n, first, last) in wakes.items()
             if tid in threads_cpu_s}
    sampler = min(rates, key=lambda tid: abs(rates[tid] - sampler_hz))
    switches, first, last = wakes[sampler]
    return {"row": row, "sensors": sensors, "runner_cpu_s": main_s + sum(threads_cpu_s.values()),
            "sampler_cpu_s": threads_cpu_s[sampler], "sampler_s": last - first,
            "sampler_wakes_per_s": rates[sampler], "wall_s": wall_s,
            "other_threads": [(threads_cpu_s[tid], rates[tid]) for tid in rates
                              if tid != sampler]}


def thread_cpu_s(pid: int, skip: int | None = None) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of process `pid` but `skip`, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process ended
        return found
    for task in tasks:
        tid = int(task.name)
        if tid == skip:
            continue
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        found[tid] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return found


def context_switches(pid: int, tid: int) -> int | None:
    """How often a thread of `pid` gave up the CPU (its wake-ups, near enough), from /proc."""
    try:
        status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
    except OSError:
        return None
    (line,) = [line for line in status.splitlines() if line.startswith("voluntary_ctxt")]
    return int(line.split()[1])


def own_and_children_cpu_s() -> float:
    """The main thread's CPU time and that of the child processes it waited for (CodeCarbon
    reads the CPU model in a subprocess)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.thread_time() + children.ru_utime + children.ru_stime


def codecarbon_side(model: str, inferences: int) -> dict:
    """In CodeCarbon's venv: the same model and loop inside its tracker (printed as JSON)."""
    import site

    site.addsitedir(str(ROOT / ".venv" / "lib" / f"python{sys.version_info.major}."
                        f"{sys.version_info.minor}" / "site-packages"))
    import logging

    import codecarbon
    import torch
    from codecarbon import OfflineEmissionsTracker
    from energy_console.core.models.demo import DEMO_MODELS, WEIGHT_SEED, text_input_factory

    torch.set_num_threads(THREADS)
    torch.manual_seed(WEIGHT_SEED)
    module = DEMO_MODELS[model].build().eval()
    inputs = text_input_factory(module.config.vocab_size, "cpu")(BATCH, SEQUENCE)
    with torch.inference_mode():
        for _ in range(WARMUP):
            module(**inputs)

    log: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: log.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("codecarbon").addHandler(handler)
    main = threading.get_native_id()
    before = thread_cpu_s(os.getpid(), skip=main)
    cpu0 = own_and_children_cpu_s()
    tracker = OfflineEmissionsTracker(country_iso_code="USA", save_to_file=False,
                                      log_level="warning")
    tracker.start()
    start_cpu_s = own_and_children_cpu_s() - cpu0
    wall0 = time.monotonic()
    with torch.inference_mode():
        for _ in range(inferences):
            module(**inputs)
    loop_s = time.monotonic() - wall0
    after = thread_cpu_s(os.getpid(), skip=main)  # before stop(): it ends the tracker's thread
    cpu1 = own_and_children_cpu_s()
    tracker.stop()
    stop_cpu_s = own_and_children_cpu_s() - cpu1
    others_s = sum(cpu - before.get(tid, 0.0) for tid, cpu in after.items())
    data = tracker.final_emissions_data
    return {
        "version": codecarbon.__version__, "energy_kwh": data.energy_consumed,
        "cpu_kwh": data.cpu_energy, "ram_kwh": data.ram_energy, "gpu_kwh": data.gpu_energy,
        "cpu_power_w": data.cpu_power, "ram_power_w": data.ram_power,
        "cpu_model": data.cpu_model, "tracking_mode": data.tracking_mode,
        "duration_s": data.duration, "loop_s": loop_s, "start_cpu_s": start_cpu_s,
        "stop_cpu_s": stop_cpu_s, "threads_cpu_s": others_s,
        "notes": [line.split("\n")[0].strip() for line in log
                  if "W per" in line or "Falling back" in line],
    }


def milli(value: float) -> str:
    return f"{value * 1e3:.3g} mJ"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="demo/tiny-bert-random")
    parser.add_argument("--inferences", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--codecarbon-python", type=Path, default=CODECARBON_PYTHON)
    parser.add_argument("--codecarbon-side", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.codecarbon_side:
        print(json.dumps(codecarbon_side(args.model, args.inferences)))
        return
    if not args.codecarbon_python.exists():
        sys.exit(f"no CodeCarbon venv at {args.codecarbon_python}: python3 -m venv "
                 ".venv-codecarbon && .venv-codecarbon/bin/pip install codecarbon")

    with tempfile.TemporaryDirectory() as tmp:
        ec = energy_console_side(args.model, args.inferences, args.repeats, Path(tmp))
    done = subprocess.run(
        [str(args.codecarbon_python), __file__, "--codecarbon-side", "--model", args.model,
         "--inferences", str(args.inferences)],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False)
    if done.returncode != 0:
        sys.exit("CodeCarbon side failed:\n" + done.stderr[-2000:])
    cc = json.loads(done.stdout.strip().splitlines()[-1])

    row = ec["row"]
    per_inference_j = float(row["energy_j_per_inference"])
    ci_j = float(row["energy_j_per_inference_ci95"] or "nan")
    sensors = ", ".join(f"{s['name']} ({s['method']}: {s['detail']})" for s in ec["sensors"])
    cc_j = cc["energy_kwh"] * J_PER_KWH / args.inferences
    cc_cpu_s = cc["start_cpu_s"] + cc["stop_cpu_s"] + cc["threads_cpu_s"]
    table = [
        ("", "energy-console", f"CodeCarbon {cc['version']}"),
        ("energy / inference", f"{milli(per_inference_j)} ±{milli(ci_j)} (95 %)",
         f"{milli(cc_j)} (no interval)"),
        ("  of which above idle", f"{milli(float(row['dynamic_energy_j_per_inference']))} "
         f"(idle {float(row['idle_power_w']):.1f} W subtracted)", "— (no idle subtraction)"),
        ("  CPU / RAM", "CPU only (the sensors below)",
         f"{milli(cc['cpu_kwh'] * J_PER_KWH / args.inferences)} / "
         f"{milli(cc['ram_kwh'] * J_PER_KWH / args.inferences)} "
         f"({cc['cpu_power_w']:.1f} W / {cc['ram_power_w']:.1f} W)"),
        ("what it counts", f"{row['energy_source']}: {sensors}",
         f"the {cc['tracking_mode']}'s CPU ({cc['cpu_model']}: TDP x CPU load) and RAM "
         "(a constant per GB), no GPU here"),
        ("inferences counted", f"{args.inferences} in {args.repeats} timed windows "
         f"(warm-up {WARMUP} and idle outside)", f"{args.inferences} (warm-up {WARMUP} outside), "
         f"{cc['duration_s']:.1f} s tracked"),
        ("sampling", "counters and the estimate: window edges and 2 Hz; driver power samples: "
         "window edges and 1 Hz; polled power 20 Hz",
         "every 15 s (measure_power_secs) and at stop()"),
        ("measuring CPU, ongoing", f"the runner's sampler thread {ec['sampler_cpu_s']:.2f} s "
         f"over {ec['sampler_s']:.1f} s = {100 * ec['sampler_cpu_s'] / ec['sampler_s']:.2f} % "
         f"of a core (waking {ec['sampler_wakes_per_s']:.1f} times a second)",
         f"its threads {cc['threads_cpu_s']:.2f} s over {cc['loop_s']:.1f} s = "
         f"{100 * cc['threads_cpu_s'] / cc['loop_s']:.2f} % of a core"),
        ("measuring CPU, in all", f"the whole runner (start-up, idle baseline, orchestration, "
         f"records) {ec['runner_cpu_s']:.2f} s = {100 * ec['runner_cpu_s'] / ec['wall_s']:.1f} %",
         f"start {cc['start_cpu_s']:.2f} s + stop {cc['stop_cpu_s']:.2f} s + threads = "
         f"{cc_cpu_s:.2f} s = {100 * cc_cpu_s / cc['loop_s']:.1f} % of the loop's time"),
        ("latency p50", f"{float(row['latency_ms_p50']):.2f} ms",
         f"{1e3 * cc['loop_s'] / args.inferences:.2f} ms mean (loop time / inferences)"),
    ]
    width = max(len(r[0]) for r in table)
    for label, ours, theirs in table:
        print(f"{label:<{width}}  | {ours}\n{'':<{width}}  | {theirs}")
    print(f"energy-console's interval in parts: {row['energy_uncertainty']}")
    print("the runner's other threads (CPU s, wake-ups a second; the progress display's "
          "refresh among them): " + ", ".join(f"{cpu:.2f} s, {rate:.1f}/s"
                                              for cpu, rate in ec["other_threads"]))
    print("CodeCarbon said: " + " / ".join(cc["notes"]))
    print(f"ratio CodeCarbon / energy-console (energy per inference): {cc_j / per_inference_j:.2f}")


if __name__ == "__main__":
    main()
