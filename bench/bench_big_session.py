"""How fast a big session opens: `report`, `report --format json`, `list sessions` and the read
that `attach` makes before its first screen, on a synthetic finished session of about a million
event lines.

Run: .venv/bin/python bench/bench_big_session.py [REPEATS] [EVENT_LINES]
It writes real session files in a temporary folder (events.jsonl of valid events, samples.csv,
runs.csv, session.json; the event and row shapes are those of tests/data/finished-session), then
summary.json as the runner does at a session's end, and times each view as its own process
(interpreter start and imports included), with the summary (a session the runner finished) and
without it (an older session: the last 4 MiB of events.jsonl and all of samples.csv are read).
It prints the median and the spread of REPEATS runs (3 by default) in seconds, and the same for
a bare interpreter that imports the CLI's module, the floor on a loaded machine.
"""

from __future__ import annotations

import csv
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from energy_console.core.store.summary import SUMMARY_NAME

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "tests" / "data" / "finished-session"
RUNS = 50  # many runs make `report` slow in its table layout, not in reading: kept apart
SAMPLE_LINES = 100_000

ATTACH_READ = """
import sys
from pathlib import Path

from energy_console.core.store.summary import SUMMARY_NAME
from energy_console.core.store.follow import SessionReader

reader = SessionReader(Path(sys.argv[1]))
while reader.read_some():
    pass  # what the console's follower does before it draws its first screen
snapshot = reader.snapshot()
assert snapshot.total_runs, snapshot
"""


SUMMARISE = """
import sys
from energy_console.core.store.follow import write_summary

assert write_summary(sys.argv[1])
"""


def write_session(path: Path, event_lines: int) -> None:
    """A finished session of RUNS runs whose events.jsonl holds about event_lines lines."""
    kinds: dict[str, dict] = {}
    for line in (TEMPLATE / "events.jsonl").read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        kinds.setdefault(event["kind"], event)
    phases_per_run = max(1, (event_lines - 4) // RUNS - 2)
    t = 1_795_700_000.0
    rows = []
    with (path / "events.jsonl").open("w", encoding="utf-8") as f:
        def put(kind: str, **fields: object) -> None:
            nonlocal t
            t += 0.001
            f.write(json.dumps({**kinds[kind], "t": t, **fields}) + "\n")

        put("session_started", total_runs=RUNS)
        put("notice")
        put("idle_baseline")
        for index in range(RUNS):
            run_id = f"synthetic__baseline__b1-s32__{index:03d}"
            put("run_started", run_id=run_id, index=index, total=RUNS)
            for repeat in range(phases_per_run):
                put("phase", run_id=run_id, phase="repeat", repeat=repeat + 1,
                    repeats=phases_per_run)
            if index % 10 == 9:
                put("run_skipped", run_id=run_id, reason="synthetic skip")
                rows.append({**kinds["run_finished"]["row"], "run_id": run_id,
                             "status": "skipped", "reason": "synthetic skip"})
            else:
                row = {**kinds["run_finished"]["row"], "run_id": run_id}
                put("run_finished", run_id=run_id, row=row)
                rows.append(row)
        put("session_finished", status="completed", finished=RUNS - RUNS // 10,
            skipped=RUNS // 10, failed=0, message="")
    with (path / "runs.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    with (path / "samples.csv").open("w", encoding="utf-8", newline="") as f:
        f.write("t,sensor,watts,joules\r\n")
        f.writelines(f"{1_795_700_000 + i * 0.01:.4f},cpu-estimate,20.0000,{i * 0.2:.6f}\r\n"
                     for i in range(SAMPLE_LINES))
    info = json.loads((TEMPLATE / "session.json").read_text(encoding="utf-8"))
    info.update(total_runs=RUNS, status="completed", started_at=1_795_700_000.0, ended_at=t)
    (path / "session.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def time_command(argv: list[str], repeats: int) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + system) of each of `repeats` runs of argv: on a
    loaded machine the wall time is mostly waiting for a core, the CPU time is what it costs."""
    seconds, cpu = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT,
                       env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "COLUMNS": "120"})
        seconds.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return seconds, cpu


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    event_lines = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        session = results / "20260101T000000Z_big"
        session.mkdir(parents=True)
        write_session(session, event_lines)
        events = session / "events.jsonl"
        with events.open("rb") as f:
            lines = sum(1 for _ in f)
        print(f"events.jsonl: {lines:,} lines, {events.stat().st_size / 1e6:.0f} MB; "
              f"medians of {repeats} runs (min..max), seconds")
        print(f"  {'':<30} {'wall (min..max), CPU':<30}")
        bare = time_command([sys.executable, "-c", "import energy_console.core.cli"], repeats)
        print(f"  {'bare start (import the CLI)':<30} {_spread(bare)}")
        summarise = [sys.executable, "-c", SUMMARISE, str(session)]
        print(f"  {'summary.json written (runner)':<30} {_spread(time_command(summarise, 1))}")
        cli = [sys.executable, "-m", "energy_console"]
        views = (
            ("report", cli + ["report", str(session)]),
            ("report --format json", cli + ["report", str(session), "--format", "json"]),
            ("list sessions", cli + ["list", "sessions", "--results-dir", str(results)]),
            ("attach (read to first screen)", [sys.executable, "-c", ATTACH_READ, str(session)]),
        )
        print(f"  {'':<30} {'with summary.json':<30} without (an older session)")
        with_summary = {label: time_command(argv, repeats) for label, argv in views}
        (session / SUMMARY_NAME).unlink()
        for label, argv in views:
            print(f"  {label:<30} {_spread(with_summary[label]):<30} "
                  f"{_spread(time_command(argv, repeats))}")


def _spread(timed: tuple[list[float], list[float]]) -> str:
    seconds, cpu = timed
    return (f"{statistics.median(seconds):5.2f} ({min(seconds):.2f}..{max(seconds):.2f}), "
            f"CPU {statistics.median(cpu):.2f}")


if __name__ == "__main__":
    main()
