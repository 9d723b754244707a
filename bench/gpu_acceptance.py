"""GPU acceptance run: every technique that applies on CUDA, measured, in one command (< 10 min).

Run on a GPU box:  .venv/bin/python bench/gpu_acceptance.py [--device cuda:0] [--results-dir DIR]
Re-judge a session it wrote:  .venv/bin/python bench/gpu_acceptance.py --verdict SESSION_DIR

It writes a profile (the four offline demo models × baseline, fp16, bf16, dynamic-int8 through
torchao, weight-int8 / weight-int4 / weight-fp8 through quanto, sparse-2:4, structured-prune and a
chain), checks the GPU's counter against its power under a matmul (core.gpu_probe.cross_check), runs
the profile with `energy-console run` while it watches the GPU's memory between runs, and judges:

- every run finished, or was skipped with a reason (a failure is a failure);
- GPU energy is measured by the counter: session.json has the GPU's sensor as a measured counter
  and every finished run is charged with it and is `measured`;
- the counter and the integrated power agree within CROSS_CHECK_BOUND_PCT under load;
- CUDA memory returns to its baseline after each run (NVML's used memory when each run ended,
  against before the session), within MEMORY_TOLERANCE_MIB; each run's peak_mem_mb is shown.

The verdict table is printed and written to the session dir (acceptance.md, acceptance.json).
Exit status: 0 all checks pass, 1 a check failed, 77 skipped (no CUDA device: nothing to accept).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

EXIT_PASS, EXIT_FAIL, EXIT_SKIPPED = 0, 1, 77
MEMORY_TOLERANCE_MIB = 128.0
ROOT = Path(__file__).resolve().parent.parent

MODELS = ["demo/tiny-bert-random", "demo/tiny-gpt2-random", "demo/tiny-resnet-random",
          "demo/tiny-vit-random"]
TECHNIQUES = ["baseline", "fp16", "bf16", "dynamic-int8", "weight-int8", "weight-int4",
              "weight-fp8", "sparse-2:4", "structured-prune",
              {"chain": [{"structured-prune": {"ratio": 0.3}}, "weight-int8"]}]
MEMORY_FILE, CROSS_CHECK_FILE = "gpu_memory.csv", "cross_check.json"


@dataclass(frozen=True)
class Verdict:
    check: str
    ok: bool
    detail: str


# ------------------------------------------------------------------ the profile
def profile_text(device: str) -> str:
    import yaml

    return yaml.safe_dump({
        "name": "gpu-acceptance",
        "device": device,
        "models": MODELS,
        "techniques": TECHNIQUES,
        "inputs": {"batch_sizes": [8], "sequence_lengths": [128], "resolutions": [64]},
        # 1 s windows: ten steps of NVML's 100 ms counter; 3 repeats for an interval
        "protocol": {"idle_seconds": 3, "warmup": 10, "min_window_s": 1.0, "repeats": 3,
                     "sample_hz": 20, "run_timeout_s": 120},
    }, sort_keys=False)


def cuda_problem(device: str) -> str | None:
    """Why there is nothing to accept on `device`, or None when torch can use it."""
    try:
        import torch
    except ImportError as exc:
        return f"torch cannot be imported ({exc})"
    if not torch.cuda.is_available():
        cuda = torch.version.cuda
        build = "a CPU build" if cuda is None else f"built for CUDA {cuda}"
        return (f"no CUDA device: torch {torch.__version__} ({build}) sees none. Run this on a "
                "GPU box with the CUDA build of torch (README, Install)")
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        return f"{device} does not exist: torch sees {torch.cuda.device_count()} CUDA device(s)"
    return None


# ------------------------------------------------------------------ evidence while it runs
def record_cross_check(session_dir: Path, gpu: int, seconds: float = 4.0) -> None:
    """The counter against the integrated power under a matmul on the GPU (cross_check.json)."""
    from energy_console.core.cli import gpu_probe

    load = gpu_probe.start_gpu_load(duration_s=seconds + 30)
    try:
        checks = gpu_probe.cross_check([gpu], duration_s=seconds, under_load=load.devices > 0)
    finally:
        load.stop()
    data = [{**asdict(c), "disagreement_pct": c.disagreement_pct} for c in checks]
    (session_dir / CROSS_CHECK_FILE).write_text(json.dumps(
        {"bound_pct": gpu_probe.CROSS_CHECK_BOUND_PCT, "load": load.note or "matmul",
         "checks": data}, indent=1))


def run_and_watch_memory(session_dir: Path, profile: Path, device: str, gpu: int) -> int:
    """`energy-console run`, reading the GPU's used memory before it and whenever a run ends.

    A run's end event is written after its worker was stopped, so memory then should be back at
    the baseline; the next worker needs far longer than one 20 ms poll to create a CUDA context."""
    from energy_console.core.cli.gpu_probe import gpu_memory_used_mib

    rows = [("before-session", "", gpu_memory_used_mib(gpu))]
    process = subprocess.Popen([sys.executable, "-m", "energy_console", "run", str(profile),
                                "--session-dir", str(session_dir), "--device", device, "--quiet"],
                               cwd=ROOT)
    events = session_dir / "events.jsonl"
    offset, pending = 0, b""
    while True:
        done = process.poll() is not None
        if events.exists():
            with events.open("rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            offset += len(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                event = json.loads(line)
                if event.get("kind") in ("run_finished", "run_skipped", "run_failed"):
                    rows.append(("after-run", event["run_id"], gpu_memory_used_mib(gpu)))
        if done:
            break
        time.sleep(0.02)
    with (session_dir / MEMORY_FILE).open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["when", "run_id", "used_mib"])
        writer.writerows(rows)
    return process.returncode


# ------------------------------------------------------------------ the verdict
def judge(session_dir: Path, gpu: int | None = None,
          memory_tolerance_mib: float = MEMORY_TOLERANCE_MIB) -> list[Verdict]:
    """Every check, from what the session dir holds (the runner's files and the evidence above)."""
    from energy_console.core.store.session_dir import read_runs

    verdicts: list[Verdict] = []
    info = json.loads((session_dir / "session.json").read_text())
    runs = read_runs(session_dir)
    sensor = _gpu_sensor(info, gpu)

    for run in runs:
        if run.status == "finished":
            verdicts.append(Verdict(f"run {run.run_id}", True,
                                    f"finished; peak_mem {_mib(run.peak_mem_mb)}"))
        elif run.status == "skipped":
            verdicts.append(Verdict(f"run {run.run_id}", bool(run.reason.strip()),
                                    f"skipped: {run.reason or 'NO REASON GIVEN'}"))
        else:
            verdicts.append(Verdict(f"run {run.run_id}", False, f"failed: {run.reason}"))
    finished = [r for r in runs if r.finished]
    verdicts.append(Verdict("runs", bool(finished) and len(runs) == info.get("total_runs",
                                                                              len(runs)),
                            f"{len(runs)} of {info.get('total_runs', '?')} runs ended, "
                            f"{len(finished)} finished"))

    if sensor is None:
        verdicts.append(Verdict("gpu energy measured", False,
                                "session.json lists no measured NVML counter for the GPU"))
    else:
        name = sensor["name"]
        not_measured = [r.run_id for r in finished
                        if name not in r.sensors or r.energy_source != "measured"]
        verdicts.append(Verdict(
            "gpu energy measured", not not_measured,
            f"{name} ({sensor.get('detail', '')}), counter every "
            f"{_ms(sensor.get('update_period_s'))}; " + (
                f"{len(finished)} finished runs charged with it, all measured" if not not_measured
                else f"not measured by it: {', '.join(not_measured)}")))

    verdicts.append(_cross_check_verdict(session_dir, None if sensor is None else sensor["name"]))
    verdicts.append(_memory_verdict(session_dir, memory_tolerance_mib))
    return verdicts


def _gpu_sensor(info: dict[str, Any], gpu: int | None) -> dict[str, Any] | None:
    for sensor in info.get("sensors", []):
        if (sensor.get("kind") == "gpu" and sensor.get("measured")
                and sensor.get("method") == "counter"
                and (gpu is None or sensor.get("device_index") == gpu)):
            return sensor
    return None


def _cross_check_verdict(session_dir: Path, sensor: str | None) -> Verdict:
    path = session_dir / CROSS_CHECK_FILE
    if not path.exists():
        return Verdict("counter vs power", False, f"no {CROSS_CHECK_FILE}: cross-check not run")
    data = json.loads(path.read_text())
    bound = data["bound_pct"]
    checks = [c for c in data["checks"] if sensor is None or c["sensor"] == sensor]
    if not checks:
        return Verdict("counter vs power", False,
                       f"no cross-check for {sensor} (no counter steps seen: {data['load']})")
    (check,) = checks[:1]
    pct = check["disagreement_pct"]
    where = "under a matmul" if check["under_load"] else f"idle ({data['load']})"
    return Verdict("counter vs power", abs(pct) <= bound and check["counter_j"] > 0,
                   f"{check['sensor']}: counter {check['counter_j']:.1f} J vs "
                   f"{check['power_source']} {check['power_j']:.1f} J over "
                   f"{check['window_s']:.2f} s {where}: {pct:+.2f} % (bound ±{bound:.0f} %)")


def _memory_verdict(session_dir: Path, tolerance_mib: float) -> Verdict:
    path = session_dir / MEMORY_FILE
    if not path.exists():
        return Verdict("cuda memory back to baseline", False, f"no {MEMORY_FILE}")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    baseline = [float(r["used_mib"]) for r in rows if r["when"] == "before-session"
                and r["used_mib"]]
    after = [(r["run_id"], float(r["used_mib"])) for r in rows if r["when"] == "after-run"
             and r["used_mib"]]
    if not baseline or not after:
        return Verdict("cuda memory back to baseline", False,
                       "no NVML memory readings (before the session and after each run)")
    base = baseline[0]
    over = [(run_id, used - base) for run_id, used in after if used - base > tolerance_mib]
    worst = max(used - base for _, used in after)
    return Verdict(
        "cuda memory back to baseline", not over,
        f"baseline {base:.0f} MiB; after {len(after)} runs at most {worst:+.0f} MiB "
        f"(tolerance {tolerance_mib:.0f} MiB)" + (
            "; left behind by: " + ", ".join(f"{r} {d:+.0f} MiB" for r, d in over)
            if over else ""))


def _mib(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f} MB"


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value * 1e3:.0f} ms"


