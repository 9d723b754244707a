"""One unit of work, measured: a model variant's runs (core.plan.VariantBatch) in its worker.

`execute_unit` is the one call site every way of running shares: the session's own loop, a
per-GPU lane (--gpus) and a Ray GPU station on another node (--ray). One worker loads and
compresses the variant once and measures each run (input size) in turn, while it stays sound; a
worker that dies or runs out of memory at one size fails that run alone, and the variant's other
sizes go on in a fresh worker (sizes at least as large as one that ran out of memory are
skipped). Each run's outcome goes to `conclude` as soon as it ends; turning it into a record is
the runner's business (it holds the session's files).

A technique that trains (finetune, qat) trains once, while the worker prepares the variant: its
timed training windows are measured while the variant's first run is followed, and every other run
of the variant is given the same windows, so each record carries the variant's training figures.
"""

from __future__ import annotations

import functools
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from energy_console.core.measure.energy import nvml_index
from energy_console.core.measure.host import gpu_record, gpu_snapshots
from energy_console.core.measure.sampler import Sampler
from energy_console.core.measure.sensors import SensorInfo
from energy_console.core.session.plan import RunSpec, VariantBatch, dominates
from energy_console.core.session.rules import charged_sensors, not_loaded_reason
from energy_console.core.session.worker_follow import WorkerOutcome, follow_run
from energy_console.core.session.worker_process import start_worker, stop_worker
from energy_console.core.store import events as ev
from energy_console.core.store.figures import WindowEnergy, WorkerResult


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
    """What one run of a unit gave: its worker's outcome, timings and GPU state, and its
    wall-clock span (the span tells which runs of a box overlapped, so whose CPU energy was
    shared)."""

    worker: WorkerOutcome
    placement: Placement
    started_t: float  # wall clock (time.time())
    ended_t: float
    timings_s: dict[str, float] = field(default_factory=dict)
    gpus: dict[str, Any] = field(default_factory=dict)


@dataclass
class UnitSetting:
    """Where and how a unit runs: the box's sampler and sensors, the folders its worker writes
    to, and the runner's answers (why a run is skipped, whether it was cancelled)."""

    context: Any  # the forkserver context
    runs_dir: Path  # runs/<run id>/ for each run (worker.log)
    cache_dir: Path  # reference outputs
    variant_cache: Path | None  # compressed variants (protocol.variant_cache), None: off
    sampler: Sampler
    sensors: Sequence[SensorInfo]
    placement: Placement
    total: int  # runs in the session, for RunStarted
    worker_spec: Callable[[RunSpec], RunSpec]  # the spec as the worker runs it (protocol, GPU)
    skip_reason: Callable[[RunSpec], str | None]  # why a run is not started, or None
    cancelled: Callable[[str], str | None]  # run id -> why it is cancelled now, or None
    emit: Callable[[ev.Event], None]
    conclude: Callable[[RunSpec, UnitOutcome], None]  # each run, as it ends
    # runs not started, with one reason, recorded at once (None: each through conclude)
    skip_unstarted: Callable[[list[RunSpec], str], None] | None = None


def run_timings(result: WorkerResult, spawn_t: float | None) -> dict[str, float]:
    """result.json timings_s: the variant's load and compress (shared by its runs), and what
    this run spent before its first warm-up (for a worker's first run: from the worker's start,
    load, references and compression included)."""
    warmup_t = result.first_warmup_t
    timings = {"load": result.load_s, "compress": result.compress_s,
               "variant_cache_read": result.variant_cache_read_s}
    if warmup_t is not None and result.run_started_t is not None:
        timings["run_start_to_first_warmup"] = warmup_t - result.run_started_t
    if spawn_t is not None:
        timings["worker_start_to_first_warmup"] = (warmup_t or spawn_t) - spawn_t
    return timings


def execute_unit(batch: VariantBatch, setting: UnitSetting) -> None:
    """Every run of one variant, ended and concluded in order: one worker while it stays sound,
    a fresh one for the runs left after a worker died or ran out of memory."""
    pending = list(batch.runs)
    training: list[WindowEnergy] = []  # the variant's training windows, once measured
    while pending:
        runnable, skipped = [], dict[str, list[RunSpec]]()
        for spec in pending:
            reason = setting.skip_reason(spec)
            if not reason:
                runnable.append(spec)
            elif setting.skip_unstarted is None:
                setting.conclude(spec, ended(setting, "skipped", reason))
            else:
                skipped.setdefault(reason, []).append(spec)
        for reason, specs in skipped.items():
            assert setting.skip_unstarted is not None
            setting.skip_unstarted(specs, reason)
        if not runnable:
            return
        pending = _run_worker(runnable, setting, training)


def ended(setting: UnitSetting, status: Any, reason: str) -> UnitOutcome:
    """The outcome of a run that never started."""
    now = time.time()
    return UnitOutcome(WorkerOutcome(status, reason), setting.placement, now, now)


