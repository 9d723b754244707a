"""A lab of boxes on Ray (`energy-console run PROFILE --ray auto|ADDRESS`, the `ray` extra).

The head (the runner, where the session directory lives) starts one *GPU station* per
`energy_console_gpu` slot of the cluster: a Ray actor that holds one GPU of one node
(`num_gpus=1` and one slot, a custom resource each node offers once per GPU it lends to
measuring, so a node measures at most one run per GPU). A station does on its node what a lane
does on one box: it holds that GPU's lock, samples that GPU's NVML counter and the node's
CPU/DRAM with its own sampler, measures its idle baseline once, and runs each model variant the
head sends it (a batch of runs) in its worker through `execute_unit`. Events, samples and each
run's outcome (its windows, its sensors and its run folder's files) stream to the head through a
Ray queue while the batch goes, so the live view and `attach` follow the one session directory as
for a local session, and each run is recorded as it ends; samples of a node's sensors are named
`NODE/gpuN/SENSOR` in samples.csv.

When a station (its Ray worker, or its node) is lost, the run it was measuring becomes a failed
run naming the cause, the batch's runs not yet started go back to the head's queue, a new station
is started in its place, and the session goes on; `--resume` runs only what is missing. Ray
itself is imported only here, lazily.
"""

from __future__ import annotations

import contextlib
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
from energy_console.core.unit import Placement, UnitOutcome, UnitSetting

if TYPE_CHECKING:
    from energy_console.core.plan import RunSpec, VariantBatch
    from energy_console.core.profile import Profile
    from energy_console.core.runner import Runner

RAY_SLOT = "energy_console_gpu"  # custom resource: one per GPU a node lends to measuring
WAIT_S = 0.2  # how often the head drains the queue and reads stop/cancel commands
STATION_START_S = 300.0  # runs fail when no GPU station could start for this long
MAX_FILE_BYTES = 8 << 20  # a run folder's file brought back whole up to this size


class ClusterUnavailable(RuntimeError):
    """The Ray cluster cannot be joined or lends no GPU to measuring; str() says the fix."""


