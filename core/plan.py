"""Expanding a profile into runs: model × input size × technique, with stable readable ids."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

from energy_console.core.compression import TechniqueSpec
from energy_console.core.models import source_for
from energy_console.core.models.base import input_family
from energy_console.core.profile import ModelEntry, Profile, ProtocolSettings
from energy_console.core.records import input_label


@dataclass(frozen=True)
class RunSpec:
    run_id: str  # tiny-bert-random__dynamic-int8__b1-s128
    index: int
    model: ModelEntry
    task: str | None  # None until the worker reads it from the model's config
    technique: TechniqueSpec
    device: str  # as the profile asks: auto | cpu | cuda | cuda:N
    batch_size: int
    seq_len: int | None
    resolution: int | None
    protocol: ProtocolSettings
    workload: str = "infer"  # infer | generate (core.workloads)
    max_new_tokens: int | None = None  # generate runs

    @property
    def input_size(self) -> int:
        return self.seq_len if self.seq_len is not None else self.resolution  # type: ignore


def model_task(entry: ModelEntry) -> str | None:
    """The task known before loading: the profile's, or what its source knows (demo models)."""
    return entry.task or source_for(entry.source).known_task(entry.ref)


def expand(
    profile: Profile, device: str | None = None, done: Set[str] = frozenset()
) -> list[RunSpec]:
    """Every run of the profile, grouped by model and input size with the baseline first.

    Models whose task is unknown until loading (hub/local without `task:`) are sized as text
    models. Runs whose id is in `done` (finished in an earlier session) are left out.
    """
    device = device or profile.device
    specs: list[RunSpec] = []
    techniques = sorted(profile.techniques, key=lambda t: not t.is_baseline)
    names = _unique_short_names(profile.models)
    for entry, name in zip(profile.models, names, strict=True):
        task = model_task(entry)
        family = input_family(task) if task else "text"
        sizes = (
            profile.inputs.resolutions if family == "image" else profile.inputs.sequence_lengths
        )
        # generate runs: one per max_new_tokens too; infer runs have none
        new_tokens: tuple[int | None, ...] = (
            profile.inputs.max_new_tokens if entry.workload == "generate" else (None,))
        for batch_size in profile.inputs.batch_sizes:
            for size in sizes:
                for max_new in new_tokens:
                    for technique in techniques:
                        seq_len = size if family == "text" else None
                        resolution = size if family == "image" else None
                        slug = input_label(batch_size, seq_len, resolution, max_new)
                        run_id = f"{name}__{technique.slug}__{slug}"
                        if run_id in done:
                            continue
                        specs.append(
                            RunSpec(run_id, len(specs), entry, task, technique, device,
                                    batch_size, seq_len, resolution, profile.protocol,
                                    entry.workload, max_new)
                        )
    return specs


def _unique_short_names(models) -> list[str]:
    names = [m.short_name for m in models]
    out = []
    for i, name in enumerate(names):
        out.append(name if names.count(name) == 1 else f"{name}-{names[:i + 1].count(name)}")
    return out
