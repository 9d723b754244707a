"""Per-GPU lanes on one box (`energy-console run PROFILE --gpus all|0,2,5`).

One lane per GPU: a thread of the runner that takes the next model variant (its batch of runs)
from the plan, pins its runs to its GPU and measures them through the session's one sampler
(each GPU's own NVML counter is charged), so a GPU never runs two runs at once and every GPU of
the box works. The session stays one
directory: one events.jsonl, one runs.csv, one samples.csv. CPU/DRAM energy cannot be split
between runs that overlap: their records say `cpu_energy_shared`; a profile with
`exclusive: true` runs one variant at a time over all lanes (still pinned, still one per GPU).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from energy_console.core.session.unit import this_node

if TYPE_CHECKING:
    from energy_console.core.session.plan import RunSpec, VariantBatch
    from energy_console.core.session.runner import Runner

JOIN_POLL_S = 0.2  # the main thread wakes this often, so signals reach the runner


def pinned_spec(spec: RunSpec, torch_index: int) -> RunSpec:
    """The spec as its lane runs it: a GPU device becomes that lane's GPU; a CPU run stays on
    the CPU (it is still pinned: the lane's GPU is charged and no other run uses it)."""
    if spec.device == "cpu":
        return spec
    return dataclasses.replace(spec, device=f"cuda:{torch_index}")


def resolve_gpus(text: str, names: dict[int, str], gpu_model: str | None = None
                 ) -> tuple[int, ...]:
    """`all` or `0,2,5` as NVML indexes of this box's GPUs (`names`: index -> name), each of
    the profile's pinned model if it names one; ValueError says what is wrong and what to do."""
    if text.strip() == "all":
        indexes = tuple(sorted(names))
        if not indexes:
            raise ValueError("--gpus all: NVML finds no GPU on this machine (see "
                             "`energy-console doctor`)")
    else:
        try:
            indexes = tuple(dict.fromkeys(int(p) for p in text.split(",") if p.strip()))
        except ValueError:
            raise ValueError(f"--gpus {text!r}: expected `all` or GPU indexes like 0,2,5"
                             ) from None
        missing = [i for i in indexes if i not in names]
        if not indexes or missing:
            raise ValueError(f"--gpus {text!r}: this machine's GPUs are {sorted(names)}; "
                             f"{missing or 'none given'} not among them")
    if gpu_model:
        other = {i: names[i] for i in indexes if gpu_model.lower() not in names[i].lower()}
        if other:
            raise ValueError(f"the profile pins gpu_model {gpu_model!r}, but GPU(s) "
                             + ", ".join(f"{i} ({n})" for i, n in other.items())
                             + " are not one; leave them out of --gpus or change gpu_model")
    return indexes


def torch_index(nvml_index: int, visible_devices: str | None) -> int:
    """torch's index of NVML GPU `nvml_index` under CUDA_VISIBLE_DEVICES (numbers only)."""
    visible = [v.strip() for v in (visible_devices or "").split(",") if v.strip()]
    return visible.index(str(nvml_index)) if str(nvml_index) in visible else nvml_index


def run_lanes(runner: Runner, context: Any) -> None:
    """Every batch of the runner, ended, over one lane per GPU in runner.gpus: a lane's GPU is
    busy with one variant's runs at a time."""
    pending: deque[VariantBatch] = deque(runner.batches)
    take = threading.Lock()
    one_at_a_time = threading.Lock() if runner.profile.exclusive else None
    failures: list[BaseException] = []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")

    def lane(gpu: int) -> None:
        first = True
        pin = functools.partial(pinned_spec, torch_index=torch_index(gpu, visible))
        try:
            while not failures:
                with take:
                    if not pending:
                        return
                    batch = pending.popleft()
                if not first:
                    runner.pause(runner.profile.protocol.cooldown_s)
                first = False
                with one_at_a_time or contextlib.nullcontext():
                    runner.run_here(context, batch, this_node(gpu), pin)
        except BaseException as exc:  # a full disk: the other lanes stop taking runs
            failures.append(exc)
    threads = [threading.Thread(target=lane, args=(gpu,), name=f"lane-gpu{gpu}", daemon=True)
               for gpu in runner.gpus or ()]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(JOIN_POLL_S)
    except KeyboardInterrupt:  # a second Ctrl-C: every lane cancels its run, then we go
        runner.stop_requested = True
        for thread in threads:
            thread.join(10)
        raise
    if failures:
        raise failures[0]
