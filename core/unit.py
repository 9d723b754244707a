"""One unit of work, measured: start its worker, follow it, and bring back what it gave.

`execute_unit` is the one call site every way of running shares: the session's own loop, a
per-GPU lane (--gpus) and a Ray task on another node (--ray). Today a unit is one RunSpec; the
call stays the same when a unit becomes a batch of runs of one model variant. Turning the outcome
into a record is the runner's business (it holds the session's files).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energy_console.core import events as ev
from energy_console.core.host import gpu_record, gpu_snapshots
from energy_console.core.sampler import Sampler
from energy_console.core.sensors import SensorInfo
from energy_console.core.worker_follow import WorkerOutcome, follow_worker
from energy_console.core.worker_process import start_worker, stop_worker


@dataclass(frozen=True)
class Placement:
    """Where a unit ran: its node (hostname) and the GPU it was pinned to (None: not pinned)."""

    node: str
    gpu_index: int | None = None

    @property
    def label(self) -> str:
        return self.node if self.gpu_index is None else f"{self.node}/gpu{self.gpu_index}"


def this_node(gpu_index: int | None = None) -> Placement:
    return Placement(socket.gethostname(), gpu_index)


@dataclass
class UnitOutcome:
    """What a unit gave: its worker's outcome, timings and GPU state, and its wall-clock span
    (the span tells which runs of a box overlapped, so whose CPU energy was shared)."""

    worker: WorkerOutcome
    placement: Placement
    started_t: float  # wall clock (time.time())
    ended_t: float
    timings_s: dict[str, float] = field(default_factory=dict)
    gpus: dict[str, Any] = field(default_factory=dict)


def execute_unit(context: Any, spec: Any, run_dir: Path, cache_dir: Path, sampler: Sampler,
                 sensors: Sequence[SensorInfo], placement: Placement, total: int,
                 cancelled: Callable[[], str | None],
                 emit: Callable[[ev.Event], None]) -> UnitOutcome:
    """Run `spec` in a fresh worker, its windows measured on `sampler`; the worker is stopped
    however this ends. `emit` gets RunStarted, the phases and notices (not the run's end)."""
    pinned = [s for s in sensors if s.kind != "gpu" or placement.gpu_index in
              (None, s.device_index)]
    gpus_at_start = gpu_snapshots(pinned)
    started_t, spawn_t = time.time(), time.monotonic()
    process, parent_conn = start_worker(context, spec, run_dir, cache_dir)
    try:
        emit(ev.RunStarted(
            run_id=spec.run_id, index=spec.index, total=total, model=spec.model.ref,
            technique=spec.technique.slug, batch_size=spec.batch_size, seq_len=spec.seq_len,
            resolution=spec.resolution, worker_pid=process.pid,
            node=placement.node if placement.gpu_index is not None else None,
            gpu_index=placement.gpu_index,
        ))
        outcome = follow_worker(spec, process, parent_conn, sampler, sensors, cancelled, emit)
    finally:
        parent_conn.close()
        stop_worker(process)
    unit = UnitOutcome(outcome, placement, started_t, time.time())
    if outcome.result is not None:
        result = outcome.result
        unit.timings_s = {"worker_start_to_first_warmup": (result.first_warmup_t or spawn_t)
                          - spawn_t, "load": result.load_s, "compress": result.compress_s}
        unit.gpus = gpu_record(gpus_at_start, gpu_snapshots(pinned))
    if placement.gpu_index is not None:  # the GPU is free again; the record follows
        emit(ev.WorkerEnded(run_id=spec.run_id, node=placement.node,
                            gpu_index=placement.gpu_index, t=unit.ended_t))
    return unit


def gpu_facts(gpus: dict[str, Any], index: int | None) -> dict[str, Any]:
    """RunRecord's GPU columns from the snapshot of GPU `index` at the run's start."""
    snap = next((g for g in gpus.get("start", []) if g.get("index") == index), None)
    if snap is None:
        return {}
    return {"gpu_name": snap.get("name"), "gpu_driver": snap.get("driver"),
            "gpu_power_limit_w": snap.get("power_limit_w"),
            "gpu_sm_clock_mhz": snap.get("sm_clock_mhz"),
            "gpu_temperature_c": snap.get("temperature_c")}


def charged_sensors(sensors: Sequence[SensorInfo], gpu_index: int | None) -> list[SensorInfo]:
    """A pinned run is charged with its GPU and the box's CPU/DRAM (shared while runs overlap)."""
    return [s for s in sensors if s.kind != "gpu" or s.device_index == gpu_index]
