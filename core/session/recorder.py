"""The runner's half that turns an ended run into its record: the runs.csv row, result.json,
latency.csv and the run's last events; what a failed run teaches about the runs left; and the
samples and files that come from elsewhere (a Ray node). Lanes end runs at once, so writes hold
the runner's lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from energy_console.core.compression import untrained_variant
from energy_console.core.measure.carbon import CarbonIntensity
from energy_console.core.measure.energy import (
    NoEnergyWindows,
    nvml_index,
    run_figures,
)
from energy_console.core.measure.precision import BUDGET, precision_status, relative_pct
from energy_console.core.measure.sensors import SensorInfo
from energy_console.core.measure.stats import median
from energy_console.core.session.guard import DISK_FULL_ERRNOS, WriteFailed, WriteGuard
from energy_console.core.session.plan import RunSpec
from energy_console.core.session.rules import UnloadableModels, charged_sensors
from energy_console.core.session.unit import Placement, UnitOutcome, gpu_facts
from energy_console.core.session.worker_follow import WorkerOutcome
from energy_console.core.spec.profile import ProtocolSettings
from energy_console.core.store import events as ev
from energy_console.core.store.figures import RunFigures, WindowEnergy, WorkerResult
from energy_console.core.store.records import RunRecord, RunStatus
from energy_console.core.store.session_dir import SessionWriter, write_json


class RunRecording:
    """Mixed into the Runner, which sets these attributes."""

    path: Path
    writer: SessionWriter
    guard: WriteGuard
    counts: dict[str, int]
    intensity: CarbonIntensity
    _lock: threading.RLock
    _active: dict[str, tuple[str, float]]
    _spans: list[tuple[str, str, float, float]]
    tracker: Any  # core.tracking.MlflowTracker when the profile asks for MLflow
    unloadable: UnloadableModels
    _samples_broken: bool
    _ended_ids: set[str]  # runs this session recorded
    _main_records: int  # record writes under way in the main thread (a second Ctrl-C waits)
    _interrupt_pending: bool  # a second Ctrl-C came during one: raised once it is written

    def emit(self, event: ev.Event) -> None:
        raise NotImplementedError

    def emit_all(self, events: Sequence[ev.Event]) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def _recording(self) -> Iterator[None]:
        """A record's writes and its count, under the lock; a second Ctrl-C that comes in the
        middle is raised after them, so the counts and runs.csv always agree."""
        main = threading.current_thread() is threading.main_thread()
        with self._lock:
            self._main_records += main
            try:
                yield
            finally:
                self._main_records -= main
        if main and self._interrupt_pending and not self._main_records:
            self._interrupt_pending = False
            raise KeyboardInterrupt

    def conclude(self, spec: RunSpec, unit: UnitOutcome, sensors: list[SensorInfo],
                 idle_power_w: dict[str, float]) -> None:
        """A run's record, from the sensors (and idle baseline) of the box it ran on."""
        outcome = unit.worker
        if outcome.result is not None:
            self._finish_run(spec, outcome.result, outcome.windows, unit, sensors, idle_power_w)
        else:
            self.end_run(spec, outcome.status, outcome.reason, unit.placement)
            if outcome.status == "failed":
                self._remember_failure(spec, outcome)

    def _remember_failure(self, spec: RunSpec, outcome: WorkerOutcome) -> None:
        """A model that could not load is not tried again (rules.UnloadableModels); a worker
        that found the disk full ends the session."""
        reason = outcome.reason
        if outcome.errno in DISK_FULL_ERRNOS and self.guard.error is None:
            self.guard.error = WriteFailed(self.writer.runs_path / spec.run_id, reason, True,
                                           self.path)
        if outcome.never_loaded:
            self.unloadable.remember(spec, reason)

    def _others_ran(self, node: str, start: float, end: float, run_id: str = "") -> bool:
        """Whether a pinned run on box `node` (but `run_id`) was measured between the wall
        times `start` and `end`."""
        with self._lock:
            ended = any(other != run_id and n == node and s < end and e > start
                        for other, n, s, e in self._spans)
            running = any(other != run_id and n == node and s < end
                          for other, (n, s) in self._active.items())
        return ended or running

    def _record(self, spec: RunSpec, placement: Placement | None = None,
                **fields: Any) -> RunRecord:
        where: dict[str, Any] = {} if placement is None else {
            "node": placement.node, "gpu_index": placement.gpu_index}
        untrained = untrained_variant(spec.technique)
        return RunRecord(
            run_id=spec.run_id, model=spec.model.ref, task=spec.task,
            technique=spec.technique.slug, device=spec.device, batch_size=spec.batch_size,
            seq_len=spec.seq_len, resolution=spec.resolution, repeats=spec.protocol.repeats,
            workload=spec.workload, max_new_tokens=spec.max_new_tokens,
            untrained_technique=untrained.slug if untrained else "",
            **where, **fields,
        )

    def end_run(self, spec: RunSpec, status: RunStatus, reason: str,
                 placement: Placement | None = None) -> None:
        with self._recording():
            record = self._record(spec, placement, status=status, reason=reason)
            self._keep_record(record)
            self.counts[status] += 1
            self.guard.write(f"runs/{spec.run_id}/result.json", lambda: write_json(
                self.writer.run_dir(spec.run_id) / "result.json", record.as_dict()))
            event = ev.RunSkipped if status == "skipped" else ev.RunFailed
            self.emit(event(run_id=spec.run_id, reason=reason))

    def skip_unstarted(self, specs: Sequence[RunSpec], reason: str) -> None:
        """Runs a stop left unstarted, recorded as skipped in one go: one rewrite of runs.csv,
        their RunSkipped events in one flush, and no run folder (one made for a worker that
        never reached the run, still empty, is removed)."""
        if not specs:
            return
        for spec in specs:
            with contextlib.suppress(OSError):  # not there (most), or not empty: kept
                (self.writer.runs_path / spec.run_id).rmdir()
        with self._recording():
            records = [self._record(spec, status="skipped", reason=reason) for spec in specs]
            self._keep_records(records)
            self.counts["skipped"] += len(records)
            self.emit_all([ev.RunSkipped(run_id=spec.run_id, reason=reason) for spec in specs])

    def _keep_record(self, record: RunRecord) -> None:
        """The run's row in runs.csv: written first, retried with the reserve freed, and
        printed whole to stderr (runner.log) when even that finds no room."""
        self._keep_records([record])

    def _keep_records(self, records: Sequence[RunRecord]) -> None:
        self.guard.write("runs.csv", lambda: self.writer.record_runs(records),
                         keep=lambda: "\n".join(json.dumps(record.as_dict(), default=str)
                                                for record in records))
        self._ended_ids.update(record.run_id for record in records)
        if self.tracker is not None:  # after the run ended, outside every window
            for record in records:
                self.tracker.log(record, self.writer.runs_path / record.run_id)

    def _finish_run(self, spec: RunSpec, result: WorkerResult, windows: list[WindowEnergy],
                    unit: UnitOutcome, sensors: list[SensorInfo],
                    idle_power_w: dict[str, float]) -> None:
        placement = unit.placement
        gpu = placement.gpu_index if placement.gpu_index is not None else nvml_index(
            result.device)
        charged = charged_sensors(sensors, gpu)
        try:
            figures = run_figures(
                windows=windows, iterations=result.iterations, batch_size=spec.batch_size,
                sensors=charged, idle_power_w=idle_power_w, latencies_ms=result.latencies_ms,
                max_spread=spec.protocol.max_spread, intensity=self.intensity,
                generation=result.generation, training=result.training,
                sample_period_s=1.0 / spec.protocol.sample_hz,
                idle_s=spec.protocol.idle_seconds,
            )
        except NoEnergyWindows as exc:
            self.end_run(spec, "failed", f"no energy could be measured: {exc}", placement)
            return
        precision, budget_note = precision_reached(spec.protocol, figures)
        shared = self._others_ran(placement.node, unit.started_t, unit.ended_t, spec.run_id)
        shared_note = ("CPU/DRAM energy is the box's, shared with runs that overlapped this "
                       "one (profile `exclusive: true` runs one at a time)",) if shared else ()
        record = dataclasses.replace(
            self._record(spec, placement, **figures.columns(), **result.quality.csv_columns(),
                         **gpu_facts(unit.gpus, gpu)),
            task=result.task, device=result.device, status="finished",
            iterations=round(median(result.iterations)),
            size_bytes=result.size_bytes, params=result.params,
            nonzero_params=result.nonzero_params, peak_mem_mb=result.peak_mem_mb,
            flops_per_inference=result.flops_per_inference, runtime=result.runtime,
            variant_cache_hit=result.variant_cache_hit,
            saved_model=result.saved_model, saved_model_bytes=result.saved_model_bytes,
            energy_delay_j_s=figures.energy_j_per_inference * figures.latency_ms_p50 / 1000.0,
            cpu_energy_shared=shared, repeats=len(figures.per_repeat), precision=precision,
            warnings=result.warnings + figures.warnings + shared_note + budget_note,
        )
        with self._recording():
            self._write_finished(spec, record, figures, result, unit)

    def _write_finished(self, spec: RunSpec, record: RunRecord, figures: Any,
                        result: WorkerResult, unit: UnitOutcome) -> None:
        # details first, the row last (a view that sees the row finds them); on a full disk the
        # first failure frees the reserve, and the row is retried or printed, never lost
        self.guard.write(f"runs/{spec.run_id}/latency.csv",
                    lambda: self.writer.write_latencies(spec.run_id, result.latencies_ms))
        self.guard.write(f"runs/{spec.run_id}/result.json", lambda: self.writer.write_result(
            record, figures, result, {
                "technique": {"spec": spec.technique.to_yaml(), **result.technique_details},
                "timings_s": unit.timings_s,
                "variant": {"cache_hit": result.variant_cache_hit,
                            "first_in_worker": "worker_start_to_first_warmup" in unit.timings_s},
                "carbon_intensity": dataclasses.asdict(self.intensity),
                "gpus": unit.gpus,
                "placement": dataclasses.asdict(unit.placement),
                **({"uncertainty": dataclasses.asdict(figures.uncertainty)}
                   if figures.uncertainty else {}),
                **({"training": dataclasses.asdict(result.training)} if result.training else {}),
                **({"generation": result.generation.details()} if result.generation else {}),
            }))
        self._keep_record(record)
        self.counts["finished"] += 1
        if figures.energy_fault:
            self.emit(ev.Notice(level="error", run_id=spec.run_id,
                                message=f"{spec.run_id}: energy not trustworthy: "
                                f"{figures.energy_fault}"))
        for warning in figures.warnings:
            self.emit(ev.Notice(level="warning", message=warning, run_id=spec.run_id))
        self.emit(ev.RunFinished(run_id=spec.run_id, row=record.as_dict()))

    def write_samples(self, rows: list[tuple[float, str, float | None, float]],
                      t_offset_s: float = 0.0) -> None:
        """Append (t, sensor, watts, joules) rows to samples.csv, t + t_offset_s as the wall
        time: this box's sampler's (monotonic t, offset) or a Ray node's (wall t)."""
        with self._lock:
            if self._samples_broken:
                return  # the figures come from the sampler's memory: the run goes on
            try:
                self.writer.append_samples(rows, t_offset_s)
            except OSError as exc:
                self._samples_broken = True
                if self.guard.error is None:
                    self.guard.error = WriteFailed.from_os_error(self.path / "samples.csv", exc,
                                                                 self.path)

    def write_run_file(self, run_id: str, name: str, data: bytes) -> None:
        """A file of a run measured elsewhere (a Ray node's worker.log), into its folder."""
        def write() -> None:
            (self.writer.run_dir(run_id) / name).write_bytes(data)

        self.guard.write(f"runs/{run_id}/{name}", write)


def precision_reached(protocol: ProtocolSettings,
                      figures: RunFigures) -> tuple[str, tuple[str, ...]]:
    """The record's `precision` and, where the budget ran out first, the warning that says so."""
    energy_pct = relative_pct(figures.energy_j_per_inference_ci95, figures.energy_j_per_inference)
    latency_pct = relative_pct(figures.latency_ms_p50_ci95, figures.latency_ms_p50)
    status = precision_status(protocol, energy_pct, latency_pct)
    if status != BUDGET:
        return status, ()

    def shown(pct: float | None) -> str:
        return "no interval" if pct is None else f"±{pct:.1f} %"

    return status, (f"protocol.max_run_s ({protocol.max_run_s:g} s) was spent before the "
                    f"intervals reached ±{protocol.target_ci_pct:g} %: energy per inference "
                    f"{shown(energy_pct)}, median latency {shown(latency_pct)} over "
                    f"{len(figures.per_repeat)} windows",)
