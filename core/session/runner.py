"""The runner: one process per session. Samples sensors, runs each model variant's runs
(session.plan.VariantBatch: loaded and compressed once, each input size its own run) in a worker
of its own through session.unit.execute_unit, where its dispatch sends them: here, one variant at
a time (port.HERE), or as scale/ spreads them over this box's GPUs or a Ray cluster.

It never imports torch. Workers are forked from a forkserver that preloaded torch and transformers
(no CUDA initialised there), so each variant starts in a clean process without paying the imports
again. Energy per window comes from the sampler's readings at the edges the worker reports.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence, Set
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from energy_console.core.measure.carbon import resolve_intensity
from energy_console.core.measure.energy import protocol_for_sensors
from energy_console.core.measure.host import host_info
from energy_console.core.measure.sampler import DISPLAY_HZ, Sampler
from energy_console.core.measure.sensors import Detection, SensorInfo, describe, detect
from energy_console.core.session.guard import (
    WriteFailed,
    WriteGuard,
    live_runner,
    record_refusal,
    undo_start,
)
from energy_console.core.session.locks import SessionLocks
from energy_console.core.session.machine_lock import MachineBusy
from energy_console.core.session.plan import RunSpec, VariantBatch, plan_batches
from energy_console.core.session.port import HERE, NO_TURN, Dispatch, DispatchFailed, unpinned
from energy_console.core.session.recorder import RunRecording
from energy_console.core.session.rules import (
    IdleSchedule,
    UnloadableModels,
    before_variant,
    charged_sensors,
    idle_events,
)
from energy_console.core.session.stopping import INTERRUPTED, STOPPED_BEFORE, StopControl
from energy_console.core.session.unit import Placement, UnitSetting, execute_unit
from energy_console.core.session.worker_process import forkserver_context
from energy_console.core.spec.profile import Profile
from energy_console.core.store import events as ev
from energy_console.core.store.control import ControlReader
from energy_console.core.store.follow import write_summary
from energy_console.core.store.session_dir import SessionWriter
from energy_console.core.worker.variant_cache import cache_folder


@dataclass
class SessionOutcome:
    path: Path
    status: str  # completed | stopped | failed
    finished: int
    skipped: int
    failed: int
    message: str = ""
    refused: bool = False  # never started: the machine was busy or the session still running


class Runner(RunRecording, StopControl):
    def __init__(
        self,
        profile: Profile,
        session_dir: Path,
        device: str | None = None,
        on_event: Callable[[ev.Event], None] | None = None,
        done: Set[str] = frozenset(),
        resume: bool = False,
        changes: tuple[str, ...] = (),
        dispatch: Dispatch = HERE,
    ):
        """`dispatch`: where the runs go (scale.placement builds one for --gpus and --ray)."""
        self.profile = profile
        self.path = session_dir
        self.device = device
        self.on_event = on_event
        self.batches = plan_batches(profile, device, done)
        self.specs = [spec for batch in self.batches for spec in batch.runs]
        self.session_name, self.total_runs = session_dir.name, len(self.specs)
        self.writer: SessionWriter  # opened first thing in run()
        self.sampler: Sampler | None = None
        self.detection: Detection | None = None
        self.sensor_infos: list[SensorInfo] = []
        self.idle_power_w: dict[str, float] = {}
        self.idle_busy_pct = 0.0  # other processes' CPU use during the idle baselines, at most
        self.stop_requested = False
        self._stop_told = False  # the STOPPING notice was emitted
        self.counts = {"finished": 0, "skipped": 0, "failed": 0}
        self.intensity = resolve_intensity(profile.carbon)
        self.dispatch = dispatch
        self._worker_context: Any = None  # the forkserver, started before the first baseline
        self._lock = threading.RLock()  # lanes share the session's files and counts
        self._ended_ids: set[str] = set()
        self._main_records, self._interrupt_pending = 0, False
        self._control_lock = threading.Lock()
        self._cancels: set[str] = set()  # run ids the user cancelled, until their lane sees it
        # pinned runs, from their events: run id -> (node, start) now; (id, node, start, end)
        self._active: dict[str, tuple[str, float]] = {}
        self._spans: list[tuple[str, str, float, float]] = []
        self._mono_to_wall = time.time() - time.monotonic()
        self.resume = resume
        self.changes = tuple(changes)  # how the profile differs from the resumed session's
        self.guard = WriteGuard(session_dir)
        self._samples_broken = False
        self.unloadable = UnloadableModels()
        self.tracker: Any = None  # core.tracking.MlflowTracker when the profile asks for MLflow
        self.variant_cache = cache_folder(profile.protocol.variant_cache, session_dir / "cache")

    # ------------------------------------------------------------------ session
    def run(self) -> SessionOutcome:
        """The lock comes first: nothing is written into the session before it is held, so a
        refused run leaves a running session (and every other) as it was."""
        lock = SessionLocks(self.dispatch.gpus, self.profile.exclusive) \
            if self.dispatch.locks_here else None
        try:
            if lock:
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
            before = set(os.listdir(self.path)) if self.path.is_dir() else None
            try:
                self.path.mkdir(parents=True, exist_ok=True)
                self.writer = SessionWriter(self.path)
                self._write_profile()
            except OSError as exc:
                failure = WriteFailed.from_os_error(self.path, exc, self.path)
                undo_start(self.path, before, str(failure))
                print(f"error: {failure}", file=sys.stderr)
                return self._outcome("failed", str(failure))
            outcome = self._run_locked()
            if outcome.status == "failed":  # a start that could not write its first event
                undo_start(self.path, before, outcome.message)
            return outcome
        finally:
            if lock:
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
                total_runs=self.total_runs, runner_pid=os.getpid(),
                sensors=[dataclasses.asdict(s) for s in self.sensor_infos],
                missing_sensors=[dataclasses.asdict(m) for m in detection.missing],
                runs_by_workload=dict(Counter(spec.workload for spec in self.specs))))
            if self.changes:
                self.emit(ev.Notice(level="warning", message="resumed with a changed profile ("
                                    + "; ".join(self.changes) + "); the earlier one is kept as "
                                    "profile.before-resume-N.yaml"))
            for notice in detection.notices:
                self.emit(ev.Notice(level="warning", message=notice))
            if self.profile.mlflow:
                from energy_console.core.session.tracking import MlflowTracker

                self.tracker = MlflowTracker(self.path, self.profile.name, lambda text: self.emit(
                    ev.Notice(level="warning", message=text)))
                self.tracker.start()
            self.dispatch.run_batches(self)
            self.guard.check()
            if self.stop_requested:
                status, message = "stopped", "stopped on request"
        except KeyboardInterrupt:
            status, message = "stopped", "interrupted"
            self._skip_interrupted()
        except WriteFailed as exc:  # the session ends; what was measured is kept (or printed)
            status, message = "failed", str(exc)
        except DispatchFailed as exc:  # --ray: nothing could be sent anywhere
            status, message = "failed", str(exc)
        except Exception as exc:
            status, message = "failed", f"{type(exc).__name__}: {exc}"
            raise
        finally:
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

    def _skip_interrupted(self) -> None:
        """After a second Ctrl-C: the runs that never got a record (the one cancelled midway,
        those not started) are recorded as skipped, so runs.csv holds every run of the plan."""
        self.skip_unstarted([s for s in self.specs if s.run_id not in self._ended_ids],
                            INTERRUPTED)

    def _finish_session(self, status: str, message: str) -> None:
        """The last records, written even when the disk is full: the reserve is freed first."""
        if self.guard.error:
            self.guard.release_reserve()
            if status != "failed":
                status, message = "failed", str(self.guard.error)
        if self.tracker is not None:
            self.tracker.finish(status)
        self.emit(ev.SessionFinished(status=status, message=message, **self.counts))
        self.guard.write("session.json", lambda: self._write_info(status=status))
        try:
            self.writer.close()
        except OSError as exc:  # buffered samples that found no room
            print(f"error: {WriteFailed.from_os_error(self.path / 'samples.csv', exc, self.path)}",
                  file=sys.stderr)
        self.guard.release_reserve()
        if self.guard.error:
            print(f"error: {message}", file=sys.stderr)
            return
        write_summary(self.path)  # views open the session from it, not from events.jsonl

    def _outcome(self, status: str, message: str, refused: bool = False) -> SessionOutcome:
        return SessionOutcome(self.path, status, self.counts["finished"], self.counts["skipped"],
                              self.counts["failed"], message, refused)

    def emit(self, event: ev.Event) -> None:
        """Append an event (from any lane); pinned runs' starts and ends are kept as spans; a
        pinned lane's idle baseline says whether other runs of its box overlapped it."""
        with self._lock:
            if isinstance(event, ev.IdleBaseline):
                if event.node is not None:
                    event = dataclasses.replace(event, cpu_shared=self._others_ran(
                        event.node, event.t - event.duration_s, event.t))
                self.idle_power_w.update(event.power_w)
                self.idle_busy_pct = max(self.idle_busy_pct, event.other_cpu_load_pct or 0.0)
            elif isinstance(event, ev.RunStarted) and event.node is not None:
                self._active[event.run_id] = (event.node, event.t)
            elif isinstance(event, ev.WorkerEnded):
                node, start_t = self._active.pop(event.run_id, (event.node, event.t))
                self._spans.append((event.run_id, node, start_t, event.t))
            events = self.writer._events  # noqa: SLF001 (a failed flush keeps its bytes)
            self.guard.write("events.jsonl", lambda: self.writer.append_event(event),
                             retry=events.flush, keep=event.to_json)
            if self.on_event:
                self.on_event(event)

    def emit_all(self, events: Sequence[ev.Event]) -> None:
        """Append events that carry no run's span or baseline (RunSkipped) in one flush."""
        with self._lock:
            lines = self.writer._events  # noqa: SLF001 (a failed flush keeps its bytes)
            self.guard.write("events.jsonl", lambda: self.writer.append_events(events),
                             retry=lines.flush,
                             keep=lambda: "\n".join(event.to_json() for event in events))
            if self.on_event:
                for event in events:
                    self.on_event(event)

    def _start_sensors(self) -> Detection:
        from energy_console.core.measure.sensors.period import calibrate

        self.detection = detection = detect(self.profile.sensors.cpu_tdp_w)
        calibrate(detection.sensors)  # measured update periods size the windows
        self.sensor_infos = [describe(s) for s in detection.sensors]

        # History covers a whole run, so both edges of any window are still there at its end;
        # samples are (monotonic t, sensor, watts, joules) rows.
        self.sampler = Sampler(
            detection.sensors, self.profile.protocol.sample_hz, display_hz=DISPLAY_HZ,
            on_samples=partial(self.write_samples, t_offset_s=self._mono_to_wall),
            history_s=self.profile.protocol.run_timeout_s + 60)
        self.sampler.start()
        return detection

    def _write_info(self, status: str) -> None:
        fields: dict[str, Any] = {
            "session_id": self.path.name, "profile_name": self.profile.name,
            "device": self.device or self.profile.device,
            "model_refs": [m.resolved_ref for m in self.profile.models],
            "status": status, "runner_pid": os.getpid(), "total_runs": self.total_runs,
            "idle_power_w": self.idle_power_w, "idle_other_cpu_load_pct": self.idle_busy_pct,
            "carbon_intensity": dataclasses.asdict(self.intensity),
            "spread": self.dispatch.spread,
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
    def run_lane(self, take: Callable[[], VariantBatch | None], placement: Placement,
                 pin: Callable[[RunSpec], RunSpec] = unpinned,
                 turn: AbstractContextManager[Any] = NO_TURN) -> None:
        """Variants one after another on one lane (the session's own, or one GPU's: `pin` puts
        its runs on its GPU), each taken from `take` and measured holding `turn`, after the
        cool-down and, when due, the lane's own idle baseline (session.rules)."""
        if self._worker_context is None:  # its imports neither load the idle box nor a run
            self._worker_context = forkserver_context(self.profile)
        schedule, first = IdleSchedule(self.profile.protocol), True
        idle_power_w: dict[str, float] = {}
        while (batch := take()) is not None:
            self.guard.check()
            with turn:
                if not self.stop_requested:
                    idle_power_w = self._before_variant(schedule, placement, first) \
                        or idle_power_w
                    first = False
                if self.stop_requested:  # every batch left, at once: one write, one flush
                    left = [batch, *iter(take, None)]
                    self.skip_unstarted([pin(s) for b in left for s in b.runs], STOPPED_BEFORE)
                    return
                self.run_here(batch, placement, pin, idle_power_w)

    def _before_variant(self, schedule: IdleSchedule, placement: Placement,
                        first: bool) -> dict[str, float] | None:
        """The lane's rest and, when due, its idle baseline: the charged sensors' watts."""
        assert self.sampler is not None, "the sensors start before the first run"
        reading = before_variant(self.profile.protocol, schedule, self.sampler, first,
                                 wait=self.pause, stopped=lambda: self.stop_requested)
        if reading is None:
            return None
        charged = {s.name for s in charged_sensors(self.sensor_infos, placement.gpu_index)}
        power_w, events = idle_events(reading, placement.node, placement.gpu_index, charged)
        for event in events:
            self.emit(event)
        return power_w

    def skip_reason(self, spec: RunSpec) -> str | None:
        """Why spec may not start now (the session was stopped, or its model could not be
        loaded in an earlier run), or None."""
        self.guard.check()
        if self.stop_requested:
            return STOPPED_BEFORE
        return self.unloadable.skip_reason(spec)

    def admit(self, spec: RunSpec) -> bool:
        """Whether spec may start now; if not, its record says why."""
        reason = self.skip_reason(spec)
        if reason:
            self.end_run(spec, "skipped", reason)
        return reason is None

    def run_here(self, batch: VariantBatch, placement: Placement,
                 pin: Callable[[RunSpec], RunSpec], idle_power_w: dict[str, float]) -> None:
        """Measure a variant's runs on this box and record each, charged with its lane's idle
        baseline."""
        for spec in batch.runs:
            try:
                self.writer.run_dir(spec.run_id)
            except OSError as exc:
                raise WriteFailed.from_os_error(self.writer.runs_path / spec.run_id,
                                                exc, self.path) from None
        assert self.sampler is not None, "the sensors start before the first run"
        protocol = protocol_for_sensors(self.profile.protocol, self.sensor_infos)
        execute_unit(batch, UnitSetting(
            self._worker_context, self.writer.runs_path, self.path / "cache", self.variant_cache,
            self.sampler, self.sensor_infos, placement, self.total_runs,
            worker_spec=lambda spec: dataclasses.replace(pin(spec), protocol=protocol),
            skip_reason=self.skip_reason, cancelled=self.poll_control, emit=self.emit,
            conclude=lambda spec, unit: self.conclude(pin(spec), unit, self.sensor_infos,
                                                      idle_power_w),
            skip_unstarted=lambda specs, reason: self.skip_unstarted(
                [pin(spec) for spec in specs], reason)))
