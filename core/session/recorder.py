"""The runner's half that turns an ended run into its record: the runs.csv row, result.json,
latency.csv and the run's last events; and what a failed run teaches about the runs left. Lanes
end runs at once, so writes hold the runner's lock.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any

from energy_console.core.compression import untrained_variant
from energy_console.core.measure.carbon import CarbonIntensity
from energy_console.core.measure.energy import (
    NoEnergyWindows,
    nvml_index,
    run_figures,
    sensors_for_device,
)
from energy_console.core.measure.sensors import SensorInfo
from energy_console.core.measure.stats import median
from energy_console.core.session.guard import DISK_FULL_ERRNOS, WriteFailed, WriteGuard
from energy_console.core.session.plan import RunSpec
from energy_console.core.session.unit import Placement, UnitOutcome, charged_sensors, gpu_facts
from energy_console.core.session.worker_follow import WorkerOutcome
from energy_console.core.store import events as ev
from energy_console.core.store.figures import WindowEnergy, WorkerResult
from energy_console.core.store.records import RunRecord, RunStatus
from energy_console.core.store.session_dir import SessionWriter, write_json


def model_key(spec: RunSpec) -> tuple:
    """What identifies a model across its runs (run ids stay opaque)."""
    entry = spec.model
    return (entry.source, entry.resolved_ref, entry.task, entry.trust_remote_code)


class RunRecording:
    """Mixed into the Runner, which sets these attributes."""

    writer: SessionWriter
    guard: WriteGuard
    counts: dict[str, int]
    intensity: CarbonIntensity
    _lock: threading.RLock
    _active: dict[str, tuple[str, float]]
    _spans: list[tuple[str, str, float, float]]
    tracker: Any  # core.tracking.MlflowTracker when the profile asks for MLflow
    _unloadable: dict[tuple, str]  # model key -> why it could not be loaded

    def emit(self, event: ev.Event) -> None:
        raise NotImplementedError

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
        """A model that could not load is not tried again for every variant (an unreachable
        hub id costs its retries once); a worker that found the disk full ends the session.
        Deaths and timeouts are not remembered: the next run may well get through."""
        reason = outcome.reason
        if outcome.errno in DISK_FULL_ERRNOS and self.guard.error is None:
            self.guard.error = WriteFailed(self.writer.runs_path / spec.run_id, reason, True)
        if outcome.never_loaded:
            self._unloadable.setdefault(model_key(spec), f"{spec.run_id}: {reason}")

    def _known_to_fail(self, spec: RunSpec) -> str | None:
        """Why this run is skipped without starting it, after an earlier run of its model."""
        loading = self._unloadable.get(model_key(spec))
        if loading:
            return (f"not run: {spec.model.ref} could not be loaded in an earlier run of this "
                    f"session ({loading})")
        return None

    def _overlapped(self, run_id: str, unit: UnitOutcome) -> bool:
        """Whether another pinned run on the same box was measured during this one."""
        node, start, end = unit.placement.node, unit.started_t, unit.ended_t
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
        with self._lock:
            record = self._record(spec, placement, status=status, reason=reason)
            self.counts[status] += 1
            self._keep_record(record)
            self.guard.write(f"runs/{spec.run_id}/result.json", lambda: write_json(
                self.writer.run_dir(spec.run_id) / "result.json", record.as_dict()))
            event = ev.RunSkipped if status == "skipped" else ev.RunFailed
            self.emit(event(run_id=spec.run_id, reason=reason))

    def _keep_record(self, record: RunRecord) -> None:
        """The run's row in runs.csv: written first, retried with the reserve freed, and
        printed whole to stderr (runner.log) when even that finds no room."""
        self.guard.write("runs.csv", lambda: self.writer.record_run(record),
                    keep=lambda: json.dumps(record.as_dict(), default=str))
        if self.tracker is not None:  # after the run ended, outside every window
            self.tracker.log(record, self.writer.runs_path / record.run_id)

    def _finish_run(self, spec: RunSpec, result: WorkerResult, windows: list[WindowEnergy],
                    unit: UnitOutcome, sensors: list[SensorInfo],
                    idle_power_w: dict[str, float]) -> None:
        placement = unit.placement
        gpu = placement.gpu_index if placement.gpu_index is not None else nvml_index(
            result.device)
        charged = (charged_sensors(sensors, gpu) if placement.gpu_index is not None
                   else sensors_for_device(sensors, result.device))
        try:
            figures = run_figures(
                windows=windows, iterations=result.iterations, batch_size=spec.batch_size,
                sensors=charged, idle_power_w=idle_power_w, latencies_ms=result.latencies_ms,
                max_spread=spec.protocol.max_spread, intensity=self.intensity,
                generation=result.generation, training=result.training,
            )
        except NoEnergyWindows as exc:
            self.end_run(spec, "failed", f"no energy could be measured: {exc}", placement)
            return
        shared = self._overlapped(spec.run_id, unit)
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
            cpu_energy_shared=shared,
            warnings=result.warnings + figures.warnings + shared_note,
        )
        with self._lock:
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
                **({"training": dataclasses.asdict(result.training)} if result.training else {}),
            }))
        self.counts["finished"] += 1
        self._keep_record(record)
        if figures.energy_fault:
            self.emit(ev.Notice(level="error", run_id=spec.run_id,
                                message=f"{spec.run_id}: energy not trustworthy: "
                                f"{figures.energy_fault}"))
        for warning in figures.warnings:
            self.emit(ev.Notice(level="warning", message=warning, run_id=spec.run_id))
        self.emit(ev.RunFinished(run_id=spec.run_id, row=record.as_dict()))
