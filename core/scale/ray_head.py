"""The head of a Ray session (`--ray`): joins the cluster, starts a GPU station
(scale.ray_station.GpuStation) per slot, sends each free station the next model variant's batch,
drains the stations' queue (events, samples, each run's outcome) into the session directory, and
turns a lost station into a failed run, its batch's runs not yet started queued again."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import deque
from typing import Any

from energy_console.core.scale.ray_station import (
    RAY_SLOT,
    ClusterUnavailable,
    GpuStation,
    RemoteUnit,
)
from energy_console.core.session.plan import VariantBatch
from energy_console.core.session.port import SessionPort
from energy_console.core.session.unit import Placement
from energy_console.core.store import events as ev
from energy_console.core.store.session_dir import is_safe_name

WAIT_S = 0.2  # how often the head drains the queue and reads stop/cancel commands
STATION_START_S = 300.0  # runs fail when no GPU station could start for this long
# Ray starts its worker processes at nice 15 (its `worker_niceness`), and a station's forkserver
# and the workers it measures in would inherit it: every other process of the node would take the
# CPU before them, unlike a local session's. The session's actors start at their node's own
# priority instead, as Ray's job supervisor does (merged with a job's own env_vars).
AT_NODE_PRIORITY = {"env_vars": {"RAY_worker_niceness": "0"}}


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


def run_on_ray(port: SessionPort, address: str) -> None:
    """Every spec of the session, ended, over the GPU slots of the Ray cluster at `address`."""
    import ray
    from ray.util.queue import Queue

    connected = connect(address)
    try:
        slots = int(ray.cluster_resources().get(RAY_SLOT, 0))
        if slots <= 0:
            raise ClusterUnavailable(
                f"the Ray cluster offers no {RAY_SLOT!r} resource: start each node with "
                f"`ray start ... --num-gpus=N --resources='{{\"{RAY_SLOT}\": N}}'` (N: its "
                "GPUs), see README, Sweeps over many GPUs")
        queue = Queue(actor_options={"num_cpus": 0, "runtime_env": AT_NODE_PRIORITY})
        head = _RayHead(port, queue, slots)
        try:
            head.run()
        finally:
            head.close()
            queue.shutdown()
    finally:
        if connected:
            ray.shutdown()


class _RayHead:
    """The head's loop: start a station per slot that can be busy (one when `exclusive`, at
    most one per variant), send each free station the next variant's batch, drain the queue
    into the session, and record each run as its outcome comes back."""

    def __init__(self, session: SessionPort, queue: Any, slots: int):
        import ray

        self.session, self.queue = session, queue
        self.limit = 1 if session.profile.exclusive else slots
        self.station_class = ray.remote(GpuStation).options(
            num_gpus=1, num_cpus=0, resources={RAY_SLOT: 1}, max_restarts=0,
            max_task_retries=0, max_concurrency=2, runtime_env=AT_NODE_PRIORITY)
        self.starting: dict[Any, Any] = {}  # ready() ref -> station
        self.free: list[Any] = []
        self.in_flight: dict[Any, tuple[VariantBatch, Any]] = {}  # measure() ref -> (batch, …)
        self.ended: set[str] = set()  # run ids whose outcome came back
        self.cancelled: set[str] = set()
        self.started: dict[str, ev.RunStarted] = {}
        self.replacements = slots  # stations started again after one was lost, at most
        self.waiting_since = time.monotonic()
        # no more stations than can be busy at once: each holds a GPU's lock and loads torch
        for _ in range(min(slots, self.limit, len(session.batches))):
            self.start_station()

    def start_station(self) -> None:
        station: Any = self.station_class.remote(self.session.profile, self.session.session_name,
                                                 self.queue)
        self.starting[station.ready.remote()] = station

    def run(self) -> None:
        import ray

        pending: deque[VariantBatch] = deque(self.session.batches)
        while pending or self.in_flight:
            while pending and self.free and len(self.in_flight) < self.limit:
                batch = pending.popleft()
                runs = tuple(spec for spec in batch.runs if self.session.admit(spec))
                if runs:
                    station = self.free.pop()
                    batch = dataclasses.replace(batch, runs=runs)
                    ref = station.measure.remote(batch, self.session.total_runs)
                    self.in_flight[ref] = (batch, station)
            if self.session.stop_requested and not self.in_flight:
                while pending:  # each recorded as skipped
                    for spec in pending.popleft().runs:
                        self.session.admit(spec)
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
                self.session.end_run(spec, "failed", reason)

    def station_started(self, ref: Any, station: Any) -> None:
        import ray

        try:
            ray.get(ref)
        except ray.exceptions.RayError as exc:
            cause = exc.cause if isinstance(exc, ray.exceptions.RayTaskError) else exc
            self.session.emit(ev.Notice(level="warning", message="a Ray GPU station could not "
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
                self.session.emit(payload)
            else:
                self.session.write_samples(payload[0])

    def control(self) -> None:
        """Stop and cancel commands reach the station of the run in progress; its worker is
        stopped there (a stop skips the batch's later runs too)."""
        for batch, station in self.in_flight.values():
            for spec in batch.runs:
                if spec.run_id in self.started:
                    reason = self.session.poll_control(spec.run_id)
                    if reason and spec.run_id not in self.cancelled:
                        self.cancelled.add(spec.run_id)
                        station.cancel.remote(spec.run_id, reason, self.session.stop_requested)

    def run_ended(self, run_id: str, remote: RemoteUnit) -> None:
        spec = next(s for b, _ in self.in_flight.values() for s in b.runs if s.run_id == run_id)
        self.ended.add(run_id)
        for name, data in remote.files.items():
            if is_safe_name(name):
                self.session.write_run_file(run_id, name, data)
        self.session.conclude(spec, remote.unit, remote.sensors, remote.idle_power_w)

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
            live = len(self.free) + len(self.starting) + len(self.in_flight) - 1  # this one aside
            if replacement_needed(len(pending), live, self.replacements):
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
            self.session.emit(ev.WorkerEnded(run_id=failed.run_id, node=started.node,
                                            gpu_index=started.gpu_index))
            self.session.end_run(failed, "failed", reason, Placement(started.node,
                                                                    started.gpu_index))
        else:
            self.session.end_run(failed, "failed", reason)
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


def replacement_needed(pending_batches: int, live_stations: int, replacements_left: int) -> bool:
    """Whether a lost station is started again: a station's start-up (its process, torch,
    calibration, idle baseline) is paid only for more batches than the live stations will take
    one each; a batch left for a busy station waits for it."""
    return replacements_left > 0 and pending_batches > live_stations


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}"


def _lost_reason(exc: Exception) -> str:
    return (f"the run's Ray task was lost ({_first_line(exc)}): its node or Ray worker died "
            "mid-run; `energy-console run PROFILE --resume SESSION_DIR` runs it again")
