"""The runner: one process per session. Samples sensors, runs each RunSpec in a fresh worker.

It never imports torch. Workers are forked from a forkserver that preloaded torch and transformers
(no CUDA initialised there), so each run starts in a clean process without paying the imports again.
Energy per window comes from the sampler's readings at the edges the worker reports.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import platform
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from energy_console.core import events as ev
from energy_console.core.carbon import co2e_g, resolve_intensity
from energy_console.core.machine_lock import MachineBusy, MachineLock
from energy_console.core.plan import RunSpec, expand
from energy_console.core.profile import Profile
from energy_console.core.results import ControlReader, SessionWriter, write_json
from energy_console.core.sampler import Sampler
from energy_console.core.sensors import Detection, describe, detect
from energy_console.core.stats import ci95_half_width, median, percentile, relative_spread

WINDOW_UPDATE_PERIODS = 10  # a timed window spans at least this many sensor update periods
KILL_GRACE_S = 3.0


@dataclass
class SessionOutcome:
    path: Path
    status: str  # completed | stopped | failed
    finished: int
    skipped: int
    failed: int
    message: str = ""


@dataclass
class _Window:
    start_t: float
    start_cpu: Any  # psutil system cpu_times
    start_worker_cpu_s: float
    end_t: float | None = None
    other_cpu_load_pct: float = 0.0
    worker_cpu_s: float = 0.0


class Runner:
    def __init__(
        self,
        profile: Profile,
        session_dir: Path,
        device: str | None = None,
        on_event: Callable[[ev.Event], None] | None = None,
        done: set[str] = frozenset(),
    ):
        self.profile = profile
        self.path = session_dir
        self.device = device
        self.on_event = on_event
        self.specs = expand(profile, device, done)
        self.writer: SessionWriter | None = None
        self.sampler: Sampler | None = None
        self.detection: Detection | None = None
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
            self._start_sensors()
            self._write_info(status="running")
            self.emit(ev.SessionStarted(
                session_id=self.path.name, profile_name=self.profile.name,
                total_runs=len(self.specs), runner_pid=os.getpid(),
                sensors=[dataclasses.asdict(describe(s)) for s in self.sampler.sensors],
                missing_sensors=[dataclasses.asdict(m) for m in self.detection.missing],
            ))
            for notice in self.detection.notices:
                self.emit(ev.Notice(level="warning", message=notice))
            context = self._worker_context()
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
            self._kill_worker()
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

    def _start_sensors(self) -> None:
        from energy_console.core.sensors.period import calibrate

        self.detection = detect(self.profile.sensors.cpu_tdp_w)
        calibrate(self.detection.sensors)  # measured update periods size the windows
        offset = self._mono_to_wall

        def write_samples(samples) -> None:
            self.writer.append_samples(
                (s.t + offset, s.sensor, s.power_w, s.energy_j) for s in samples
            )

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
        info = json.loads(info_path.read_text()) if info_path.exists() else _host_info()
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
            info["sensors"] = [dataclasses.asdict(describe(s)) for s in self.detection.sensors]
            info["missing_sensors"] = [dataclasses.asdict(m) for m in self.detection.missing]
            info["sensor_notices"] = self.detection.notices
        info.setdefault("started_at", time.time())
        if status != "running":
            info["ended_at"] = time.time()
            info["counts"] = self.counts
        write_json(info_path, info)

    # ------------------------------------------------------------------ runs
    def _worker_context(self):
        """A forkserver with torch and transformers loaded, started before the idle baseline
        so its imports neither load the idle machine nor delay the first run."""
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["energy_console.core.preload"])
        ready = context.Process(target=_forkserver_ready, name="forkserver-warmup")
        ready.start()
        ready.join()
        return context

    def _gpu_snapshots(self) -> list[dict[str, Any]]:
        """Name, driver, power limit, temperature, clock and throttle reasons of each GPU used."""
        indexes = [s.index for s in self.sampler.sensors if s.name.startswith("nvml:")]
        if not indexes:
            return []
        from energy_console.core.sensors.nvml import gpu_snapshot

        return [gpu_snapshot(i) for i in indexes]

    def _effective_protocol(self):
        """The profile's protocol with windows long enough for the slowest sensor."""
        protocol = self.profile.protocol
        periods = [1.0 / protocol.sample_hz] + [
            getattr(s, "update_period_s", None) or 0.0 for s in self.sampler.sensors
        ]
        shortest = WINDOW_UPDATE_PERIODS * max(periods)
        if protocol.iterations is None and protocol.min_window_s < shortest:
            return dataclasses.replace(protocol, min_window_s=shortest)
        return protocol

    def _run_one(self, context, spec: RunSpec) -> None:
        run_dir = self.writer.run_dir(spec.run_id)
        worker_spec = dataclasses.replace(spec, protocol=self._effective_protocol())
        gpus_at_start = self._gpu_snapshots()
        parent_conn, child_conn = context.Pipe(duplex=False)
        spawn_t = time.monotonic()
        process = context.Process(
            target=_worker_target,
            args=(child_conn, worker_spec, str(run_dir), str(self.path / "cache"), os.getpid()),
            name=f"worker-{spec.run_id}",
            daemon=True,
        )
        process.start()
        child_conn.close()
        self._worker = process
        self.emit(ev.RunStarted(
            run_id=spec.run_id, index=spec.index, total=len(self.specs),
            model=spec.model.ref, technique=spec.technique.slug, batch_size=spec.batch_size,
            seq_len=spec.seq_len, resolution=spec.resolution, worker_pid=process.pid,
        ))
        outcome = self._follow_worker(spec, process, parent_conn, spawn_t)
        parent_conn.close()
        self._kill_worker()
        self._worker = None
        status, payload = outcome
        if status == "finished":
            payload["gpus"] = _gpu_record(gpus_at_start, self._gpu_snapshots())
            self._finish_run(spec, payload, run_dir)
        else:
            self._end_run(spec, status, payload)

    def _follow_worker(self, spec, process, conn, spawn_t):
        windows: list[_Window] = []
        deadline = spawn_t + spec.protocol.run_timeout_s
        worker_ps = _ps_process(process.pid)
        while True:
            cancel = self._poll_control(spec.run_id)
            if cancel:
                return "skipped", cancel
            if time.monotonic() > deadline:
                return "failed", (f"timed out after {spec.protocol.run_timeout_s:.0f} s "
                                  "(protocol.run_timeout_s); the worker was killed")
            try:
                ready = conn.poll(0.1)
                message = conn.recv() if ready else None
            except (EOFError, OSError):
                process.join(timeout=2)
                return "failed", _death_reason(process.exitcode)
            if message is None:
                if not process.is_alive():
                    if conn.poll(0):  # it sent its last words just before exiting
                        continue
                    return "failed", _death_reason(process.exitcode)
                continue
            kind, payload = message
            if kind == "phase":
                edge = payload.pop("edge", None)
                t_edge = payload.get("t")
                if edge == "start":
                    self.sampler.read_now()
                    windows.append(_Window(t_edge, psutil.cpu_times(), _cpu_s(worker_ps)))
                elif edge == "end" and windows:
                    self.sampler.read_now()
                    self._close_window(windows[-1], t_edge, worker_ps)
                    continue  # the start edge of the repeat already announced the phase
                self.emit(ev.PhaseChanged(
                    run_id=spec.run_id, phase=payload["phase"], repeat=payload.get("repeat"),
                    repeats=payload.get("repeats"), iterations=payload.get("iterations"),
                ))
            elif kind == "result":
                payload["windows_energy"] = self._window_energies(windows)
                payload["spawn_t"] = spawn_t
                return "finished", payload
            elif kind == "skip":
                return "skipped", payload["reason"]
            elif kind == "error":
                return "failed", payload["reason"]

    def _close_window(self, window: _Window, t_end: float, worker_ps) -> None:
        window.end_t = t_end
        duration_s = t_end - window.start_t
        busy = _busy_s(psutil.cpu_times()) - _busy_s(window.start_cpu)
        window.worker_cpu_s = _cpu_s(worker_ps) - window.start_worker_cpu_s
        cpus = psutil.cpu_count() or 1
        if duration_s > 0:
            window.other_cpu_load_pct = (
                max(0.0, busy - window.worker_cpu_s) / (duration_s * cpus) * 100
            )

    def _window_energies(self, windows: list[_Window]) -> list[dict]:
        """Energy of each timed window, with both edges interpolated once the counters have
        moved past them (a counter that steps every 100 ms has not yet stepped at the edge)."""
        settle_s = max([getattr(s, "update_period_s", None) or 0.0 for s in self.sampler.sensors]
                       + [self.sampler.period_s])
        last_end = max(w.end_t for w in windows if w.end_t) if windows else 0.0
        while time.monotonic() < last_end + settle_s:
            time.sleep(self.sampler.period_s)
        self.sampler.read_now()
        out = []
        for w in windows:
            if w.end_t is None:
                continue
            energy = self.sampler.window(self.sampler.energy_at(w.start_t), w.start_t, w.end_t)
            out.append({
                "duration_s": w.end_t - w.start_t,
                "energy_j": {name: e.energy_j for name, e in energy.items()},
                "other_cpu_load_pct": w.other_cpu_load_pct,
                "worker_cpu_s": w.worker_cpu_s,
            })
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

    def _kill_worker(self) -> None:
        process = self._worker
        if process is None or not process.is_alive():
            return
        process.terminate()
        process.join(KILL_GRACE_S)
        if process.is_alive():
            process.kill()
            process.join(KILL_GRACE_S)

    # ------------------------------------------------------------------ results
    def _base_row(self, spec: RunSpec) -> dict[str, Any]:
        return {
            "run_id": spec.run_id, "model": spec.model.ref, "task": spec.task,
            "technique": spec.technique.slug, "device": spec.device,
            "batch_size": spec.batch_size, "seq_len": spec.seq_len,
            "resolution": spec.resolution, "repeats": spec.protocol.repeats,
        }

    def _end_run(self, spec: RunSpec, status: str, reason: str) -> None:
        row = {**self._base_row(spec), "status": status, "reason": reason}
        self.counts[status] += 1
        self.writer.record_run(row)
        write_json(self.writer.run_dir(spec.run_id) / "result.json", row)
        event = ev.RunSkipped if status == "skipped" else ev.RunFailed
        self.emit(event(run_id=spec.run_id, reason=reason))

    def _finish_run(self, spec: RunSpec, result: dict, run_dir: Path) -> None:
        figures = self.energy_figures(spec, result)
        row = {
            **self._base_row(spec),
            "task": result["task"], "device": result["device"], "status": "finished",
            "reason": "", "iterations": round(median(result["iterations"])),
            **figures["row"],
            "size_bytes": result["size_bytes"], "params": result["params"],
            "nonzero_params": result["nonzero_params"],
            "peak_mem_mb": result["peak_mem_mb"],
            **result["quality_columns"],
            "warnings": result["warnings"] + figures["warnings"],
        }
        _write_latency_csv(run_dir / "latency.csv", result["latencies_ms"])
        details = {
            "row": row,
            "per_sensor": figures["per_sensor"],
            "repeats": figures["repeats"],
            "quality": result["quality"],
            "reference": result["reference"],
            "dtype_bytes": result["dtype_bytes"],
            "technique": {"spec": spec.technique.to_yaml(), **result["technique_details"]},
            "timings_s": {
                "worker_start_to_first_warmup": result["first_warmup_t"] - result["spawn_t"],
                "load": result["load_s"], "compress": result["compress_s"],
            },
            "carbon_intensity": dataclasses.asdict(self.intensity),
            "torch_threads": result["torch_threads"],
            "gpus": result["gpus"],
        }
        write_json(run_dir / "result.json", details)
        self.counts["finished"] += 1
        self.writer.record_run(row)
        for warning in figures["warnings"]:
            self.emit(ev.Notice(level="warning", message=warning, run_id=spec.run_id))
        self.emit(ev.RunFinished(run_id=spec.run_id, row=row))

    def energy_figures(self, spec: RunSpec, result: dict) -> dict[str, Any]:
        """Energy per inference (median over repeats, 95 % CI), dynamic energy, power, latency."""
        sensors = {s.name: s for s in sensors_for_device(self.sampler.sensors, result["device"])}
        windows = [
            {**w, "energy_j": {n: e for n, e in w["energy_j"].items() if n in sensors}}
            for w in result["windows_energy"]
        ]
        inferences = [n * spec.batch_size for n in result["iterations"]]  # per window
        warnings: list[str] = []
        per_repeat, dynamic_per_repeat, power_per_repeat = [], [], []
        per_sensor: dict[str, dict[str, Any]] = {}
        for window, count in zip(windows, inferences, strict=True):
            total = sum(window["energy_j"].values())
            idle = sum(self.idle_power_w.get(n, 0.0) for n in window["energy_j"])
            per_repeat.append(total / count)
            dynamic_per_repeat.append((total - idle * window["duration_s"]) / count)
            power_per_repeat.append(total / window["duration_s"])
        for name in sensors:
            if not windows or any(name not in w["energy_j"] for w in windows):
                continue
            per_sensor[name] = {
                "measured": sensors[name].measured,
                "method": sensors[name].method,
                "energy_j_per_inference": median([
                    w["energy_j"][name] / count for w, count in zip(windows, inferences,
                                                                     strict=True)]),
                "avg_power_w": median([w["energy_j"][name] / w["duration_s"] for w in windows]),
                "idle_power_w": self.idle_power_w.get(name),
            }
        used = [sensors[n] for n in per_sensor]
        if not per_repeat or not used:
            raise RuntimeError("no energy windows were measured for this run")
        source = ("measured" if all(s.measured for s in used)
                  else "estimated" if not any(s.measured for s in used) else "mixed")
        spread = relative_spread(per_repeat)
        if len(per_repeat) > 1 and spread > spec.protocol.max_spread:
            warnings.append(
                f"repeats disagree by {spread:.0%} (more than protocol.max_spread "
                f"{spec.protocol.max_spread:.0%}): the machine was busy or the window too short"
            )
        warnings += short_window_warnings(used, median([w["duration_s"] for w in windows]))
        latencies = [x for repeat in result["latencies_ms"] for x in repeat]
        window_s = sum(w["duration_s"] for w in windows)
        energy = median(per_repeat)
        row = {
            "energy_j_per_inference": energy,
            "energy_j_per_inference_ci95": ci95_half_width(per_repeat),
            "dynamic_energy_j_per_inference": median(dynamic_per_repeat),
            "avg_power_w": median(power_per_repeat),
            "idle_power_w": sum(self.idle_power_w.get(n, 0.0) for n in per_sensor),
            "latency_ms_p50": percentile(latencies, 50),
            "latency_ms_p95": percentile(latencies, 95),
            "throughput_per_s": sum(inferences) / window_s,
            "co2e_g_per_1k_inferences": co2e_g(energy * 1000, self.intensity),
            "energy_source": source,
            "sensors": sorted(per_sensor),
            "other_cpu_load_pct": median([w["other_cpu_load_pct"] for w in windows]),
        }
        repeats = [
            {"energy_j_per_inference": e, "inferences": count, "duration_s": w["duration_s"],
             "energy_j": w["energy_j"], "other_cpu_load_pct": w["other_cpu_load_pct"]}
            for e, count, w in zip(per_repeat, inferences, windows, strict=True)
        ]
        return {"row": row, "per_sensor": per_sensor, "repeats": repeats, "warnings": warnings}