def ray_problem() -> str | None:
    """Why --ray cannot work here, or None."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray is not installed; install the extra: pip install 'energy-console[ray]'"
    return None


@dataclass
class RemoteUnit:
    """What a station sends the head for each run of a batch, as it ends."""

    unit: UnitOutcome
    sensors: list[SensorInfo]  # named NODE/gpuN/SENSOR, as in samples.csv
    idle_power_w: dict[str, float]
    files: dict[str, bytes] = field(default_factory=dict)  # the run folder (worker.log, …)


# ------------------------------------------------------------------ on the node


class GpuStation:
    """One GPU of one node lent to the session: a Ray actor holding that GPU (`num_gpus=1`) and
    one slot for the session's life. At its start it takes the GPU's lock, detects and calibrates
    the node's sensors (that GPU's NVML counter and the node's CPU/DRAM), starts a sampler whose
    samples stream to the head, and measures its idle baseline; then it measures the runs the head
    sends it, one variant at a time, each in a worker of its own (`execute_unit`). Its second
    thread only takes cancellations and stops (max_concurrency=2)."""

    def __init__(self, profile: Profile, session_name: str, queue: Any):
        import ray
        from energy_console.core.session_locks import SessionLocks

        self.profile, self.queue = profile, queue
        gpu = int(ray.get_gpu_ids()[0])
        self.placement = Placement(socket.gethostname(), gpu)
        self.prefix = f"{self.placement.node}/gpu{gpu}/"
        self.locks = SessionLocks([gpu])
        self.locks.acquire(Path(f"{session_name} (Ray, {self.placement.label})"))
        self.folder = Path(tempfile.gettempdir()) / f"energy-console-ray-{os.getuid()}" / \
            session_name
        self._cancel: dict[str, str] = {}
        self._stopped = False
        try:
            self._start()
        except BaseException:
            self.locks.release()
            raise

    def _start(self) -> None:
        from energy_console.core.sampler import Sampler
        from energy_console.core.sensors import describe, detect
        from energy_console.core.sensors.period import calibrate
        from energy_console.core.worker_process import forkserver_context

        profile, gpu = self.profile, self.placement.gpu_index
        detection = detect(profile.sensors.cpu_tdp_w)
        self.sensors = [s for s in detection.sensors
                        if s.kind != "gpu" or describe(s).device_index == gpu]
        for other in detection.sensors:
            if other not in self.sensors:
                other.close()
        name = next((describe(s).detail for s in self.sensors if s.kind == "gpu"), "")
        if profile.gpu_model and profile.gpu_model.lower() not in name.lower():
            self.close()
            raise RuntimeError(f"{self.placement.label} is {name or 'no NVML GPU'}, not the "
                               f"profile's gpu_model {profile.gpu_model!r}: not used")
        calibrate(self.sensors)
        self.infos = [describe(s) for s in self.sensors]
        offset, prefix, queue = time.time() - time.monotonic(), self.prefix, self.queue

        def forward(samples) -> None:
            queue.put_nowait(("samples", [(s.t + offset, prefix + s.sensor, s.power_w,
                                           s.energy_j) for s in samples]))

        self.sampler = Sampler(self.sensors, profile.protocol.sample_hz, on_samples=forward,
                               history_s=profile.protocol.run_timeout_s + 60)
        self.sampler.start()
        self.context = forkserver_context()
        self.idle_power_w = _idle_baseline(self.sampler, profile.protocol.idle_seconds)

    def ready(self) -> str:
        """The station's label, once it can measure."""
        return self.placement.label

    def cancel(self, run_id: str, reason: str, stop: bool = False) -> None:
        """Cancel run_id; `stop`: the session stops, so the batch's later runs are skipped."""
        self._cancel[run_id] = reason
        self._stopped = self._stopped or stop

    def measure(self, batch: VariantBatch, total: int) -> None:
        """One variant's runs on this station's GPU; their events and outcomes go to the head
        through the queue."""
        from energy_console.core.energy import protocol_for_sensors
        from energy_console.core.lanes import pinned_spec, torch_index
        from energy_console.core.unit import execute_unit
        from energy_console.core.variant_cache import cache_folder

        pin = torch_index(self.placement.gpu_index or 0, os.environ.get("CUDA_VISIBLE_DEVICES"))
        protocol = protocol_for_sensors(self.profile.protocol, self.infos)
        prefix, runs_dir = self.prefix, self.folder / "runs"
        for spec in batch.runs:
            (runs_dir / spec.run_id).mkdir(parents=True, exist_ok=True)

        def conclude(spec: RunSpec, unit: UnitOutcome) -> None:
            self.queue.put(("run", spec.run_id, RemoteUnit(
                _renamed(unit, prefix),
                [dataclasses.replace(i, name=prefix + i.name) for i in self.infos],
                {prefix + k: v for k, v in self.idle_power_w.items()},
                _files(runs_dir / spec.run_id))))

        execute_unit(batch, UnitSetting(
            self.context, runs_dir, self.folder / "cache",
            cache_folder(self.profile.protocol.variant_cache, self.folder / "cache"),
            self.sampler, self.infos,
            self.placement, total,
            worker_spec=lambda spec: dataclasses.replace(pinned_spec(spec, pin),
                                                         protocol=protocol),
            skip_reason=lambda spec: "session stopped before this run" if self._stopped
            else None,
            cancelled=lambda run_id: self._cancel.pop(run_id, None),
            emit=lambda event: self.queue.put_nowait(("event", event)), conclude=conclude))

    def close(self) -> None:
        sampler = getattr(self, "sampler", None)
        if sampler is not None:
            sampler.stop()
        for sensor in getattr(self, "sensors", []):
            sensor.close()
        self.locks.release()


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
    try:
        ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterUnavailable(
            f"cannot join the Ray cluster at {address!r} ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); start it first "
            "(`ray start --head ...`, see README, Sweeps over many GPUs) or give its address "
            "with --ray HOST:PORT") from None
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
            raise ClusterUnavailable(
                f"the Ray cluster offers no {RAY_SLOT!r} resource: start each node with "
                f"`ray start ... --num-gpus=N --resources='{{\"{RAY_SLOT}\": N}}'` (N: its "
                "GPUs), see README, Sweeps over many GPUs")
        queue = Queue(actor_options={"num_cpus": 0})
        head = _RayHead(runner, queue, slots)
        try:
            head.run()
        finally:
            head.close()
            queue.shutdown()
    finally:
        if connected:
            ray.shutdown()


