"""Expanding a profile into runs: model × technique × input size, with stable readable ids.

Runs are grouped into variant batches (one model under one technique chain, its input sizes
smallest first): one worker loads and compresses a variant once and measures each size as its own
run. One model's variants run together, the baseline first, so its uncompressed reference outputs
are computed once and cached for the others.

A run id names a folder (results/<session>/runs/<run id>/), so it is always one safe file name
(core.results.safe_name): a normal name keeps its exact id, one that had to change (`hf: '/'`,
`..`, spaces, unicode, 300 characters) gets a short hash, and models whose names collide are
numbered (model-1, model-2) without ever giving two of them one number.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Set
from dataclasses import dataclass

from energy_console.core.models import source_for
from energy_console.core.spec.profile import ModelEntry, Profile, ProtocolSettings
from energy_console.core.spec.tasks import input_family
from energy_console.core.spec.technique import TechniqueSpec
from energy_console.core.store.records import input_label
from energy_console.core.store.session_dir import safe_name

MAX_MODEL_NAME_BYTES = 100  # the model's part of a run id; the id as a whole fits MAX_NAME_BYTES


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
    save_model: bool = False  # keep the run's model in models/<run id>/ (profile save_models)

    @property
    def input_size(self) -> int:
        return self.seq_len if self.seq_len is not None else self.resolution  # type: ignore


@dataclass(frozen=True)
class VariantBatch:
    """The runs of one model variant (model × technique chain), in the order they run: the
    scheduling unit. One worker loads and compresses the variant once and measures each run."""

    runs: tuple[RunSpec, ...]

    @property
    def first(self) -> RunSpec:
        return self.runs[0]

    @property
    def label(self) -> str:
        """model · technique, for messages."""
        return f"{self.first.model.ref} · {self.first.technique.slug}"

    def without(self, run_ids: Set[str]) -> VariantBatch:
        return VariantBatch(tuple(r for r in self.runs if r.run_id not in run_ids))


def dominates(big: RunSpec, small: RunSpec) -> bool:
    """Whether `big` needs at least the memory of `small`: every dimension of its input at least
    as large (a size larger than one that ran out of memory is not tried)."""
    return (big.batch_size >= small.batch_size and big.input_size >= small.input_size
            and (big.max_new_tokens or 0) >= (small.max_new_tokens or 0))


def variant_batches(specs: list[RunSpec]) -> list[VariantBatch]:
    """Consecutive runs of one model entry and technique, as expand() orders them. A `train`
    run is a batch of its own: training changes the weights, so each size trains from the
    loaded model in a fresh worker."""
    batches: list[list[RunSpec]] = []
    for spec in specs:
        last = batches[-1][-1] if batches else None
        if (last is not None and last.model is spec.model and spec.workload != "train"
                and last.technique.slug == spec.technique.slug):
            batches[-1].append(spec)
        else:
            batches.append([spec])
    return [VariantBatch(tuple(b)) for b in batches]


def plan_batches(profile: Profile, device: str | None = None,
                 done: Set[str] = frozenset()) -> list[VariantBatch]:
    """The profile's runs as variant batches (see expand)."""
    return variant_batches(expand(profile, device, done))


def model_task(entry: ModelEntry) -> str | None:
    """The task known before loading: the profile's, what its source knows (demo models), or
    what its file says (a config.json's architectures, an ONNX graph's signature)."""
    source = source_for(entry.source)
    return entry.task or source.known_task(entry.ref) or source.config_task(entry)


def expand(
    profile: Profile, device: str | None = None, done: Set[str] = frozenset()
) -> list[RunSpec]:
    """Every run of the profile, grouped by model, then by technique (the baseline first), each
    technique's input sizes smallest first (batch × size, then batch, then new tokens).

    Models whose task is unknown until loading (no `task:`, and no file says) are sized as
    text models. Runs whose id is in `done` (finished in an earlier session) are left out. A batch
    size or input size listed twice is one run (the first place it is listed), so no two runs
    share an id and no two writers one folder.
    """
    device = device or profile.device
    specs: list[RunSpec] = []
    seen: set[str] = set()
    techniques = sorted({t.slug: t for t in profile.techniques}.values(),
                        key=lambda t: not t.is_baseline)
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
        combos = sorted(
            ((b, size, max_new) for b in dict.fromkeys(profile.inputs.batch_sizes)
             for size in dict.fromkeys(sizes) for max_new in dict.fromkeys(new_tokens)),
            key=lambda c: (c[0] * c[1], c[0], c[2] or 0))
        for technique in techniques:
            for batch_size, size, max_new in combos:
                seq_len = size if family == "text" else None
                resolution = size if family == "image" else None
                slug = input_label(batch_size, seq_len, resolution, max_new)
                run_id = safe_name(f"{name}__{technique.slug}__{slug}", fallback="run")
                if run_id in done or run_id in seen:
                    continue
                seen.add(run_id)
                specs.append(
                    RunSpec(run_id, len(specs), entry, task, technique, device,
                            batch_size, seq_len, resolution, profile.protocol,
                            entry.workload, max_new, profile.save_models)
                )
    return specs


def _unique_short_names(models) -> list[str]:
    """One safe, distinct name per model entry (compared without case: some file systems fold
    it). A name that is safe and unique stays as it is; names that collide are numbered in order
    (model-1, model-2), skipping any number another model's name already holds."""
    names = [safe_name(m.short_name, fallback="model", max_bytes=MAX_MODEL_NAME_BYTES)
             for m in models]
    counts = Counter(n.casefold() for n in names)
    taken = {n.casefold() for n in names if counts[n.casefold()] == 1}
    seen: Counter[str] = Counter()
    out = []
    for name in names:
        if counts[name.casefold()] > 1:
            seen[name.casefold()] += 1
            number = seen[name.casefold()]
            while f"{name}-{number}".casefold() in taken:
                number += 1
            name = f"{name}-{number}"
        taken.add(name.casefold())
        out.append(name)
    return out
