"""Where a session's runs go, chosen once: here one variant at a time, one lane per GPU of this
box (`--gpus`), or a GPU station per GPU of a Ray cluster (`--ray`). The CLI builds the choice
and hands the Runner its dispatch; the runner never imports scale/."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from energy_console.core.scale.lanes import run_lanes
from energy_console.core.scale.ray_head import run_on_ray
from energy_console.core.session.port import HERE, Dispatch


@dataclass(frozen=True)
class Here:
    """One variant at a time on this box, holding the whole machine's lock."""


@dataclass(frozen=True)
class GpuLanes:
    """One lane per GPU of this box (NVML indexes), each GPU locked on its own."""

    gpus: tuple[int, ...]


@dataclass(frozen=True)
class RayCluster:
    """A GPU station per GPU slot of the Ray cluster at `address` ("auto": the one here)."""

    address: str


RunsGoTo = Here | GpuLanes | RayCluster


def dispatch_for(choice: RunsGoTo) -> Dispatch:
    """The runner's dispatch for the choice."""
    if isinstance(choice, GpuLanes):
        return Dispatch(partial(run_lanes, gpus=choice.gpus), gpus=choice.gpus,
                        spread={"gpus": list(choice.gpus)})
    if isinstance(choice, RayCluster):  # each station takes its own GPU's lock on its node
        return Dispatch(partial(run_on_ray, address=choice.address), locks_here=False,
                        spread={"ray": choice.address})
    return HERE


def runs_go_to(gpus: tuple[int, ...] | None, ray_address: str | None) -> RunsGoTo:
    """The choice from `run`'s --gpus (resolved) and --ray arguments (at most one given)."""
    if gpus is not None:
        return GpuLanes(gpus)
    if ray_address is not None:
        return RayCluster(ray_address)
    return Here()