def sensors_for_device(sensors, device: str) -> list:
    """The sensors a run on `device` is charged with: the host's (CPU, DRAM, system) always, and
    the GPU it ran on; other GPUs idle beside it and are not its cost (samples.csv has them)."""
    gpu = _nvml_index(device)
    return [s for s in sensors if s.kind != "gpu" or getattr(s, "index", None) == gpu]


def _nvml_index(device: str) -> int | None:
    """NVML's index of a torch CUDA device (CUDA_VISIBLE_DEVICES renumbers torch's)."""
    if not device.startswith("cuda"):
        return None
    torch_index = int(device.split(":")[1]) if ":" in device else 0
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
               if v.strip()]
    if torch_index < len(visible) and visible[torch_index].isdigit():
        return int(visible[torch_index])
    return torch_index


def short_window_warnings(sensors, window_s: float) -> list[str]:
    """Windows under WINDOW_UPDATE_PERIODS update periods of a sensor, with the error bound."""
    warnings = []
    for sensor in sensors:
        period_s = getattr(sensor, "update_period_s", None)
        if period_s and window_s < WINDOW_UPDATE_PERIODS * period_s:
            warnings.append(
                f"timed windows of {window_s:.3g} s are shorter than {WINDOW_UPDATE_PERIODS} "
                f"update periods of {sensor.name} ({period_s:.3g} s): its energy is uncertain by "
                f"up to ±{period_s / window_s:.0%}; lengthen protocol.min_window_s or drop "
                "protocol.iterations"
            )
    return warnings