def _run_worker(specs: list[RunSpec], setting: UnitSetting,
                training: list[WindowEnergy]) -> list[RunSpec]:
    """One worker for these runs of a variant; returns the runs it left unmeasured."""
    placement, sensors = setting.placement, setting.sensors
    # the GPU state recorded: the pinned GPU's, or every GPU's for a run not pinned
    pinned = (list(sensors) if placement.gpu_index is None
              else charged_sensors(sensors, placement.gpu_index))
    runs = [(spec, setting.worker_spec(spec)) for spec in specs]
    spawn_t = time.monotonic()
    process, conn = start_worker(setting.context, tuple(w for _, w in runs), setting.runs_dir,
                                 setting.cache_dir, setting.variant_cache)
    try:
        for i, (spec, worker_spec) in enumerate(runs):
            gpus_at_start = gpu_snapshots(pinned)
            started_t = time.time()
            setting.emit(ev.RunStarted(
                run_id=spec.run_id, index=spec.index, total=setting.total,
                model=spec.model.ref, technique=spec.technique.slug,
                batch_size=spec.batch_size, seq_len=spec.seq_len,
                resolution=spec.resolution, worker_pid=process.pid,
                node=placement.node if placement.gpu_index is not None else None,
                gpu_index=placement.gpu_index, max_new_tokens=spec.max_new_tokens,
                workload=spec.workload,
            ))
            gpu = (placement.gpu_index if placement.gpu_index is not None
                   else nvml_index(worker_spec.device))
            outcome = follow_run(worker_spec, process, conn, setting.sampler, sensors,
                                 functools.partial(setting.cancelled, spec.run_id),
                                 setting.emit, gpu)
            rest, started_id = runs[i + 1:], spec.run_id
            if outcome.run_id:  # it died preparing a later size: that one fails
                blamed = next(r for r in rest if r[1].run_id == outcome.run_id)
                rest = [runs[i]] + [r for r in rest if r is not blamed]
                spec = blamed[0]
            # a worker's first run covers its loading; a later run's error is that run's own
            outcome.never_loaded = (i == 0 and outcome.reported_error
                                    and outcome.last_phase in (None, "loading"))
            unit = UnitOutcome(outcome, placement, started_t, time.time())
            if outcome.result is not None:
                unit.timings_s = run_timings(outcome.result, spawn_t if i == 0 else None)
                unit.gpus = gpu_record(gpus_at_start, gpu_snapshots(pinned))
                _share_training(outcome, first_in_worker=i == 0, training=training)
            if placement.gpu_index is not None:  # the GPU is free again; the record follows
                setting.emit(ev.WorkerEnded(run_id=started_id, node=placement.node,
                                            gpu_index=placement.gpu_index, t=unit.ended_t))
            setting.conclude(spec, unit)
            if outcome.never_loaded:
                reason = not_loaded_reason(spec, f"{spec.run_id}: {outcome.reason}")
                for other, _ in rest:
                    setting.conclude(other, ended(setting, "skipped", reason))
                return []
            if outcome.worker_ended:
                return _after_out_of_memory(spec, outcome, [r for r, _ in rest], setting)
        return []
    finally:
        conn.close()
        stop_worker(process)


def _share_training(outcome: WorkerOutcome, first_in_worker: bool,
                    training: list[WindowEnergy]) -> None:
    """A variant that trained while its worker prepared it: the first run followed got the
    training windows (they lead its windows); every later run is given the same ones."""
    timings = outcome.result.training if outcome.result is not None else None
    if timings is None or not timings.in_compression:
        return
    if first_in_worker:
        training[:] = outcome.windows[:timings.windows]
    else:
        outcome.windows = training + outcome.windows


def _after_out_of_memory(failed: RunSpec, outcome: WorkerOutcome, rest: list[RunSpec],
                         setting: UnitSetting) -> list[RunSpec]:
    """The runs left for a fresh worker: after an out-of-memory, sizes at least as large as
    the one that failed are skipped with the reason."""
    if not outcome.out_of_memory:
        return rest
    left = []
    for spec in rest:
        if dominates(spec, failed):
            setting.conclude(spec, ended(setting, "skipped", f"not run: {failed.run_id}, no "
                                         f"larger than this size, ran out of memory "
                                         f"({outcome.reason})"))
        else:
            left.append(spec)
    return left


def gpu_facts(gpus: dict[str, Any], index: int | None) -> dict[str, Any]:
    """RunRecord's GPU columns from the snapshot of GPU `index` at the run's start."""
    snap = next((g for g in gpus.get("start", []) if g.get("index") == index), None)
    if snap is None:
        return {}
    return {"gpu_name": snap.get("name"), "gpu_driver": snap.get("driver"),
            "gpu_power_limit_w": snap.get("power_limit_w"),
            "gpu_sm_clock_mhz": snap.get("sm_clock_mhz"),
            "gpu_temperature_c": snap.get("temperature_c")}

