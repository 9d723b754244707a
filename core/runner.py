"""The runner: one process per session. Samples sensors, runs each RunSpec in a fresh worker.

It never imports torch. Workers are forked from a forkserver that preloaded torch and transformers
(no CUDA initialised there), so each run starts in a clean process without paying the imports again.
Energy per window comes from the sampler's readings at the edges the worker reports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import signal
import sys
import time
from collections.abc import Callable
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
    refused: bool = False  # never started: the machine was busy or the session still running


RESERVE_NAME = ".space-reserve"
RESERVE_BYTES = 1 << 20  # freed when the disk fills, so the last records still fit
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
DISK_FULL_TEXTS = ("No space left on device", "Disk quota exceeded", "[Errno 28]", "[Errno 122]")


class WriteFailed(Exception):
    """A session file could not be written (the disk is full, read-only, failing)."""

    def __init__(self, path: Path, why: str, disk_full: bool):
        self.path, self.disk_full = path, disk_full
        what = "disk full" if disk_full else "write error"
        super().__init__(f"{what}: cannot write {path} ({why}); free space there (or fix the "
                         f"file system), then continue with `energy-console run PROFILE --resume "
                         f"{path.parent if path.parent.name != 'runs' else path.parent.parent}`")

    @classmethod
    def from_os_error(cls, path: Path, exc: OSError) -> WriteFailed:
        where = Path(exc.filename) if isinstance(exc.filename, str) else path
        return cls(where, exc.strerror or str(exc), exc.errno in DISK_FULL_ERRNOS)


def record_refusal(path: Path, message: str) -> ev.SessionFinished | None:
    """A session that never started: a directory being resumed (it has events) is left as it
    is; an empty one made for this run is removed (views would take it for the newest session);
    one a view prepared and follows (profile.yaml, runner.log, no events yet) is told why.
    Returns the event written, if one was."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not (path / "events.jsonl").exists():
            if not any(path.iterdir()):
                path.rmdir()
                return None
            event = ev.SessionFinished(status="failed", message=message, finished=0, skipped=0,
                                       failed=0)
            with (path / "events.jsonl").open("a", encoding="utf-8") as f:
                f.write(event.to_json() + "\n")
            return event
    return None


