"""The runner: one process per session. Samples sensors, runs each model variant's runs in a
fresh worker (core.plan.VariantBatch: loaded and compressed once, each input size its own run).

It never imports torch. Workers are forked from a forkserver that preloaded torch and transformers
(no CUDA initialised there), so each variant starts in a clean process without paying the imports
again. A worker that dies or runs out of memory at one size fails that run alone: the variant's
other sizes go on in a fresh worker (sizes at least as large as one that ran out of memory are
skipped). Energy per window comes from the sampler's readings at the edges the worker reports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Set
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from energy_console.core import events as ev
from energy_console.core.carbon import resolve_intensity
from energy_console.core.control import ControlReader
from energy_console.core.energy import (
    NoEnergyWindows,
    protocol_for_sensors,
    run_figures,
    sensors_for_device,
)
from energy_console.core.host import gpu_record, gpu_snapshots, host_info
from energy_console.core.machine_lock import MachineBusy, MachineLock
from energy_console.core.pacing import IdleSchedule
from energy_console.core.plan import RunSpec, VariantBatch, dominates, expand, variant_batches
from energy_console.core.profile import Profile
from energy_console.core.records import RunRecord, RunStatus, WindowEnergy, WorkerResult
from energy_console.core.results import SessionWriter, write_json
from energy_console.core.sampler import Sampler
from energy_console.core.sensors import Detection, SensorInfo, describe, detect
from energy_console.core.session_guard import (
    DISK_FULL_TEXTS,
    WriteFailed,
    WriteGuard,
    live_runner,
    record_refusal,
)
from energy_console.core.stats import median
from energy_console.core.variant_cache import cache_folder
from energy_console.core.worker_follow import WorkerOutcome, follow_run
from energy_console.core.worker_process import (
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
    refused: bool = False  # never started: the machine was busy or the session still running


def model_key(spec: RunSpec) -> tuple:
    """What identifies a model across its runs (run ids stay opaque)."""
    entry = spec.model
    return (entry.source, entry.resolved_ref, entry.task, entry.trust_remote_code)


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


class Runner:
    def __init__(
        self,
        profile: Profile,
        session_dir: Path,
        device: str | None = None,
        on_event: Callable[[ev.Event], None] | None = None,
        done: Set[str] = frozenset(),
        resume: bool = False,
        changes: tuple[str, ...] = (),
    ):
        self.profile = profile
        self.path = session_dir
        self.device = device
        self.on_event = on_event
        self.batches = variant_batches(expand(profile, device, done))
        self.specs = [spec for batch in self.batches for spec in batch.runs]
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
        self.resume = resume
        self.changes = tuple(changes)  # how the profile differs from the resumed session's
        self.guard = WriteGuard(session_dir)
        self._samples_broken = False
        self._unloadable: dict[tuple, str] = {}  # model key -> why it could not be loaded
        self._variant_cache = cache_folder(profile.protocol.variant_cache, session_dir / "cache")

    # ------------------------------------------------------------------ session
    def run(self) -> SessionOutcome:
        """The lock comes first: nothing is written into the session before it is held, so a
        refused run leaves a running session (and every other) as it was."""
        lock = MachineLock()
        try:
            lock.acquire(self.path)
        except MachineBusy as exc:
            return self._refused(str(exc))
        try:
            live = live_runner(self.path)
            if live:
                return self._refused(
                    f"{self.path} is still being measured by runner {live} (another lock file: "
                    "ENERGY_CONSOLE_LOCK differs); stop it first (`energy-console attach "
                    f"{self.path}`, then x), or start a new session")
            try:
                self.path.mkdir(parents=True, exist_ok=True)
                self.writer = SessionWriter(self.path)
                self._write_profile()
            except OSError as exc:
                failure = WriteFailed.from_os_error(self.path, exc)
                print(f"error: {failure}", file=sys.stderr)
                return self._outcome("failed", str(failure))
            return self._run_locked()
        finally:
            lock.release()

    def _refused(self, message: str) -> SessionOutcome:
        """End without running. A session being resumed is left untouched; an empty directory
        made for this run is removed (views would take it for the newest session); a directory a
        view prepared (it follows it) is told why."""
        event = record_refusal(self.path, message)
        if event and self.on_event:
            self.on_event(event)
        return self._outcome("failed", message, refused=True)

    def _write_profile(self) -> None:
        """profile.yaml as run; a resume keeps the session's unless it was resumed with
        changes (then the earlier one is kept beside it)."""
        if self.resume and (self.path / "profile.yaml").exists() and not self.changes:
            return
        self.writer.write_profile(self.profile.to_yaml(), keep_previous=self.resume)

    def _run_locked(self) -> SessionOutcome:
        self.control = ControlReader(self.path)
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
        status, message = "completed", ""
        try:
            self.guard.reserve_space()
            detection = self._start_sensors()
            self.guard.write("session.json", lambda: self._write_info(status="running"))
            self.guard.check()
            self.emit(ev.SessionStarted(
                session_id=self.path.name, profile_name=self.profile.name,
                total_runs=len(self.specs), runner_pid=os.getpid(),
                sensors=[dataclasses.asdict(s) for s in self.sensor_infos],
                missing_sensors=[dataclasses.asdict(m) for m in detection.missing],
            ))
            if self.changes:
                self.emit(ev.Notice(level="warning", message="resumed with a changed profile ("
                                    + "; ".join(self.changes) + "); the earlier one is kept as "
                                    "profile.before-resume-N.yaml"))
            for notice in detection.notices:
                self.emit(ev.Notice(level="warning", message=notice))
            context = forkserver_context()
            idle = IdleSchedule(self.profile.protocol)
            for batch in self.batches:
                self.guard.check()
                if batch is not self.batches[0]:
                    self._pause(idle.cooldown_s)
                if idle.due(time.monotonic()) and not self.stop_requested:
                    self._idle_baseline()
                    idle.taken(time.monotonic())
                self.run_batch(context, batch)
            self.guard.check()
            if self.stop_requested:
                status, message = "stopped", "stopped on request"
        except KeyboardInterrupt:
            status, message = "stopped", "interrupted"
        except WriteFailed as exc:  # the session ends; what was measured is kept (or printed)
            status, message = "failed", str(exc)
        except Exception as exc:
            status, message = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            stop_worker(self._worker)
            if self.sampler:
                self.sampler.stop()
                for sensor in self.sampler.sensors:
                    sensor.close()
            self._finish_session(status, message)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.guard.error and status != "failed":
            status, message = "failed", str(self.guard.error)
        return self._outcome(status, message)

    def _finish_session(self, status: str, message: str) -> None:
        """The last records, written even when the disk is full: the reserve is freed first."""
        if self.guard.error:
            self.guard.release_reserve()
            if status != "failed":
                status, message = "failed", str(self.guard.error)
        self.emit(ev.SessionFinished(status=status, message=message, **self.counts))
        self.guard.write("session.json", lambda: self._write_info(status=status))
        try:
            self.writer.close()
        except OSError as exc:  # buffered samples that found no room
            print(f"error: {WriteFailed.from_os_error(self.path / 'samples.csv', exc)}",
                  file=sys.stderr)
        self.guard.release_reserve()
        if self.guard.error:
            print(f"error: {message}", file=sys.stderr)

    def _outcome(self, status: str, message: str, refused: bool = False) -> SessionOutcome:
        return SessionOutcome(self.path, status, self.counts["finished"], self.counts["skipped"],
                              self.counts["failed"], message, refused)

    def emit(self, event: ev.Event) -> None:
        events = self.writer._events  # noqa: SLF001 (a failed flush keeps its bytes: retry that)
        self.guard.write("events.jsonl", lambda: self.writer.append_event(event),
                    retry=events.flush, keep=event.to_json)
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
            if self._samples_broken:
                return  # the figures come from the sampler's memory: the run goes on
            try:
                self.writer.append_samples(
                    (s.t + offset, s.sensor, s.power_w, s.energy_j) for s in samples
                )
            except OSError as exc:
                self._samples_broken = True
                if self.guard.error is None:
                    self.guard.error = WriteFailed.from_os_error(self.path / "samples.csv", exc)

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
        fields: dict[str, Any] = {
            "session_id": self.path.name,
            "profile_name": self.profile.name,
            "device": self.device or self.profile.device,
            "model_refs": [m.resolved_ref for m in self.profile.models],
            "status": status,
            "runner_pid": os.getpid(),
            "total_runs": len(self.specs),
            "idle_power_w": self.idle_power_w,
            "carbon_intensity": dataclasses.asdict(self.intensity),
        }
        if self.detection:
            fields["sensors"] = [dataclasses.asdict(s) for s in self.sensor_infos]
            fields["missing_sensors"] = [dataclasses.asdict(m) for m in self.detection.missing]
            fields["sensor_notices"] = self.detection.notices
        if status != "running":
            fields["ended_at"] = time.time()
            fields["counts"] = self.counts
        self.writer.update_info(fields, first=host_info)

    # ------------------------------------------------------------------ runs
    def run_batch(self, context, batch: VariantBatch) -> None:
        """Every run of one variant, in order: one worker while it stays sound, a fresh one for
        the runs left after a worker died or ran out of memory."""
        pending = list(batch.runs)
        while pending:
            runnable = []
            for spec in pending:
                reason = ("session stopped before this run" if self.stop_requested
                          else self._known_to_fail(spec))
                if reason:
                    self._end_run(spec, "skipped", reason)
                else:
                    runnable.append(spec)
            if not runnable:
                return
            pending = self._run_worker(context, runnable)

    def _run_worker(self, context, specs: list[RunSpec]) -> list[RunSpec]:
        """One worker for these runs of a variant; returns the runs it left unmeasured."""
        protocol = protocol_for_sensors(self.profile.protocol, self.sensor_infos)
        worker_specs = [dataclasses.replace(spec, protocol=protocol) for spec in specs]
        for spec in specs:
            try:
                self.writer.run_dir(spec.run_id)
            except OSError as exc:
                raise WriteFailed.from_os_error(self.writer.runs_path / spec.run_id,
                                                exc) from None
        spawn_t = time.monotonic()
        process, conn = start_worker(context, tuple(worker_specs), self.writer.runs_path,
                                     self.path / "cache", self._variant_cache)
        self._worker = process
        assert self.sampler is not None, "the sensors start before the first run"
        try:
            for i, spec in enumerate(worker_specs):
                gpus_at_start = gpu_snapshots(self.sensor_infos)
                self.emit(ev.RunStarted(
                    run_id=spec.run_id, index=spec.index, total=len(self.specs),
                    model=spec.model.ref, technique=spec.technique.slug,
                    batch_size=spec.batch_size, seq_len=spec.seq_len,
                    resolution=spec.resolution, worker_pid=process.pid,
                ))
                with contextlib.suppress(OSError):  # a dead worker: follow_run says why
                    conn.send(("go", spec.run_id))
                outcome = follow_run(spec, process, conn, self.sampler, self.sensor_infos,
                                     partial(self._poll_control, spec.run_id), self.emit)
                rest = worker_specs[i + 1:]
                if outcome.run_id:  # it died preparing a later size: that one fails
                    spec = next(s for s in rest if s.run_id == outcome.run_id)
                    rest = [worker_specs[i]] + [s for s in rest if s is not spec]
                elif outcome.result is not None:
                    self._finish_run(spec, outcome.result, outcome.windows,
                                     run_timings(outcome.result, spawn_t if i == 0 else None),
                                     gpu_record(gpus_at_start, gpu_snapshots(self.sensor_infos)))
                if outcome.result is None:
                    self._end_run(spec, outcome.status, outcome.reason)
                    if outcome.status == "failed":
                        self._remember_failure(spec, outcome)
                if outcome.worker_ended:
                    return self._after_out_of_memory(spec, outcome, rest)
            return []
        finally:
            conn.close()
            stop_worker(process)
            self._worker = None

    def _after_out_of_memory(self, failed: RunSpec, outcome: WorkerOutcome,
                             rest: list[RunSpec]) -> list[RunSpec]:
        """The runs left for a fresh worker: after an out-of-memory, sizes at least as large as
        the one that failed are skipped with the reason."""
        if not outcome.out_of_memory:
            return rest
        left = []
        for spec in rest:
            if dominates(spec, failed):
                self._end_run(spec, "skipped", f"not run: {failed.run_id}, no larger than this "
                              f"size, ran out of memory ({outcome.reason})")
            else:
                left.append(spec)
        return left

    def _remember_failure(self, spec: RunSpec, outcome: WorkerOutcome) -> None:
        """A model that could not load is not tried again for every variant (an unreachable
        hub id costs its retries once); a worker that found the disk full ends the session.
        Deaths and timeouts are not remembered: the next run may well get through."""
        reason = outcome.reason
        if any(text in reason for text in DISK_FULL_TEXTS) and self.guard.error is None:
            self.guard.error = WriteFailed(self.writer.runs_path / spec.run_id, reason, True)
        if outcome.reported_error and outcome.last_phase in (None, "loading"):  # never loaded
            self._unloadable.setdefault(model_key(spec), f"{spec.run_id}: {reason}")

    def _known_to_fail(self, spec: RunSpec) -> str | None:
        """Why this run is skipped without starting it, after an earlier run of its model."""
        loading = self._unloadable.get(model_key(spec))
        if loading:
            return (f"not run: {spec.model.ref} could not be loaded in an earlier run of this "
                    f"session ({loading})")
        return None

    def _poll_control(self, run_id: str | None = None) -> str | None:
        """Apply stop/cancel commands; returns a reason when the current run is cancelled."""
        cancelled = None
        for command in self.control.poll():  # checked commands: exact `stop`, `cancel ID`
            if command.action == "stop":
                self.stop_requested = True
            elif command.action == "cancel" and run_id and command.run_id == run_id:
                cancelled = "cancelled by the user"
            elif command.action == "ignored":
                self.emit(ev.Notice(level="warning", message=command.reason, run_id=run_id))
        if cancelled:
            return cancelled
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
            variant_cache_hit=result.variant_cache_hit,
            flops_per_inference=result.flops_per_inference,
            energy_delay_j_s=figures.energy_j_per_inference * figures.latency_ms_p50 / 1000.0,
            warnings=result.warnings + figures.warnings,
        )
        # details first, the row last (a view that sees the row finds them); on a full disk the
        # first failure frees the reserve, and the row is retried or printed, never lost
        self.guard.write(f"runs/{spec.run_id}/latency.csv",
                    lambda: self.writer.write_latencies(spec.run_id, result.latencies_ms))
        self.guard.write(f"runs/{spec.run_id}/result.json", lambda: self.writer.write_result(
            record, figures, result, {
                "technique": {"spec": spec.technique.to_yaml(), **result.technique_details},
                "timings_s": timings_s,
                "variant": {"cache_hit": result.variant_cache_hit,
                            "first_in_worker": "worker_start_to_first_warmup" in timings_s},
                "carbon_intensity": dataclasses.asdict(self.intensity),
                "gpus": gpus,
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