class _RayHead:
    """The head's loop: start a station per slot, send each free station the next variant's
    batch, drain the queue into the session, and record each run as its outcome comes back."""

    def __init__(self, runner: Runner, queue: Any, slots: int):
        import ray

        self.runner, self.queue = runner, queue
        self.limit = 1 if runner.profile.exclusive else slots
        self.station_class = ray.remote(GpuStation).options(
            num_gpus=1, num_cpus=0, resources={RAY_SLOT: 1}, max_restarts=0,
            max_task_retries=0, max_concurrency=2)
        self.starting: dict[Any, Any] = {}  # ready() ref -> station
        self.free: list[Any] = []
        self.in_flight: dict[Any, tuple[VariantBatch, Any]] = {}  # measure() ref -> (batch, …)
        self.ended: set[str] = set()  # run ids whose outcome came back
        self.cancelled: set[str] = set()
        self.started: dict[str, ev.RunStarted] = {}
        self.replacements = slots  # stations started again after one was lost, at most
        self.waiting_since = time.monotonic()
        for _ in range(slots):
            self.start_station()

    def start_station(self) -> None:
        station: Any = self.station_class.remote(self.runner.profile, self.runner.path.name,
                                            self.queue)
        self.starting[station.ready.remote()] = station

    def run(self) -> None:
        import ray

        pending: deque[VariantBatch] = deque(self.runner.batches)
        while pending or self.in_flight:
            while pending and self.free and len(self.in_flight) < self.limit:
                batch = pending.popleft()
                runs = tuple(spec for spec in batch.runs if self.runner.admit(spec))
                if runs:
                    station = self.free.pop()
                    batch = dataclasses.replace(batch, runs=runs)
                    ref = station.measure.remote(batch, len(self.runner.specs))
                    self.in_flight[ref] = (batch, station)
            if self.runner.stop_requested and not self.in_flight:
                while pending:  # each recorded as skipped
                    for spec in pending.popleft().runs:
                        self.runner.admit(spec)
                break
            if pending and not self.in_flight and not self.free:
                self.no_station(pending)
            refs = list(self.in_flight) + list(self.starting)
            ready, _ = ray.wait(refs, num_returns=1, timeout=WAIT_S) if refs else ([], [])
            self.drain()
            self.control()
            for ref in ready:
                if ref in self.starting:
                    self.station_started(ref, self.starting.pop(ref))
                else:
                    self.finish(ref, *self.in_flight[ref], pending)

    def no_station(self, pending: deque) -> None:
        """No station can measure: wait for one starting, then give up on the rest."""
        if self.starting and time.monotonic() - self.waiting_since < STATION_START_S:
            return
        reason = ("no GPU of the Ray cluster could take the run (every station was lost or "
                  f"refused, see the notices, or none started within {STATION_START_S:.0f} s); "
                  "`--resume SESSION_DIR` runs it when the cluster has GPUs again")
        while pending:
            for spec in pending.popleft().runs:
                self.runner.end_run(spec, "failed", reason)

    def station_started(self, ref: Any, station: Any) -> None:
        import ray

        try:
            ray.get(ref)
        except ray.exceptions.RayError as exc:
            cause = exc.cause if isinstance(exc, ray.exceptions.RayTaskError) else exc
            self.runner.emit(ev.Notice(level="warning", message="a Ray GPU station could not "
                                       f"start: {_first_line(cause or exc)}"))
            return
        self.free.append(station)
        self.waiting_since = time.monotonic()

    def drain(self) -> None:
        """Events, samples and runs' outcomes the stations sent, into the session directory."""
        count = self.queue.size()
        if not count:
            return
        for kind, *payload in self.queue.get_nowait_batch(count):
            if kind == "run":
                self.run_ended(*payload)
            elif kind == "event":
                payload = payload[0]
                if isinstance(payload, ev.RunStarted):
                    self.started[payload.run_id] = payload
                elif isinstance(payload, ev.WorkerEnded):
                    self.started.pop(payload.run_id, None)
                self.runner.emit(payload)
            else:
                self.runner.write_samples(payload[0])

    def control(self) -> None:
        """Stop and cancel commands reach the station of the run in progress; its worker is
        stopped there (a stop skips the batch's later runs too)."""
        for batch, station in self.in_flight.values():
            for spec in batch.runs:
                if spec.run_id in self.started:
                    reason = self.runner.poll_control(spec.run_id)
                    if reason and spec.run_id not in self.cancelled:
                        self.cancelled.add(spec.run_id)
                        station.cancel.remote(spec.run_id, reason, self.runner.stop_requested)

    def run_ended(self, run_id: str, remote: RemoteUnit) -> None:
        spec = next(s for b, _ in self.in_flight.values() for s in b.runs if s.run_id == run_id)
        self.ended.add(run_id)
        for name, data in remote.files.items():
            if is_safe_name(name):
                self.write_file(run_id, name, data)
        self.runner.conclude(spec, remote.unit, remote.sensors, remote.idle_power_w)

    def finish(self, ref: Any, batch: VariantBatch, station: Any,
               pending: deque[VariantBatch]) -> None:
        """The station is done with `batch`: every run came back, or the station was lost
        (then the run in progress fails with the cause, and the runs not started go back to
        `pending`)."""
        import ray

        try:
            ray.get(ref)
        except ray.exceptions.RayActorError as exc:  # the station's worker or node is gone
            self.lost(batch, _lost_reason(exc), pending)
            if self.replacements > 0:
                self.replacements -= 1
                self.start_station()
        except ray.exceptions.RayError as exc:  # the station raised: it goes on measuring
            cause = exc.cause if isinstance(exc, ray.exceptions.RayTaskError) else exc
            self.lost(batch, "the run's Ray task failed on its node: "
                      f"{_first_line(cause or exc)}", pending)
            self.free.append(station)
        else:
            self.drain()
            self.free.append(station)
        del self.in_flight[ref]

    def write_file(self, run_id: str, name: str, data: bytes) -> None:
        def write() -> None:
            (self.runner.writer.run_dir(run_id) / name).write_bytes(data)

        self.runner.guard.write(f"runs/{run_id}/{name}", write)

    def lost(self, batch: VariantBatch, reason: str, pending: deque[VariantBatch]) -> None:
        """A batch whose station brought no more back: the run in progress (or, none started,
        the first left) failed with the cause; the others go back to the queue."""
        self.drain()
        left = [spec for spec in batch.runs if spec.run_id not in self.ended]
        if not left:
            return
        failed = next((spec for spec in left if spec.run_id in self.started), left[0])
        started = self.started.pop(failed.run_id, None)
        if started is not None and started.node is not None and started.gpu_index is not None:
            self.runner.emit(ev.WorkerEnded(run_id=failed.run_id, node=started.node,
                                            gpu_index=started.gpu_index))
            self.runner.end_run(failed, "failed", reason, Placement(started.node,
                                                                    started.gpu_index))
        else:
            self.runner.end_run(failed, "failed", reason)
        rest = tuple(spec for spec in left if spec is not failed)
        if rest:
            pending.appendleft(dataclasses.replace(batch, runs=rest))

    def close(self) -> None:
        """Stations release their GPUs' locks and stop their samplers, then go."""
        import ray

        stations = self.free + [station for _, station in self.in_flight.values()]
        with contextlib.suppress(ray.exceptions.RayError):
            ray.get([s.close.remote() for s in self.free], timeout=30)
        self.drain()
        for station in stations + list(self.starting.values()):
            ray.kill(station)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}"


def _lost_reason(exc: Exception) -> str:
    return (f"the run's Ray task was lost ({_first_line(exc)}): its node or Ray worker died "
            "mid-run; `energy-console run PROFILE --resume SESSION_DIR` runs it again")
