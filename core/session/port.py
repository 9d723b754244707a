"""The session port: what the ways of spreading a session's runs (scale/: GPU lanes, the Ray
head) use of the runner, and the dispatch the runner is handed from above. Session never imports
scale: the CLI builds the dispatch (scale.placement) and gives it to the Runner."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

from energy_console.core.measure.sensors import SensorInfo
from energy_console.core.session.plan import RunSpec, VariantBatch
from energy_console.core.session.unit import Placement, UnitOutcome, this_node
from energy_console.core.spec.profile import Profile
from energy_console.core.store import events as ev
from energy_console.core.store.records import RunStatus


def unpinned(spec: RunSpec) -> RunSpec:
    return spec


NO_TURN: AbstractContextManager[Any] = nullcontext()  # a lane that waits for no other


class SessionPort(Protocol):
    """The runner as lanes and the Ray head see it."""

    profile: Profile
    batches: list[VariantBatch]  # the plan: each variant's runs

    @property
    def session_name(self) -> str: ...
    @property
    def total_runs(self) -> int: ...
    @property
    def stop_requested(self) -> bool: ...

    def request_stop(self) -> None: ...

    def run_lane(self, take: Callable[[], VariantBatch | None], placement: Placement,
                 pin: Callable[[RunSpec], RunSpec] = unpinned,
                 turn: AbstractContextManager[Any] = NO_TURN) -> None:
        """Measure variants on this box one after another, taking each from `take` (None: no
        more) and holding `turn` around each, the session rules applied before each."""

    def admit(self, spec: RunSpec) -> bool:
        """Whether spec may start now; if not, its record says why."""

    def end_run(self, spec: RunSpec, status: RunStatus, reason: str,
                placement: Placement | None = None) -> None: ...
    def conclude(self, spec: RunSpec, unit: UnitOutcome, sensors: list[SensorInfo],
                 idle_power_w: dict[str, float]) -> None: ...
    def emit(self, event: ev.Event) -> None: ...
    def write_samples(self, rows: list[tuple[float, str, float | None, float]],
                      t_offset_s: float = 0.0) -> None: ...
    def write_run_file(self, run_id: str, name: str, data: bytes) -> None: ...
    def poll_control(self, run_id: str | None = None) -> str | None: ...


class DispatchFailed(RuntimeError):
    """No run could be sent anywhere (a cluster that cannot be joined); str() says the fix."""


@dataclass(frozen=True)
class Dispatch:
    """Where the runner's batches go, as the runner needs to know it: the call that runs every
    batch to its end, the GPUs of this box it locks (None: the whole machine), whether it locks
    anything here (a Ray station locks its GPU on its node), and session.json's `spread`."""

    run_batches: Callable[[SessionPort], None]
    gpus: tuple[int, ...] | None = None
    locks_here: bool = True
    spread: dict[str, Any] | None = None


def one_variant_at_a_time(port: SessionPort) -> None:
    """Every batch here, in plan order, on the session's one lane."""
    batches = iter(port.batches)
    port.run_lane(lambda: next(batches, None), this_node())


HERE = Dispatch(one_variant_at_a_time)
