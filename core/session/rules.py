"""The session's rules, one function each, called alike by the session's own loop, each GPU
lane (--gpus) and each Ray GPU station (--ray): the one place these rules live.

- **Idle baseline** (`take_idle_baseline`, `IdleSchedule`): taken with no worker of its lane
  running before the lane's first variant (the device cold), and taken again before the next
  variant once `protocol.idle_refresh_s` have passed since the last one (by then the device has
  warmed to its working temperature, where it draws more at idle than cold). Each lane (the
  session's own, a GPU's, a Ray station's) keeps its own schedule, and each run is charged with
  its lane's latest baseline. `idle_seconds: 0` takes none; `idle_refresh_s: 0` never refreshes.
- **Cool-down** (`cooldown_before_s`): `protocol.cooldown_s` of rest before each variant of a
  lane but its first; the worker rests between the input sizes of one variant
  (core.worker.entry.rest_between_runs).
- **Charging** (`charged_sensors`): a run is charged with the GPU it ran on and the box's
  CPU/DRAM; other GPUs idle beside it, or run other lanes' runs, and are not its cost.
- **Models that failed to load** (`UnloadableModels`): not tried again for every variant.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from energy_console.core.measure.cpu_load import CpuLoadWindow, busy_idle_warning, ps_process
from energy_console.core.measure.sampler import Sampler
from energy_console.core.session.plan import RunSpec
from energy_console.core.spec.profile import ProtocolSettings
from energy_console.core.store import events as ev


@dataclass(frozen=True)
class IdleReading:
    """An idle baseline: each sensor's mean power over `duration_s` with no run of its lane."""

    duration_s: float
    power_w: dict[str, float]
    other_cpu_load_pct: float = 0.0  # other processes' CPU use meanwhile, % of all cores


def take_idle_baseline(sampler: Sampler, seconds: float,
                       wait: Callable[[float], None]) -> IdleReading:
    """Each sensor's mean power over `seconds` of `wait` (which may end early on a stop), and
    how busy other processes kept the CPU meanwhile (the runner's own use left out)."""
    t0 = time.monotonic()
    load = CpuLoadWindow(t0, ps_process(os.getpid()))
    sampler.read_now()
    start = sampler.energy_at(t0)
    wait(seconds)
    t1 = time.monotonic()
    sampler.read_now()
    load.close(t1)
    windows = sampler.window(start, t0, t1)
    return IdleReading(t1 - t0, {name: w.avg_power_w for name, w in windows.items()},
                       load.other_cpu_load_pct)


def idle_events(reading: IdleReading, node: str | None, gpu_index: int | None,
                charged: set[str]) -> tuple[dict[str, float], list[ev.Event]]:
    """A lane's new baseline: the watts its runs are charged with (a pinned lane's GPU and the
    box's CPU/DRAM) and the events that say so, with a warning when other processes kept the
    CPU busy meanwhile (on screen; session.json keeps the load for the report)."""
    pinned = gpu_index is not None
    power_w = {k: v for k, v in reading.power_w.items() if not pinned or k in charged}
    events: list[ev.Event] = [ev.IdleBaseline(
        duration_s=reading.duration_s, power_w=power_w, node=node if pinned else None,
        gpu_index=gpu_index, other_cpu_load_pct=round(reading.other_cpu_load_pct, 1))]
    busy = busy_idle_warning(reading.other_cpu_load_pct)
    if busy:
        events.append(ev.Notice(level="warning", message=busy))
    return power_w, events


class IdleSchedule:
    """Whether a lane's idle baseline is due before its next variant (see the module's rules)."""

    def __init__(self, protocol: ProtocolSettings) -> None:
        self.idle_s = protocol.idle_seconds
        self.refresh_s = protocol.idle_refresh_s
        self._last_t: float | None = None

    def due(self, now: float) -> bool:
        if self.idle_s <= 0:
            return False
        if self._last_t is None:
            return True
        return self.refresh_s > 0 and now - self._last_t >= self.refresh_s

    def taken(self, now: float) -> None:
        self._last_t = now


def cooldown_before_s(protocol: ProtocolSettings, first: bool) -> float:
    """The rest before a lane's next variant: none before its first."""
    return 0.0 if first else max(0.0, protocol.cooldown_s)


def before_variant(protocol: ProtocolSettings, schedule: IdleSchedule, sampler: Sampler,
                   first: bool, wait: Callable[[float], None], stopped: Callable[[], bool]
                   ) -> IdleReading | None:
    """What a lane does before each variant, in this order: the cool-down, then the idle
    baseline when it is due (not once the session is stopping). Returns the new baseline."""
    wait(cooldown_before_s(protocol, first))
    if stopped() or not schedule.due(time.monotonic()):
        return None
    reading = take_idle_baseline(sampler, protocol.idle_seconds, wait)
    schedule.taken(time.monotonic())
    return reading


class _Charged(Protocol):
    """A sensor or its SensorInfo: what charging looks at."""

    @property
    def kind(self) -> str: ...
    @property
    def device_index(self) -> int | None: ...


ChargedT = TypeVar("ChargedT", bound=_Charged)


def charged_sensors(sensors: Iterable[ChargedT], gpu_index: int | None) -> list[ChargedT]:
    """The sensors a run on GPU `gpu_index` (NVML's index; None: no GPU) is charged with: that
    GPU and the box's CPU/DRAM (shared while pinned runs overlap), never another GPU."""
    return [s for s in sensors if s.kind != "gpu" or s.device_index == gpu_index]


def model_key(spec: RunSpec) -> tuple:
    """What identifies a model across its runs (run ids stay opaque)."""
    entry = spec.model
    options = json.dumps(entry.options, sort_keys=True, default=str) if entry.options else None
    return (entry.source, entry.resolved_ref, entry.task, entry.trust_remote_code, options)


def not_loaded_reason(spec: RunSpec, earlier: str) -> str:
    """Why a run of a model that could not be loaded is skipped (`earlier`: that run, why)."""
    return (f"not run: {spec.model.ref} could not be loaded in an earlier run of this session "
            f"({earlier})")


@dataclass
class UnloadableModels:
    """The models of a session that could not be loaded: an unreachable hub id costs its
    retries once, not once per variant. Deaths and timeouts are not remembered: the next run
    may well get through."""

    _why: dict[tuple, str] = field(default_factory=dict)  # model key -> "RUN_ID: reason"

    def remember(self, spec: RunSpec, reason: str) -> None:
        self._why.setdefault(model_key(spec), f"{spec.run_id}: {reason}")

    def skip_reason(self, spec: RunSpec) -> str | None:
        """Why spec is skipped without starting it, after an earlier run of its model."""
        earlier = self._why.get(model_key(spec))
        return not_loaded_reason(spec, earlier) if earlier else None