def format_verdicts(verdicts: list[Verdict], title: str) -> str:
    """A Markdown table (readable as plain text), the overall verdict last."""
    width = max(len(v.check) for v in verdicts)
    lines = [f"# {title}", "", f"| {'check':<{width}} | verdict | detail |",
             f"|{'-' * (width + 2)}|---------|--------|"]
    for v in verdicts:
        lines.append(f"| {v.check:<{width}} | {'PASS' if v.ok else 'FAIL':<7} | {v.detail} |")
    failed = sum(not v.ok for v in verdicts)
    lines += ["", "Accepted: every check passed." if not failed
              else f"NOT accepted: {failed} check(s) failed."]
    return "\n".join(lines) + "\n"


def write_verdicts(session_dir: Path, verdicts: list[Verdict], title: str) -> str:
    text = format_verdicts(verdicts, title)
    (session_dir / "acceptance.md").write_text(text)
    (session_dir / "acceptance.json").write_text(json.dumps(
        {"title": title, "accepted": all(v.ok for v in verdicts),
         "verdicts": [asdict(v) for v in verdicts]}, indent=1))
    return text


def _title(session_dir: Path, gpu: int | None) -> str:
    info = json.loads((session_dir / "session.json").read_text())
    names = [s.get("detail", "").split(":")[0] for s in info.get("sensors", [])
             if s.get("kind") == "gpu" and (gpu is None or s.get("device_index") == gpu)]
    when = time.strftime("%Y-%m-%d", time.gmtime(info.get("started_at") or time.time()))
    return f"GPU acceptance, {names[0] if names else 'GPU ?'}, {when} ({session_dir.name})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--verdict", type=Path, default=None, metavar="SESSION_DIR",
                        help="judge a session this script wrote, without running anything")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from energy_console.core.measure.energy import nvml_index

    gpu = nvml_index(args.device if args.device.startswith("cuda") else "cuda:0")
    if args.verdict:
        verdicts = judge(args.verdict, gpu)
        print(write_verdicts(args.verdict, verdicts, _title(args.verdict, gpu)), end="")
        return EXIT_PASS if all(v.ok for v in verdicts) else EXIT_FAIL

    problem = cuda_problem(args.device)
    if problem:
        print(f"gpu_acceptance: SKIPPED: {problem}", file=sys.stderr)
        return EXIT_SKIPPED
    from energy_console.core.store.session_dir import default_results_root, session_dir_name

    session_dir = (args.results_dir or default_results_root()) / session_dir_name("gpu-acceptance")
    session_dir.mkdir(parents=True)
    profile = session_dir / "acceptance-profile.yaml"
    profile.write_text(profile_text(args.device))
    print(f"gpu_acceptance: {session_dir}", file=sys.stderr)
    record_cross_check(session_dir, gpu if gpu is not None else 0)
    code = run_and_watch_memory(session_dir, profile, args.device, gpu if gpu is not None else 0)
    if not (session_dir / "session.json").exists():
        print(f"gpu_acceptance: energy-console run exited {code} before writing a session",
              file=sys.stderr)
        return EXIT_FAIL
    verdicts = judge(session_dir, gpu)
    print(write_verdicts(session_dir, verdicts, _title(session_dir, gpu)), end="")
    return EXIT_PASS if all(v.ok for v in verdicts) else EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
