"""Per-GPU lanes on one box (`energy-console run PROFILE --gpus all|0,2,5`).

One lane per GPU: a thread of the runner that takes the next model variant (its batch of runs)
from the plan, pins its runs to its GPU and measures them through the session's one sampler
(each GPU's own NVML counter is charged), so a GPU never runs two runs at once and every GPU of
the box works. Each lane rests and takes its idle baseline as the session's own loop does
(session.rules, through the session port), on its own schedule. The session stays one
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

from energy_console.core.session.plan import RunSpec, VariantBatch
from energy_console.core.session.port import SessionPort
from energy_console.core.session.unit import this_node

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


def run_lanes(port: SessionPort, gpus: tuple[int, ...]) -> None:
    """Every batch of the session, ended, over one lane per GPU in `gpus`: a lane's GPU is busy
    with one variant's runs at a time; each lane keeps its own cool-down and idle baseline
    (session.rules), whose CPU/DRAM share overlaps other lanes' runs."""
    pending: deque[VariantBatch] = deque(port.batches)
    take_lock = threading.Lock()
    one_at_a_time = threading.Lock() if port.profile.exclusive else contextlib.nullcontext()
    failures: list[BaseException] = []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")

    def take() -> VariantBatch | None:
        with take_lock:
            return pending.popleft() if pending and not failures else None

    def lane(gpu: int) -> None:
        pin = functools.partial(pinned_spec, torch_index=torch_index(gpu, visible))
        try:
            port.run_lane(take, this_node(gpu), pin, one_at_a_time)
        except BaseException as exc:  # a full disk: the other lanes stop taking runs
            failures.append(exc)
    threads = [threading.Thread(target=lane, args=(gpu,), name=f"lane-gpu{gpu}", daemon=True)
               for gpu in gpus]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(JOIN_POLL_S)
    except KeyboardInterrupt:  # a second Ctrl-C: every lane cancels its run, then we go
        port.request_stop()
        for thread in threads:
            thread.join(10)
        raise
    if failures:
        raise failures[0]
