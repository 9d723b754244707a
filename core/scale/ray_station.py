"""A lab of boxes on Ray (`energy-console run PROFILE --ray auto|ADDRESS`, the `ray` extra).

The head (the runner, where the session directory lives) starts one *GPU station* per
`energy_console_gpu` slot of the cluster: a Ray actor that holds one GPU of one node
(`num_gpus=1` and one slot, a custom resource each node offers once per GPU it lends to
measuring, so a node measures at most one run per GPU). A station does on its node what a lane
does on one box: it holds that GPU's lock, samples that GPU's NVML counter and the node's
CPU/DRAM with its own sampler, and runs each model variant the head sends it (a batch of runs) in
its worker through `execute_unit`, after the cool-down and, when due, its own idle baseline, as
the session's own loop does (session.rules). Events, samples and each
run's outcome (its windows, its sensors and its run folder's files) stream to the head through a
Ray queue while the batch goes, so the live view and `attach` follow the one session directory as
for a local session, and each run is recorded as it ends; samples of a node's sensors are named
`NODE/gpuN/SENSOR` in samples.csv.

When a station (its Ray worker, or its node) is lost, the run it was measuring becomes a failed
run naming the cause, the batch's runs not yet started go back to the head's queue, a new station
is started in its place, and the session goes on; `--resume` runs only what is missing. Ray
itself is imported only here and in scale.ray_head (the head's loop), lazily.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from energy_console.core.measure.sensors import SensorInfo
from energy_console.core.session.port import DispatchFailed
from energy_console.core.session.rules import IdleSchedule, before_variant, charged_sensors
from energy_console.core.session.unit import Placement, UnitOutcome, UnitSetting
from energy_console.core.store import events as ev

if TYPE_CHECKING:
    from energy_console.core.session.plan import RunSpec, VariantBatch
    from energy_console.core.spec.profile import Profile

RAY_SLOT = "energy_console_gpu"  # custom resource: one per GPU a node lends to measuring
MAX_FILE_BYTES = 8 << 20  # a run folder's file brought back whole up to this size


class ClusterUnavailable(DispatchFailed):
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
    samples stream to the head; then it measures the runs the head sends it, one variant at a
    time, each in a worker of its own (`execute_unit`), resting and refreshing its idle baseline
    before each as the session rules say. Its second thread only takes cancellations and stops
    (max_concurrency=2)."""

    def __init__(self, profile: Profile, session_name: str, queue: Any):
        import ray
        from energy_console.core.session.locks import SessionLocks

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
        from energy_console.core.measure.sampler import DISPLAY_HZ, Sampler
        from energy_console.core.measure.sensors import describe, detect
        from energy_console.core.measure.sensors.period import calibrate
        from energy_console.core.session.worker_process import forkserver_context

        profile, gpu = self.profile, self.placement.gpu_index
        detection = detect(profile.sensors.cpu_tdp_w)
        self.sensors = charged_sensors(detection.sensors, gpu)
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
                               history_s=profile.protocol.run_timeout_s + 60,
                               display_hz=DISPLAY_HZ)
        self.sampler.start()
        # before the idle baseline: its imports load the box
        self.context = forkserver_context(profile)
        self.idle_schedule = IdleSchedule(profile.protocol)
        self.idle_power_w: dict[str, float] = {}  # its latest baseline, its sensors' names
        self.first_variant = True

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
        from energy_console.core.measure.energy import protocol_for_sensors
        from energy_console.core.scale.lanes import pinned_spec, torch_index
        from energy_console.core.session.unit import execute_unit
        from energy_console.core.worker.variant_cache import cache_folder

        pin = torch_index(self.placement.gpu_index or 0, os.environ.get("CUDA_VISIBLE_DEVICES"))
        protocol = protocol_for_sensors(self.profile.protocol, self.infos)
        prefix, runs_dir = self.prefix, self.folder / "runs"
        self._before_variant()
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

    def _before_variant(self) -> None:
        """The cool-down and, when due, the station's idle baseline, sent to the head."""
        reading = before_variant(self.profile.protocol, self.idle_schedule, self.sampler,
                                 self.first_variant, wait=self._wait,
                                 stopped=lambda: self._stopped)
        self.first_variant = False
        if reading is not None:
            self.idle_power_w = reading.power_w
            self.queue.put_nowait(("event", ev.IdleBaseline(
                duration_s=reading.duration_s,
                power_w={self.prefix + k: v for k, v in reading.power_w.items()},
                node=self.placement.node, gpu_index=self.placement.gpu_index)))

    def _wait(self, seconds: float) -> None:
        """Sleep, ending early when the session stops."""
        deadline = time.monotonic() + seconds
        while not self._stopped and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(0.1, left))

    def close(self) -> None:
        sampler = getattr(self, "sampler", None)
        if sampler is not None:
            sampler.stop()
        for sensor in getattr(self, "sensors", []):
            sensor.close()
        self.locks.release()


def _renamed(unit: UnitOutcome, prefix: str) -> UnitOutcome:
    """The unit with its windows' sensors named as in samples.csv."""
    windows = [dataclasses.replace(w, energy_j={prefix + k: v for k, v in w.energy_j.items()},
                                   faults={prefix + k: v for k, v in w.faults.items()})
               for w in unit.worker.windows]
    return dataclasses.replace(unit, worker=dataclasses.replace(unit.worker, windows=windows))


def _files(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir())
            if p.is_file() and p.stat().st_size <= MAX_FILE_BYTES}