def live_runner(session_dir: Path) -> int | None:
    """The pid of a runner still measuring into session_dir (other than this process)."""
    import psutil

    try:
        info = json.loads((session_dir / "session.json").read_text(encoding="utf-8"))
        pid = int(info.get("runner_pid") or 0)
        started = float(info.get("started_at") or 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    if info.get("status") != "running" or pid <= 0 or pid == os.getpid():
        return None
    try:
        process = psutil.Process(pid)
        alive = process.status() != psutil.STATUS_ZOMBIE
        return pid if alive and process.create_time() <= started + 1 else None
    except psutil.Error:
        return None


def model_key(spec: RunSpec) -> tuple:
    """What identifies a model across its runs (run ids stay opaque)."""
    entry = spec.model
    return (entry.source, entry.resolved_ref, entry.task, entry.trust_remote_code)


class Runner:
    def __init__(
        self,
        profile: Profile,
        session_dir: Path,
        device: str | None = None,
        on_event: Callable[[ev.Event], None] | None = None,
        done: set[str] = frozenset(),
        resume: bool = False,
        changes: tuple[str, ...] = (),
    ):
        self.profile = profile
        self.path = session_dir
        self.device = device
        self.on_event = on_event
        self.specs = expand(profile, device, done)
        self.writer: SessionWriter | None = None
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
        self._write_error: WriteFailed | None = None
        self._samples_broken = False
        self._phase: str | None = None  # the running worker's last phase
        self._reported_error = False  # the running worker said why it failed (not a death)
        self._unloadable: dict[tuple, str] = {}  # model key -> why it could not be loaded

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
                return SessionOutcome(self.path, "failed", **self.counts, message=str(failure))
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
        return SessionOutcome(self.path, "failed", **self.counts, message=message, refused=True)

    def _write_profile(self) -> None:
        """profile.yaml as run. A resume keeps the session's; one resumed with changes keeps
        the earlier profile beside it as profile.before-resume-N.yaml."""
        target = self.path / "profile.yaml"
        if self.resume and target.exists():
            if not self.changes:
                return
            n = 1
            while (self.path / f"profile.before-resume-{n}.yaml").exists():
                n += 1
            target.replace(self.path / f"profile.before-resume-{n}.yaml")
        target.write_text(self.profile.to_yaml(), encoding="utf-8")

    def _run_locked(self) -> SessionOutcome:
        self.control = ControlReader(self.path)
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
        status, message = "completed", ""
        try:
            self._reserve_space()
            self._start_sensors()
            self._write("session.json", lambda: self._write_info(status="running"))
            self._check_writes()
            self.emit(ev.SessionStarted(
                session_id=self.path.name, profile_name=self.profile.name,
                total_runs=len(self.specs), runner_pid=os.getpid(),
                sensors=[dataclasses.asdict(s) for s in self.sensor_infos],
                missing_sensors=[dataclasses.asdict(m) for m in self.detection.missing],
            ))
            if self.changes:
                self.emit(ev.Notice(level="warning", message="resumed with a changed profile ("
                                    + "; ".join(self.changes) + "); the earlier one is kept as "
                                    "profile.before-resume-N.yaml"))
            for notice in self.detection.notices:
                self.emit(ev.Notice(level="warning", message=notice))
            context = forkserver_context()
            self._idle_baseline()
            for spec in self.specs:
                self._check_writes()
                if spec is not self.specs[0]:
                    self._pause(self.profile.protocol.cooldown_s)
                if self.stop_requested:
                    self._end_run(spec, "skipped", "session stopped before this run")
                    continue
                reason = self._known_to_fail(spec)
                if reason:
                    self._end_run(spec, "skipped", reason)
                    continue
                self._run_one(context, spec)
            self._check_writes()
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
        if self._write_error and status != "failed":
            status, message = "failed", str(self._write_error)
        return SessionOutcome(self.path, status, **self.counts, message=message)

    def _finish_session(self, status: str, message: str) -> None:
        """The last records, written even when the disk is full: the reserve is freed first."""
        if self._write_error:
            self._release_reserve()
            if status != "failed":
                status, message = "failed", str(self._write_error)
        self.emit(ev.SessionFinished(status=status, message=message, **self.counts))
        self._write("session.json", lambda: self._write_info(status=status))
        try:
            self.writer.close()
        except OSError as exc:  # buffered samples that found no room
            print(f"error: {WriteFailed.from_os_error(self.path / 'samples.csv', exc)}",
                  file=sys.stderr)
        self._release_reserve()
        if self._write_error:
            print(f"error: {message}", file=sys.stderr)

    def emit(self, event: ev.Event) -> None:
        events = self.writer._events  # noqa: SLF001 (a failed flush keeps its bytes: retry that)
        self._write("events.jsonl", lambda: self.writer.append_event(event),
                    retry=events.flush, keep=event.to_json)
        if self.on_event:
            self.on_event(event)

    # ------------------------------------------------------------------ writes
    def _write(self, name: str, write: Callable[[], None], retry: Callable[[], None] | None = None,
               keep: Callable[[], str] | None = None) -> bool:
        """Write, or note why not: the first failed write frees the reserve and is retried; a
        record that still finds no room goes to stderr (runner.log), never lost silently. The
        session ends after the run in progress (WriteFailed)."""
        try:
            write()
            return True
        except OSError as exc:
            failure = WriteFailed.from_os_error(self.path / name, exc)
        if self._write_error is None:
            self._write_error = failure
        self._release_reserve()
        try:
            (retry or write)()
            return True
        except OSError:
            pass
        if keep:
            print(f"unsaved {name} record (the disk is full): {keep()}", file=sys.stderr,
                  flush=True)
        return False

    def _check_writes(self) -> None:
        if self._write_error:
            raise self._write_error

    def _reserve_space(self) -> None:
        """Hold RESERVE_BYTES in the session, freed when the disk fills, so the run that just
        finished and the session's end still fit."""
        path = self.path / RESERVE_NAME
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                try:
                    os.posix_fallocate(fd, 0, RESERVE_BYTES)
                except OSError as exc:
                    if exc.errno in DISK_FULL_ERRNOS:
                        raise
                    os.write(fd, bytes(RESERVE_BYTES))  # file systems without fallocate
            finally:
                os.close(fd)
        except OSError as exc:
            self._write_error = WriteFailed.from_os_error(path, exc)
            self._release_reserve()
            raise self._write_error from None

    def _release_reserve(self) -> None:
        with contextlib.suppress(OSError):
            (self.path / RESERVE_NAME).unlink()

    def _on_signal(self, signum, frame) -> None:
        """Stop cleanly: the current run is cancelled, the rest recorded as skipped. A second
        Ctrl-C stops at once (what was written stays written)."""
        if signum == signal.SIGINT and self.stop_requested:
            raise KeyboardInterrupt
        self.stop_requested = True  # only a flag: a handler must not write mid-write

    def _start_sensors(self) -> None:
        from energy_console.core.sensors.period import calibrate

        self.detection = detect(self.profile.sensors.cpu_tdp_w)
        calibrate(self.detection.sensors)  # measured update periods size the windows
        self.sensor_infos = [describe(s) for s in self.detection.sensors]
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
                if self._write_error is None:
                    self._write_error = WriteFailed.from_os_error(self.path / "samples.csv", exc)

        # History covers a whole run, so both edges of any window are still there at its end.
        self.sampler = Sampler(self.detection.sensors, self.profile.protocol.sample_hz,
                               on_samples=write_samples,
                               history_s=self.profile.protocol.run_timeout_s + 60)
        self.sampler.start()

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
            "device": self.device or self.profile.device,
            "model_refs": [m.resolved_ref for m in self.profile.models],
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
        self._phase, self._reported_error = None, False
        try:
            run_dir = self.writer.run_dir(spec.run_id)
        except OSError as exc:
            raise WriteFailed.from_os_error(self.writer.runs_path / spec.run_id, exc) from None
        process, parent_conn = start_worker(context, worker_spec, run_dir, self.path / "cache")
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
            if status == "failed":
                self._remember_failure(spec, outcome)

    def _remember_failure(self, spec: RunSpec, reason: str) -> None:
        """A model that could not load is not tried again for every variant (an unreachable
        hub id costs its retries once); a worker that found the disk full ends the session.
        Deaths and timeouts are not remembered: the next run may well get through."""
        if any(text in reason for text in DISK_FULL_TEXTS) and self._write_error is None:
            self._write_error = WriteFailed(self.writer.runs_path / spec.run_id, reason, True)
        if self._reported_error and self._phase in (None, "loading"):  # it never loaded
            self._unloadable.setdefault(model_key(spec), f"{spec.run_id}: {reason}")

    def _known_to_fail(self, spec: RunSpec) -> str | None:
        """Why this run is skipped without starting it, after an earlier run of its model."""
        loading = self._unloadable.get(model_key(spec))
        if loading:
            return (f"not run: {spec.model.ref} could not be loaded in an earlier run of this "
                    f"session ({loading})")
        return None

    def _follow_worker(self, spec: RunSpec, process, conn) -> tuple[RunStatus, Any]:
        """Relay the worker's phases and measure its windows until it ends.

        ("finished", (WorkerResult, [WindowEnergy])) or ("skipped" | "failed", reason)."""
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
                self._phase = payload.get("phase")
                edge = payload.pop("edge", None)
                if edge == "start":
                    self.sampler.read_now()
                    windows.append(CpuLoadWindow(payload["t"], worker_ps))
                elif edge == "end" and windows:
                    self.sampler.read_now()
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
                self._reported_error = True
                return "failed", payload["reason"]

    def _window_energies(self, windows: list[CpuLoadWindow]) -> list[WindowEnergy]:
        """Energy of each timed window, with both edges interpolated once the counters have
        moved past them (a counter that steps every 100 ms has not yet stepped at the edge)."""
        settle_s = max([s.update_period_s or 0.0 for s in self.sensor_infos]
                       + [self.sampler.period_s])
        closed = [w for w in windows if w.end_t is not None]
        last_end = max((w.end_t for w in closed), default=0.0)
        while time.monotonic() < last_end + settle_s:
            time.sleep(self.sampler.period_s)
        self.sampler.read_now()
        out = []
        for w in closed:
            energy = self.sampler.window(self.sampler.energy_at(w.start_t), w.start_t, w.end_t)
            out.append(WindowEnergy(
                duration_s=w.end_t - w.start_t,
                energy_j={name: e.energy_j for name, e in energy.items()},
                other_cpu_load_pct=w.other_cpu_load_pct,
                worker_cpu_s=w.worker_cpu_s,
                faults=self.sampler.failures(w.start_t, w.end_t + settle_s),
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
            **fields,
        )

    def _end_run(self, spec: RunSpec, status: RunStatus, reason: str) -> None:
        record = self._record(spec, status=status, reason=reason)
        self.counts[status] += 1
        self._keep_record(record)
        self._write(f"runs/{spec.run_id}/result.json", lambda: write_json(
            self.writer.run_dir(spec.run_id) / "result.json", record.as_dict()))
        event = ev.RunSkipped if status == "skipped" else ev.RunFailed
        self.emit(event(run_id=spec.run_id, reason=reason))

    def _keep_record(self, record: RunRecord) -> None:
        """The run's row in runs.csv: written first, retried with the reserve freed, and
        printed whole to stderr (runner.log) when even that finds no room."""
        self._write("runs.csv", lambda: self.writer.record_run(record),
                    keep=lambda: json.dumps(record.as_dict(), default=str))

    def _finish_run(self, spec: RunSpec, result: WorkerResult, windows: list[WindowEnergy],
                    timings_s: dict[str, float], gpus: dict[str, Any]) -> None:
        try:
            figures = run_figures(
                windows=windows, iterations=result.iterations, batch_size=spec.batch_size,
                sensors=sensors_for_device(self.sensor_infos, result.device),
                idle_power_w=self.idle_power_w, latencies_ms=result.latencies_ms,
                max_spread=spec.protocol.max_spread, intensity=self.intensity,
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
            warnings=result.warnings + figures.warnings,
        )
        # details first, the row last (a view that sees the row finds them); on a full disk the
        # first failure frees the reserve, and the row is retried or printed, never lost
        self._write(f"runs/{spec.run_id}/latency.csv",
                    lambda: self.writer.write_latencies(spec.run_id, result.latencies_ms))
        self._write(f"runs/{spec.run_id}/result.json", lambda: self.writer.write_result(
            record, figures, result, {
                "technique": {"spec": spec.technique.to_yaml(), **result.technique_details},
                "timings_s": timings_s,
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
