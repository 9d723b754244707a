"""A lab of boxes on Ray (`energy-console run PROFILE --ray auto|ADDRESS`, the `ray` extra).

The head (the runner, where the session directory lives) submits each run as a Ray task that
needs one GPU (`num_gpus=1`) and one `energy_console_gpu` slot, a custom resource each node
offers once per GPU it lends to measuring, so a node measures at most one run per GPU. On its
node the task does what a lane does on one box: it takes that GPU's lock, starts its own sampler
(that GPU's NVML counter and the node's RAPL), measures an idle baseline, runs the normal worker
through `execute_unit`, and brings back the worker's outcome, its windows, its sensors and its run
folder's files. Events and samples stream to the head through a Ray queue while the run goes, so
the live view and `attach` follow the one session directory as for a local session; samples of a
node's sensors are named `NODE/gpuN/SENSOR` in samples.csv.

A task whose node or Ray worker is lost becomes a failed run naming the cause; the session goes
on, and `--resume` runs only what is missing. Ray itself is imported only here, lazily.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from energy_console.core import events as ev
from energy_console.core.results import is_safe_name
from energy_console.core.sensors import SensorInfo
from energy_console.core.unit import Placement, UnitOutcome
from energy_console.core.worker_follow import WorkerOutcome

if TYPE_CHECKING:
    from energy_console.core.plan import RunSpec
    from energy_console.core.profile import Profile
    from energy_console.core.runner import Runner

RAY_SLOT = "energy_console_gpu"  # custom resource: one per GPU a node lends to measuring
WAIT_S = 0.2  # how often the head drains the queue and reads stop/cancel commands
MAX_FILE_BYTES = 8 << 20  # a run folder's file brought back whole up to this size


def ray_problem() -> str | None:
    """Why --ray cannot work here, or None."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray is not installed; install the extra: pip install 'energy-console[ray]'"
    return None


@dataclass
class RemoteUnit:
    """What a run's Ray task brings back to the head."""

    unit: UnitOutcome
    sensors: list[SensorInfo]  # named NODE/gpuN/SENSOR, as in samples.csv
    idle_power_w: dict[str, float]
    files: dict[str, bytes] = field(default_factory=dict)  # the run folder (worker.log, …)


# ------------------------------------------------------------------ on the node


def measure_on_node(spec: RunSpec, profile: Profile, session_name: str, total: int,
                    queue: Any) -> RemoteUnit:
    """The Ray task: one run measured on the GPU Ray gave it (see the module docstring)."""
    import ray
    from energy_console.core.lanes import pinned_spec, torch_index
    from energy_console.core.machine_lock import MachineBusy
    from energy_console.core.session_locks import SessionLocks

    gpu = int(ray.get_gpu_ids()[0])
    placement = Placement(socket.gethostname(), gpu)
    prefix = f"{placement.node}/gpu{gpu}/"
    locks = SessionLocks([gpu])
    try:
        locks.acquire(Path(f"{session_name} (Ray task {spec.run_id})"))
    except MachineBusy as exc:
        return _not_run(placement, "failed", f"{placement.label}: {exc}")
    try:
        return _measure_locked(spec, profile, session_name, total, queue, placement, prefix,
                               pinned_spec(spec, torch_index(gpu, os.environ.get(
                                   "CUDA_VISIBLE_DEVICES"))))
    finally:
        locks.release()


def _not_run(placement: Placement, status: Any, reason: str) -> RemoteUnit:
    now = time.time()
    return RemoteUnit(UnitOutcome(WorkerOutcome(status, reason), placement, now, now), [], {})


