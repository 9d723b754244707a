"""Technique registry. Family modules register their techniques when imported; listing imports
every family, so the registry is complete whichever module was imported first.

A profile names a technique as a string (`bf16`), a mapping with parameters
(`{magnitude-prune: {amount: 0.5}}`) or a chain (`{chain: [structured-prune, dynamic-int8]}`).
"""

from __future__ import annotations

import importlib
from typing import Any

from energy_console.core.compression.base import Param, Technique, TechniqueContext
from energy_console.core.models.base import NotApplicable
from energy_console.core.spec.technique import Step, TechniqueSpec

FAMILY_MODULES = (
    "energy_console.core.compression.baseline",
    "energy_console.core.compression.precision",
    "energy_console.core.compression.quantization",
    "energy_console.core.compression.quanto",
    "energy_console.core.compression.onnx_int8",
    "energy_console.core.compression.onnx_qdq",
    "energy_console.core.compression.pruning",
    "energy_console.core.compression.sparsity",
    "energy_console.core.compression.training",
    "energy_console.core.compression.kv_cache",
)

_REGISTRY: dict[str, Technique] = {}


def register(technique: Technique) -> Technique:
    _REGISTRY[technique.name] = technique
    return technique


def techniques() -> dict[str, Technique]:
    """Every technique by name, in catalogue order: FAMILY_MODULES order, then as registered."""
    for module in FAMILY_MODULES:  # cached after the first time; a family imported early by
        importlib.import_module(module)  # another (pruning imports quantization) counts too
    rank = {module: i for i, module in enumerate(FAMILY_MODULES)}
    ordered = sorted(_REGISTRY.values(), key=lambda t: rank.get(t.apply.__module__, len(rank)))
    return {t.name: t for t in ordered}


def get(name: str) -> Technique:
    known = techniques()
    if name not in known:
        raise KeyError(f"unknown technique {name!r}; known: {', '.join(known)}, chain")
    return known[name]


TRAINING_STEPS = ("finetune", "qat", "weight-int8-qat")  # core.compression.training
# what a training step is without its training
POST_TRAINING = {"qat": "static-int8", "weight-int8-qat": "weight-int8"}


def untrained_variant(spec: TechniqueSpec) -> TechniqueSpec | None:
    """The same technique without training (finetune dropped, qat as static-int8): the
    post-training variant a run that trained is compared with; None when nothing trains."""
    if not any(step.name in TRAINING_STEPS for step in spec.steps):
        return None
    steps = tuple(Step(POST_TRAINING[s.name]) if s.name in POST_TRAINING else s
                  for s in spec.steps if s.name != "finetune")
    if not steps:
        return TechniqueSpec((Step("baseline"),))
    return TechniqueSpec(steps, is_chain=len(steps) > 1)


def apply_technique(module: Any, spec: TechniqueSpec, ctx: TechniqueContext) -> Any:
    """The spec's steps applied in order (a step may replace the module: the result is returned).

    Raises NotApplicable with the reason of the first step that cannot apply.
    """
    for step in spec.steps:
        technique = get(step.name)
        params = technique.resolve_params(step.params)
        reason = technique.reason_not_applicable(ctx, params)
        if reason:
            raise NotApplicable(reason)
        module = technique.apply(module, ctx, params)
    return module


def parse_technique(raw: Any) -> TechniqueSpec:
    """A profile's technique entry as a TechniqueSpec; ValueError says what is wrong."""
    if isinstance(raw, dict) and set(raw) == {"chain"}:
        steps = raw["chain"]
        if not isinstance(steps, list) or not steps:
            raise ValueError("chain must be a non-empty list of techniques")
        parsed = [parse_technique(s) for s in steps]
        if any(p.is_chain for p in parsed):
            raise ValueError("a chain cannot contain another chain")
        return TechniqueSpec(tuple(p.steps[0] for p in parsed), is_chain=True)
    params: Any  # checked to be a mapping below
    if isinstance(raw, str):
        name, params = raw, {}
    elif isinstance(raw, dict) and len(raw) == 1:
        name, params = next(iter(raw.items()))
        params = {} if params is None else params
        if not isinstance(params, dict):
            raise ValueError(f"parameters of {name} must be a mapping, e.g. {{{name}: {{...}}}}")
    else:
        raise ValueError(
            "a technique is a name (bf16), a name with parameters ({magnitude-prune: "
            "{amount: 0.5}}) or {chain: [...]}"
        )
    technique = get(name)
    technique.resolve_params(params)  # raises ValueError naming the parameter
    return TechniqueSpec((Step(name, dict(params)),))


__all__ = [
    "NotApplicable",
    "Param",
    "Technique",
    "TechniqueContext",
    "apply_technique",
    "get",
    "parse_technique",
    "register",
    "techniques",
    "untrained_variant",
]
