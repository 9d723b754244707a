"""UI memory while a one-hour session is replayed through the live view.

Run: .venv/bin/python bench/bench_tui_memory.py [MINUTES]
A writer thread appends a session (4 sensors at 20 Hz, 288,000 samples for 60 minutes, a run
ending every minute) to a real session directory with core.results.SessionWriter; the app
follows it headless. Prints the process RSS after the first screen and after the replay.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from energy_console.core.store import events as ev  # noqa: E402
from energy_console.core.store.session_dir import SessionWriter  # noqa: E402
from energy_console.tui.app import EnergyConsoleApp  # noqa: E402
from energy_console.tui.screens.live import LiveScreen  # noqa: E402

SENSORS = [
    {"name": n, "kind": k, "measured": True, "method": "bench", "detail": ""}
    for n, k in (("gpu0", "gpu"), ("gpu1", "gpu"), ("package-0", "cpu"), ("dram", "dram"))
]
HZ = 20


def replay(path: Path, minutes: int, t0: float) -> None:
    writer = SessionWriter(path)
    writer.append_event(
        ev.SessionStarted(
            session_id=path.name,
            profile_name="bench",
            total_runs=minutes,
            runner_pid=0,
            sensors=SENSORS,
            missing_sensors=[],
            t=t0,
        )
    )
    joules = dict.fromkeys((s["name"] for s in SENSORS), 0.0)
    for minute in range(minutes):
        run_id = f"model-{minute % 5}__technique-{minute}__b1-s128"
        writer.append_event(
            ev.RunStarted(
                run_id=run_id,
                index=minute,
                total=minutes,
                model=f"model-{minute % 5}",
                technique=f"t{minute}",
                batch_size=1,
                seq_len=128,
                resolution=None,
                t=t0 + minute * 60,
            )
        )
        rows = []
        for i in range(60 * HZ):
            t = t0 + minute * 60 + i / HZ
            for n, name in enumerate(joules):
                watts = 50.0 + 10 * n + (i % 17)
                joules[name] += watts / HZ
                rows.append((t, name, watts, joules[name]))
        writer.append_samples(rows)
        row = {
            "run_id": run_id,
            "model": f"model-{minute % 5}",
            "technique": f"t{minute}",
            "batch_size": 1,
            "seq_len": 128,
            "status": "finished",
            "energy_j_per_inference": 0.01 + minute / 1000,
            "avg_power_w": 70.0,
        }
        writer.record_run(row)
        writer.append_event(ev.RunFinished(run_id=run_id, row=row, t=t0 + minute * 60 + 59))
        time.sleep(0.02)
    writer.append_event(
        ev.SessionFinished(
            status="completed", finished=minutes, skipped=0, failed=0, t=t0 + minutes * 60
        )
    )
    writer.close()


async def measure(minutes: int) -> None:
    process = psutil.Process()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "session"
        path.mkdir()
        (path / "events.jsonl").touch()
        app = EnergyConsoleApp(attach=path, results_root=Path(tmp))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.5)
            gc.collect()
            before_mb = process.memory_info().rss / 1e6
            writer = threading.Thread(target=replay, args=(path, minutes, time.time()))
            start = time.perf_counter()
            writer.start()
            screen = app.screen
            assert isinstance(screen, LiveScreen)
            while writer.is_alive() or screen.snapshot is None or screen.snapshot.is_running:
                await pilot.pause(0.2)
            replay_s = time.perf_counter() - start
            await pilot.pause(0.5)
            gc.collect()
            after_mb = process.memory_info().rss / 1e6
            samples = minutes * 60 * HZ * len(SENSORS)
            rows = screen.snapshot.finished
    print(
        f"replayed {samples:,} samples and {rows} runs in {replay_s:.1f} s; "
        f"RSS {before_mb:.1f} MB -> {after_mb:.1f} MB, growth {after_mb - before_mb:.1f} MB "
        "(target < 50 MB)"
    )


if __name__ == "__main__":
    asyncio.run(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 60))
