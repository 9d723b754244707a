"""The runner: one process per session. Samples sensors, runs each RunSpec in a fresh worker.

It never imports torch. Workers are forked from a forkserver that preloaded torch and transformers
(no CUDA initialised there), so each run starts in a clean process without paying the imports again.
Energy per window comes from the sampler's readings at the edges the worker reports.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from collections.abc import Callable, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energy_console.core import events as ev
from energy_console.core.carbon import resolve_intensity
from energy_console.core.cpu_load import CpuLoadWindow, ps_process
from energy_console.core.energy import (
    NoEnergyWindows,
    protocol_for_sensors,
    run_figures,
    sensors_for_device,
)
from energy_console.core.host import gpu_record, gpu_snapshots, host_info
from energy_console.core.machine_lock import MachineBusy, MachineLock
from energy_console.core.plan import RunSpec, expand
from energy_console.core.profile import Profile
from energy_console.core.records import RunRecord, RunStatus, WindowEnergy, WorkerResult
from energy_console.core.results import ControlReader, SessionWriter, write_json
from energy_console.core.sampler import Sampler
from energy_console.core.sensors import Detection, SensorInfo, describe, detect
from energy_console.core.stats import median
from energy_console.core.worker_process import (
    death_reason,
    forkserver_context,
    start_worker,
    stop_worker,
)


@dataclass
class SessionOutcome:
    path: Path
    status: str  # completed | stopped | failed
    finished: int
    skipped: int
    failed: int
    message: str = ""


class Runner:
    def __init__(
        self,
        profile: Profile,
        session_dir: Path,
        device: str | None = None,
        on_event: Callable[[ev.Event], None] | None = None,
        done: Set[str] = frozenset(),
    ):
        self.profile = profile
        self.path = session_dir
        self.device = device
        self.on_event = on_event
        self.specs = expand(profile, device, done)
        self.writer: SessionWriter  # opened first thing in run()
        self.sampler: Sampler | None = None
        self.detection: Detection | None = None
        self.sensor_infos: list[SensorInfo] = []
        self.idle_power_w: dict[str, float] = {}
        self.stop_requested = False
        self.counts = {"finished": 0, "skipped": 0, "failed": 0}
        self.intensity = resolve_intensity(profile.carbon)
        self._worker = None
        self._mono_to_wall = time.time() - time.monotonic()

    # ------------------------------------------------------------------ session
    def run(self) -> SessionOutcome:
        self.path.mkdir(parents=True, exist_ok=True)
        self.writer = SessionWriter(self.path)
        (self.path / "profile.yaml").write_text(self.profile.to_yaml(), encoding="utf-8")
        lock = MachineLock()
        try:
            lock.acquire(self.path)
        except MachineBusy as exc:
            self.emit(ev.SessionFinished(status="failed", message=str(exc), **self.counts))
            self.writer.close()
            return SessionOutcome(self.path, "failed", **self.counts, message=str(exc))
        try:
            return self._run_locked()
        finally:
            lock.release()

    def _run_locked(self) -> SessionOutcome:
        self.control = ControlReader(self.path)
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
        status, message = "completed", ""
        try:
            detection = self._start_sensors()
            self._write_info(status="running")
            self.emit(ev.SessionStarted(
                session_id=self.path.name, profile_name=self.profile.name,
                total_runs=len(self.specs), runner_pid=os.getpid(),
                sensors=[dataclasses.asdict(s) for s in self.sensor_infos],
                missing_sensors=[dataclasses.asdict(m) for m in detection.missing],
            ))
            for notice in detection.notices:
                self.emit(ev.Notice(level="warning", message=notice))
            context = forkserver_context()
            self._idle_baseline()
            for spec in self.specs:
                if spec is not self.specs[0]:
                    self._pause(self.profile.protocol.cooldown_s)
                if self.stop_requested:
                    self._end_run(spec, "skipped", "session stopped before this run")
                    continue
                self._run_one(context, spec)
            if self.stop_requested:
                status, message = "stopped", "stopped on request"
        except KeyboardInterrupt:
            status, message = "stopped", "interrupted"
        except Exception as exc:
            status, message = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            stop_worker(self._worker)
            if self.sampler:
                self.sampler.stop()
                for sensor in self.sampler.sensors:
                    sensor.close()
            self.emit(ev.SessionFinished(status=status, message=message, **self.counts))
            self._write_info(status=status)
            self.writer.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return SessionOutcome(self.path, status, **self.counts, message=message)

    def emit(self, event: ev.Event) -> None:
        self.writer.append_event(event)
        if self.on_event:
            self.on_event(event)

    def _on_signal(self, signum, frame) -> None:
        """Stop cleanly: the current run is cancelled, the rest recorded as skipped. A second
        Ctrl-C stops at once (what was written stays written)."""
        if signum == signal.SIGINT and self.stop_requested:
            raise KeyboardInterrupt
        self.stop_requested = True  # only a flag: a handler must not write mid-write

    def _start_sensors(self) -> Detection:
        from energy_console.core.sensors.period import calibrate

        self.detection = detection = detect(self.profile.sensors.cpu_tdp_w)
        calibrate(detection.sensors)  # measured update periods size the windows
        self.sensor_infos = [describe(s) for s in detection.sensors]
        offset = self._mono_to_wall

        def write_samples(samples) -> None:
            self.writer.append_samples(
                (s.t + offset, s.sensor, s.power_w, s.energy_j) for s in samples
            )

        # History covers a whole run, so both edges of any window are still there at its end.
        self.sampler = Sampler(detection.sensors, self.profile.protocol.sample_hz,
                               on_samples=write_samples,
                               history_s=self.profile.protocol.run_timeout_s + 60)
        self.sampler.start()
        return detection

    def _idle_baseline(self) -> None:
        seconds = self.profile.protocol.idle_seconds
        if seconds <= 0 or not self.sampler:
            return
        t0 = time.monotonic()
        self.sampler.read_now()
        start = self.sampler.energy_at(t0)
        self._pause(seconds)
        t1 = time.monotonic()
        self.sampler.read_now()
        windows = self.sampler.window(start, t0, t1)
        self.idle_power_w = {name: w.avg_power_w for name, w in windows.items()}
        self.emit(ev.IdleBaseline(duration_s=t1 - t0, power_w=self.idle_power_w))

    def _pause(self, seconds: float) -> None:
        """Wait, still answering stop requests."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stop_requested:
            self._poll_control()
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def _write_info(self, status: str) -> None:
        info_path = self.path / "session.json"
        info = json.loads(info_path.read_text()) if info_path.exists() else host_info()
        info.update({
            "session_id": self.path.name,
            "profile_name": self.profile.name,
            "status": status,
            "runner_pid": os.getpid(),
            "total_runs": len(self.specs),
            "idle_power_w": self.idle_power_w,
            "carbon_intensity": dataclasses.asdict(self.intensity),
        })
        if self.detection:
            info["sensors"] = [dataclasses.asdict(s) for s in self.sensor_infos]
            info["missing_sensors"] = [dataclasses.asdict(m) for m in self.detection.missing]
            info["sensor_notices"] = self.detection.notices
        info.setdefault("started_at", time.time())
        if status != "running":
            info["ended_at"] = time.time()
            info["counts"] = self.counts
        write_json(info_path, info)

    # ------------------------------------------------------------------ runs
    def _run_one(self, context, spec: RunSpec) -> None:
        worker_spec = dataclasses.replace(
            spec, protocol=protocol_for_sensors(self.profile.protocol, self.sensor_infos))
        gpus_at_start = gpu_snapshots(self.sensor_infos)
        spawn_t = time.monotonic()
        process, parent_conn = start_worker(context, worker_spec,
                                            self.writer.run_dir(spec.run_id), self.path / "cache")
        self._worker = process
        self.emit(ev.RunStarted(
            run_id=spec.run_id, index=spec.index, total=len(self.specs),
            model=spec.model.ref, technique=spec.technique.slug, batch_size=spec.batch_size,
            seq_len=spec.seq_len, resolution=spec.resolution, worker_pid=process.pid,
        ))
        status, outcome = self._follow_worker(spec, process, parent_conn)
        parent_conn.close()
        stop_worker(process)
        self._worker = None
        if status == "finished":
            result, windows = outcome
            timings = {"worker_start_to_first_warmup": (result.first_warmup_t or spawn_t)
                       - spawn_t, "load": result.load_s, "compress": result.compress_s}
            gpus = gpu_record(gpus_at_start, gpu_snapshots(self.sensor_infos))
            self._finish_run(spec, result, windows, timings, gpus)
        else:
            self._end_run(spec, status, outcome)

    def _follow_worker(self, spec: RunSpec, process, conn) -> tuple[RunStatus, Any]:
        """Relay the worker's phases and measure its windows until it ends.

        ("finished", (WorkerResult, [WindowEnergy])) or ("skipped" | "failed", reason)."""
        sampler = self.sampler
        assert sampler is not None, "the sensors start before the first run"
        windows: list[CpuLoadWindow] = []
        deadline = time.monotonic() + spec.protocol.run_timeout_s
        worker_ps = ps_process(process.pid)
        while True:
            cancel = self._poll_control(spec.run_id)
            if cancel:
                return "skipped", cancel
            if time.monotonic() > deadline:
                return "failed", (f"timed out after {spec.protocol.run_timeout_s:.0f} s "
                                  "(protocol.run_timeout_s); the worker was killed")
            try:
                message = conn.recv() if conn.poll(0.1) else None
            except (EOFError, OSError):
                process.join(timeout=2)
                return "failed", death_reason(process.exitcode)
            if message is None:
                if not process.is_alive():
                    if conn.poll(0):  # it sent its last words just before exiting
                        continue
                    return "failed", death_reason(process.exitcode)
                continue
            kind, payload = message
            if kind == "phase":
                edge = payload.pop("edge", None)
                if edge == "start":
                    sampler.read_now()
                    windows.append(CpuLoadWindow(payload["t"], worker_ps))
                elif edge == "end" and windows:
                    sampler.read_now()
                    windows[-1].close(payload["t"])
                    continue  # the start edge of the repeat already announced the phase
                self.emit(ev.PhaseChanged(
                    run_id=spec.run_id, phase=payload["phase"], repeat=payload.get("repeat"),
                    repeats=payload.get("repeats"), iterations=payload.get("iterations"),
                ))
            elif kind == "result":
                return "finished", (payload, self._window_energies(windows))
            elif kind == "skip":
                return "skipped", payload["reason"]
            elif kind == "error":
                return "failed", payload["reason"]

    def _window_energies(self, windows: list[CpuLoadWindow]) -> list[WindowEnergy]:
        """Energy of each timed window, with both edges interpolated once the counters have
        moved past them (a counter that steps every 100 ms has not yet stepped at the edge)."""
        sampler = self.sampler
        assert sampler is not None, "the sensors start before the first run"
        settle_s = max([s.update_period_s or 0.0 for s in self.sensor_infos]
                       + [sampler.period_s])
        closed = [(w, w.end_t) for w in windows if w.end_t is not None]
        last_end = max((end_t for _, end_t in closed), default=0.0)
        while time.monotonic() < last_end + settle_s:
            time.sleep(sampler.period_s)
        sampler.read_now()
        out = []
        for w, end_t in closed:
            energy = sampler.window(sampler.energy_at(w.start_t), w.start_t, end_t)
            out.append(WindowEnergy(
                duration_s=end_t - w.start_t,
                energy_j={name: e.energy_j for name, e in energy.items()},
                other_cpu_load_pct=w.other_cpu_load_pct,
                worker_cpu_s=w.worker_cpu_s,
                faults=sampler.failures(w.start_t, end_t + settle_s),
            ))
        return out

    def _poll_control(self, run_id: str | None = None) -> str | None:
        """Apply stop/cancel commands; returns a reason when the current run is cancelled."""
        for command in self.control.poll():
            if command == "stop":
                self.stop_requested = True
            elif command.startswith("cancel") and run_id:
                target = command.partition(" ")[2].strip()
                if not target or target == run_id:
                    return "cancelled by the user"
        if self.stop_requested and run_id:
            return "session stopped during this run"
        return None

    # ------------------------------------------------------------------ results
    def _record(self, spec: RunSpec, **fields: Any) -> RunRecord:
        return RunRecord(
            run_id=spec.run_id, model=spec.model.ref, task=spec.task,
            technique=spec.technique.slug, device=spec.device, batch_size=spec.batch_size,
            seq_len=spec.seq_len, resolution=spec.resolution, repeats=spec.protocol.repeats,
            workload=spec.workload, max_new_tokens=spec.max_new_tokens,
            **fields,
        )

    def _end_run(self, spec: RunSpec, status: RunStatus, reason: str) -> None:
        record = self._record(spec, status=status, reason=reason)
        self.counts[status] += 1
        self.writer.record_run(record)
        write_json(self.writer.run_dir(spec.run_id) / "result.json", record.as_dict())
        event = ev.RunSkipped if status == "skipped" else ev.RunFailed
        self.emit(event(run_id=spec.run_id, reason=reason))

    def _finish_run(self, spec: RunSpec, result: WorkerResult, windows: list[WindowEnergy],
                    timings_s: dict[str, float], gpus: dict[str, Any]) -> None:
        try:
            figures = run_figures(
                windows=windows, iterations=result.iterations, batch_size=spec.batch_size,
                sensors=sensors_for_device(self.sensor_infos, result.device),
                idle_power_w=self.idle_power_w, latencies_ms=result.latencies_ms,
                max_spread=spec.protocol.max_spread, intensity=self.intensity,
                generation=result.generation,
            )
        except NoEnergyWindows as exc:
            self._end_run(spec, "failed", f"no energy could be measured: {exc}")
            return
        record = dataclasses.replace(
            self._record(spec, **figures.columns(), **result.quality.csv_columns()),
            task=result.task, device=result.device, status="finished",
            iterations=round(median(result.iterations)),
            size_bytes=result.size_bytes, params=result.params,
            nonzero_params=result.nonzero_params, peak_mem_mb=result.peak_mem_mb,
            flops_per_inference=result.flops_per_inference,
            energy_delay_j_s=figures.energy_j_per_inference * figures.latency_ms_p50 / 1000.0,
            warnings=result.warnings + figures.warnings,
        )
        self.writer.write_latencies(spec.run_id, result.latencies_ms)
        self.writer.write_result(record, figures, result, {
            "technique": {"spec": spec.technique.to_yaml(), **result.technique_details},
            "timings_s": timings_s,
            "carbon_intensity": dataclasses.asdict(self.intensity),
            "gpus": gpus,
        })
        self.counts["finished"] += 1
        self.writer.record_run(record)
        if figures.energy_fault:
            self.emit(ev.Notice(level="error", run_id=spec.run_id,
                                message=f"{spec.run_id}: energy not trustworthy: "
                                f"{figures.energy_fault}"))
        for warning in figures.warnings:
            self.emit(ev.Notice(level="warning", message=warning, run_id=spec.run_id))
        self.emit(ev.RunFinished(run_id=spec.run_id, row=record.as_dict()))