def _measure_locked(spec: RunSpec, profile: Profile, session_name: str, total: int, queue: Any,
                    placement: Placement, prefix: str, worker_spec: RunSpec) -> RemoteUnit:
    from energy_console.core.energy import protocol_for_sensors
    from energy_console.core.sampler import Sampler
    from energy_console.core.sensors import describe, detect
    from energy_console.core.sensors.period import calibrate
    from energy_console.core.unit import execute_unit
    from energy_console.core.worker_process import forkserver_context

    detection = detect(profile.sensors.cpu_tdp_w)
    sensors = [s for s in detection.sensors
               if s.kind != "gpu" or describe(s).device_index == placement.gpu_index]
    for other in detection.sensors:
        if other not in sensors:
            other.close()
    name = next((describe(s).detail for s in sensors if s.kind == "gpu"), "")
    if profile.gpu_model and profile.gpu_model.lower() not in name.lower():
        for sensor in sensors:
            sensor.close()
        return _not_run(placement, "skipped", f"{placement.label} is {name or 'no NVML GPU'}, "
                        f"not the profile's gpu_model {profile.gpu_model!r}")
    calibrate(sensors)
    infos = [describe(s) for s in sensors]
    offset = time.time() - time.monotonic()

    def forward(samples) -> None:
        queue.put_nowait(("samples", [(s.t + offset, prefix + s.sensor, s.power_w, s.energy_j)
                                      for s in samples]))

    sampler = Sampler(sensors, profile.protocol.sample_hz, on_samples=forward,
                      history_s=profile.protocol.run_timeout_s + 60)
    sampler.start()
    folder = Path(tempfile.gettempdir()) / f"energy-console-ray-{os.getuid()}" / session_name
    run_dir = folder / "runs" / spec.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        idle = _idle_baseline(sampler, profile.protocol.idle_seconds)
        worker_spec = dataclasses.replace(
            worker_spec, protocol=protocol_for_sensors(profile.protocol, infos))
        unit = execute_unit(forkserver_context(), worker_spec, run_dir, folder / "cache",
                            sampler, infos, placement, total, lambda: None,
                            lambda event: queue.put_nowait(("event", event)))
    finally:
        sampler.stop()
        for sensor in sensors:
            sensor.close()
    return RemoteUnit(_renamed(unit, prefix), [dataclasses.replace(i, name=prefix + i.name)
                                               for i in infos],
                      {prefix + k: v for k, v in idle.items()}, _files(run_dir))


def _idle_baseline(sampler: Any, seconds: float) -> dict[str, float]:
    if seconds <= 0:
        return {}
    t0 = time.monotonic()
    sampler.read_now()
    start = sampler.energy_at(t0)
    time.sleep(seconds)
    t1 = time.monotonic()
    sampler.read_now()
    return {name: w.avg_power_w for name, w in sampler.window(start, t0, t1).items()}


def _renamed(unit: UnitOutcome, prefix: str) -> UnitOutcome:
    """The unit with its windows' sensors named as in samples.csv."""
    windows = [dataclasses.replace(w, energy_j={prefix + k: v for k, v in w.energy_j.items()},
                                   faults={prefix + k: v for k, v in w.faults.items()})
               for w in unit.worker.windows]
    return dataclasses.replace(unit, worker=dataclasses.replace(unit.worker, windows=windows))


def _files(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir())
            if p.is_file() and p.stat().st_size <= MAX_FILE_BYTES}


# ------------------------------------------------------------------ on the head


def connect(address: str) -> bool:
    """Join the cluster at `address` ("auto": the one `ray start` made here); returns whether
    this call connected (then the session disconnects at its end)."""
    import ray

    if ray.is_initialized():
        return False
    ray.init(address=address, log_to_driver=False)
    return True


def run_on_ray(runner: Runner) -> None:
    """Every spec of the runner, ended, over the Ray cluster's GPU slots."""
    import ray
    from ray.util.queue import Queue

    assert runner.ray_address is not None
    connected = connect(runner.ray_address)
    try:
        slots = int(ray.cluster_resources().get(RAY_SLOT, 0))
        if slots <= 0:
            raise RuntimeError(
                f"the Ray cluster offers no {RAY_SLOT!r} resource: start each node with "
                f"`ray start ... --num-gpus=N --resources='{{\"{RAY_SLOT}\": N}}'` (N: its "
                "GPUs), see README, Sweeps over many GPUs")
        queue = Queue(actor_options={"num_cpus": 0})
        try:
            _RayHead(runner, queue, 1 if runner.profile.exclusive else slots).run()
        finally:
            queue.shutdown()
    finally:
        if connected:
            ray.shutdown()