def _forkserver_ready() -> None:
    """Runs in a process forked by the forkserver, which happens only once it has preloaded."""


def _worker_target(conn, spec, run_dir, cache_dir, runner_pid):
    from energy_console.core.worker import worker_entry

    worker_entry(conn, spec, run_dir, cache_dir, runner_pid)


def _gpu_record(start: list[dict], end: list[dict]) -> dict[str, Any]:
    reasons = sorted({r for snap in start + end for r in snap.get("throttle_reasons") or []})
    return {"start": start, "end": end, "throttle_reasons_seen": reasons}


def _write_latency_csv(path: Path, latencies_ms: list[list[float]]) -> None:
    lines = ["repeat,iteration,latency_ms"]
    for r, repeat in enumerate(latencies_ms, start=1):
        lines += [f"{r},{i},{x:.4f}" for i, x in enumerate(repeat, start=1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _death_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "the worker stopped answering"
    if exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"the worker died from signal {name}{hint}; see the run's worker.log"
    return f"the worker exited with status {exitcode} without a result; see the run's worker.log"


def _ps_process(pid: int | None):
    try:
        return psutil.Process(pid) if pid else None
    except psutil.Error:
        return None


def _cpu_s(process) -> float:
    if process is None:
        return 0.0
    try:
        times = process.cpu_times()
        return times.user + times.system
    except psutil.Error:
        return 0.0


def _busy_s(times) -> float:
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _host_info() -> dict[str, Any]:
    from importlib import metadata

    versions = {}
    for package in ("energy-console", "torch", "transformers", "optimum", "textual",
                    "nvidia-ml-py", "optimum-quanto", "torch-pruning", "onnxruntime"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": platform.processor() or _cpu_model(),
        "cpu_count_logical": psutil.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "versions": versions,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()
