"""Whether a session's idle baseline means anything: taken while other processes kept the CPU
busy, or close to the power under load, it leaves dynamic energy (total minus idle) without
meaning. The report, report.md and the JSON findings say so, with the fix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from energy_console.core.measure.cpu_load import IDLE_FIX, busy_idle_warning
from energy_console.core.measure.energy import IDLE_SHARE_OF_LOAD
from energy_console.core.store.records import RunRecord


def idle_close_to_load(record: RunRecord) -> bool:
    idle, load = record.idle_power_w, record.avg_power_w
    return bool(record.finished and idle and load and idle > IDLE_SHARE_OF_LOAD * load)


def idle_problems(records: Sequence[RunRecord], info: Mapping[str, Any]) -> dict[str, str]:
    """Per run id ("" for the whole session) why its dynamic energy is not meaningful."""
    problems = {}
    busy = busy_idle_warning(info.get("idle_other_cpu_load_pct"))
    if busy:
        problems[""] = busy
    for r in records:
        if idle_close_to_load(r):
            problems[r.run_id] = (f"idle {r.idle_power_w:.1f} W is "
                                  f"{r.idle_power_w / r.avg_power_w:.0%} of the power under "  # type: ignore[operator]
                                  f"load ({r.avg_power_w:.1f} W)")
    return problems


def idle_notes(records: Sequence[RunRecord], info: Mapping[str, Any]) -> list[str]:
    problems = idle_problems(records, info)
    if not problems:
        return []
    lines = ["Idle baseline not meaningful: dynamic energy (total minus idle) of these runs "
             f"means nothing; {IDLE_FIX}:"]
    return lines + [f"  {'session' if not run_id else run_id}: {why}"
                    for run_id, why in problems.items()]