class _RayHead:
    """The head's loop: submit while slots are free, drain the queue, record what returns."""

    def __init__(self, runner: Runner, queue: Any, limit: int):
        import ray

        self.runner, self.queue, self.limit = runner, queue, limit
        self.task = ray.remote(measure_on_node).options(
            num_gpus=1, resources={RAY_SLOT: 1}, max_retries=0)
        self.in_flight: dict[Any, RunSpec] = {}
        self.cancelled: dict[str, str] = {}  # run id -> why (stop, cancel)
        self.started: dict[str, ev.RunStarted] = {}

    def run(self) -> None:
        import ray

        pending = deque(self.runner.specs)
        session = self.runner.path.name
        while pending or self.in_flight:
            while pending and len(self.in_flight) < self.limit:
                spec = pending.popleft()
                if self.runner.admit(spec):
                    ref = self.task.remote(spec, self.runner.profile, session,
                                           len(self.runner.specs), self.queue)
                    self.in_flight[ref] = spec
            if not self.in_flight:
                continue
            ready, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=WAIT_S)
            self.drain()
            self.control()
            for ref in ready:
                self.finish(ref, self.in_flight.pop(ref))

    def drain(self) -> None:
        """Events and samples the tasks sent, into the session directory."""
        count = self.queue.size()
        if not count:
            return
        for kind, payload in self.queue.get_nowait_batch(count):
            if kind == "event":
                if isinstance(payload, ev.RunStarted):
                    self.started[payload.run_id] = payload
                elif isinstance(payload, ev.WorkerEnded):
                    self.started.pop(payload.run_id, None)
                self.runner.emit(payload)
            else:
                self.runner.write_samples(payload)

    def control(self) -> None:
        """Stop and cancel commands reach a task as a cancellation (its worker is stopped)."""
        import ray

        for ref, spec in self.in_flight.items():
            reason = self.runner.poll_control(spec.run_id)
            if reason and spec.run_id not in self.cancelled:
                self.cancelled[spec.run_id] = reason
                ray.cancel(ref)

    def finish(self, ref: Any, spec: RunSpec) -> None:
        import ray

        try:
            remote: RemoteUnit = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            self.lost(spec, "skipped", self.cancelled.get(spec.run_id, "cancelled"))
            return
        except ray.exceptions.RayTaskError as exc:  # the task itself raised, on its node
            self.lost(spec, "failed", f"the run's Ray task failed on its node: "
                      f"{_first_line(exc.cause if exc.cause is not None else exc)}")
            return
        except ray.exceptions.RayError as exc:
            self.lost(spec, "failed", _lost_reason(exc))
            return
        self.drain()  # the run's last events and samples come before its record
        for name, data in remote.files.items():
            if is_safe_name(name):
                self.write_file(spec.run_id, name, data)
        self.runner.conclude(spec, remote.unit, remote.sensors, remote.idle_power_w)

    def write_file(self, run_id: str, name: str, data: bytes) -> None:
        def write() -> None:
            (self.runner.writer.run_dir(run_id) / name).write_bytes(data)

        self.runner.guard.write(f"runs/{run_id}/{name}", write)

    def lost(self, spec: RunSpec, status: Any, reason: str) -> None:
        """A task that brought nothing back: its GPU is free, the run ends with the cause."""
        self.drain()
        started = self.started.pop(spec.run_id, None)
        if started is not None and started.node is not None and started.gpu_index is not None:
            self.runner.emit(ev.WorkerEnded(run_id=spec.run_id, node=started.node,
                                            gpu_index=started.gpu_index))
            self.runner.end_run(spec, status, reason, Placement(started.node,
                                                                started.gpu_index))
        else:
            self.runner.end_run(spec, status, reason)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}"


def _lost_reason(exc: Exception) -> str:
    return (f"the run's Ray task was lost ({_first_line(exc)}): its node or Ray worker died "
            "mid-run; `energy-console run PROFILE --resume SESSION_DIR` runs it again")
