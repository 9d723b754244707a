"""Following a variant's worker one run at a time: relay its phases, open and close the run's
timed windows on the sampler, and measure each window's energy once the counters have moved past
its edges."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil
from energy_console.core.measure.cpu_load import CpuLoadWindow, ps_process
from energy_console.core.measure.precision import Precision, window_precision
from energy_console.core.measure.sampler import Sampler
from energy_console.core.measure.sensors import SensorInfo
from energy_console.core.session.worker_process import death_reason
from energy_console.core.store import events as ev
from energy_console.core.store.figures import WindowEnergy, WorkerResult
from energy_console.core.store.records import RunStatus
from energy_console.core.worker.messages import (
    JudgeWindows,
    PhaseMark,
    RunError,
    RunMeasured,
    RunnerReady,
    RunNotApplicable,
    WindowsJudged,
    WorkerMessage,
)


@dataclass
class WorkerOutcome:
    status: RunStatus
    reason: str = ""  # why it was skipped or failed
    result: WorkerResult | None = None  # when finished
    windows: list[WindowEnergy] = field(default_factory=list)
    last_phase: str | None = None  # the worker's last phase ("loading": it never loaded)
    reported_error: bool = False  # the worker said why it failed (not a death or a timeout)
    worker_ended: bool = False  # the worker is gone or must be stopped: the rest need a new one
    out_of_memory: bool = False  # larger sizes of the variant are not tried
    errno: int | None = None  # of the OSError behind an error the worker reported
    never_loaded: bool = False  # the worker's model could not be loaded (core.unit sets it)
    # the run whose preparation the worker was doing when it died, when not the followed one
    # (references of a variant's later sizes are prepared before it compresses)
    run_id: str | None = None


@dataclass
class _Timed:
    """A window the worker marked: the CPU load over it, its phase, and (once closed) its
    iterations and their latencies."""

    load: CpuLoadWindow
    phase: str
    iterations: int = 0
    latencies_ms: tuple[float, ...] = ()
    disturbed: list[str] = field(default_factory=list)  # what was seen at its edges


def follow_run(spec: Any, process: Any, conn: Any, sampler: Sampler,
               sensors: Sequence[SensorInfo], cancelled: Callable[[], str | None],
               emit: Callable[[ev.Event], None], gpu_index: int | None = None) -> WorkerOutcome:
    """Tell the worker the runner follows this run, then, until the worker ends it (or dies):
    its phases become events, its window edges sampler reads, and (on GPU `gpu_index`, NVML's)
    a look at what else the GPU is doing. `cancelled()` returns a reason when the user
    cancelled the run or stopped the session."""
    with contextlib.suppress(OSError):  # a dead worker: the loop below says why
        conn.send(RunnerReady(spec.run_id))
    windows: list[_Timed] = []
    precision: Precision | None = None  # the last verdict on the run's windows
    deadline = time.monotonic() + spec.protocol.run_timeout_s
    worker_ps = ps_process(process.pid)
    phase: str | None = None
    working_on = spec.run_id

    def ended(status: RunStatus, reason: str, **fields: Any) -> WorkerOutcome:
        blame = working_on if working_on != spec.run_id else None
        return WorkerOutcome(status, reason, last_phase=phase, worker_ended=True, run_id=blame,
                             **fields)

    while True:
        cancel = cancelled()
        if cancel:
            return ended("skipped", cancel)
        if time.monotonic() > deadline:
            return ended("failed", f"timed out after {spec.protocol.run_timeout_s:.0f} s "
                         "(protocol.run_timeout_s); the worker was killed")
        try:
            message: WorkerMessage | None = conn.recv() if conn.poll(0.1) else None
        except (EOFError, OSError):
            process.join(timeout=2)
            return ended("failed", death_reason(process.exitcode),
                         out_of_memory=killed(process.exitcode))
        if message is None:
            if not process.is_alive():
                if conn.poll(0):  # it sent its last words just before exiting
                    continue
                return ended("failed", death_reason(process.exitcode),
                             out_of_memory=killed(process.exitcode))
            continue
        match message:
            case PhaseMark(edge="end") if windows:
                working_on, phase = message.run_id, message.phase
                sampler.read_now()
                windows[-1].load.close(message.t)
                windows[-1].iterations = message.iterations or 0
                windows[-1].latencies_ms = message.latencies_ms
                windows[-1].disturbed += gpu_disturbances(gpu_index, process.pid)
                # the start edge of the repeat already announced the phase
            case PhaseMark():
                working_on, phase = message.run_id, message.phase
                if message.edge == "start":
                    sampler.read_now()
                    windows.append(_Timed(CpuLoadWindow(message.t, worker_ps), message.phase,
                                          disturbed=gpu_disturbances(gpu_index, process.pid)))
                emit(ev.PhaseChanged(
                    run_id=spec.run_id, phase=message.phase, repeat=message.repeat,
                    repeats=message.repeats, iterations=message.iterations, step=message.step,
                    steps=message.steps, loss=message.loss, detail=message.detail,
                    energy_ci_pct=None if precision is None else precision.energy_ci_pct,
                    target_ci_pct=spec.protocol.target_ci_pct,
                ))
            case _ if message.run_id != spec.run_id:
                return ended("failed", f"the worker answered for {message.run_id} while "
                             f"{spec.run_id} was due; see the run's worker.log")
            case JudgeWindows():
                precision = judge_windows(spec, windows, message, sampler, sensors)
                with contextlib.suppress(OSError):  # a dead worker: the loop above says why
                    conn.send(WindowsJudged(spec.run_id, precision.enough))
            case RunMeasured():
                return WorkerOutcome("finished", result=message.result,
                                     windows=window_energies(windows, sampler, sensors),
                                     last_phase=phase)
            case RunNotApplicable():
                return WorkerOutcome("skipped", message.reason, last_phase=phase)
            case RunError():
                return WorkerOutcome("failed", message.reason, last_phase=phase,
                                     reported_error=True, worker_ended=message.ends_worker,
                                     out_of_memory=message.out_of_memory, errno=message.errno)


def killed(exitcode: int | None) -> bool:
    """Died from SIGKILL: what the kernel's OOM killer sends."""
    return exitcode == -9


def judge_windows(spec: Any, windows: list[_Timed], asked: JudgeWindows, sampler: Sampler,
                  sensors: Sequence[SensorInfo]) -> Precision:
    """The verdict on the run's last `asked.windows` closed windows of `asked.phase`."""
    judged = [w for w in windows if w.phase == asked.phase and w.load.end_t is not None]
    judged = judged[-asked.windows:] if asked.windows else []
    return window_precision(
        windows=window_energies(judged, sampler, sensors),
        iterations=[w.iterations for w in judged], batch_size=spec.batch_size, sensors=sensors,
        latencies_ms=[w.latencies_ms for w in judged], protocol=spec.protocol)


def window_energies(windows: list[_Timed], sampler: Sampler,
                    sensors: Sequence[SensorInfo]) -> list[WindowEnergy]:
    """Energy of each timed window, with both edges interpolated once the counters have moved
    past them (a counter that steps every 100 ms has not yet stepped at the edge)."""
    settle_s = max([s.update_period_s or 0.0 for s in sensors] + [sampler.period_s])
    closed = [(w, w.load.end_t) for w in windows if w.load.end_t is not None]
    last_end = max((end_t for _, end_t in closed), default=0.0)
    while time.monotonic() < last_end + settle_s:
        time.sleep(sampler.period_s)
    sampler.read_now()
    out = []
    for w, end_t in closed:
        start_t = w.load.start_t
        energy = sampler.window(sampler.energy_at(start_t), start_t, end_t)
        gap = sampler.gap_between(start_t, end_t)
        causes = ([f"sampler gap: {gap}"] if gap else []) + w.disturbed
        out.append(WindowEnergy(
            duration_s=end_t - start_t,
            energy_j={name: e.energy_j for name, e in energy.items()},
            other_cpu_load_pct=w.load.other_cpu_load_pct,
            worker_cpu_s=w.load.worker_cpu_s,
            faults=sampler.failures(start_t, end_t + settle_s),
            disturbed="; ".join(dict.fromkeys(causes)),
        ))
    return out


def gpu_disturbances(gpu_index: int | None, worker_pid: int | None) -> list[str]:
    """What disturbs the run's GPU now (another process on it, a throttle), [] when nothing
    does or the run has no GPU. The worker and the processes it started are the run's own."""
    if gpu_index is None:
        return []
    from energy_console.core.measure.sensors.nvml import gpu_disturbance

    cause = gpu_disturbance(gpu_index, own_pids(worker_pid))
    return [cause] if cause else []


def own_pids(worker_pid: int | None) -> set[int]:
    """The worker's pid and its descendants' (a run may start helpers that use the GPU)."""
    worker = ps_process(worker_pid)
    if worker is None:
        return set()
    try:
        return {worker.pid, *(child.pid for child in worker.children(recursive=True))}
    except psutil.Error:
        return {worker.pid}
