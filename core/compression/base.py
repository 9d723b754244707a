"""The technique protocol: a name, its parameters, where it applies, and how to apply it.

Family modules (precision, quantization, pruning, ...) register Technique objects. They import torch
and optional packages inside functions only, so the UI can list techniques without loading torch.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from energy_console.core.models.base import LoadedModel


@dataclass(frozen=True)
class Param:
    name: str
    type: type[Any]  # float | int | str | bool
    default: Any
    help: str
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None

    def validate(self, value: Any) -> Any:
        """The value converted to the parameter's type; ValueError says what is allowed."""
        numeric = self.type in (int, float)
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:
                raise ValueError(f"{self.name} must be {self.allowed()}, got {value}") from None
        if not isinstance(value, self.type) or (self.type is not bool and isinstance(value, bool)):
            what = f" {self.allowed()}" if numeric else ""
            raise ValueError(f"{self.name} must be a {self.type.__name__}{what}, got {value!r}")
        if self.choices and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {', '.join(map(str, self.choices))}")
        if numeric and not (math.isfinite(value)
                            and (self.minimum is None or value >= self.minimum)
                            and (self.maximum is None or value <= self.maximum)):
            raise ValueError(f"{self.name} must be {self.allowed()}, got {value!r}")
        return value

    def allowed(self) -> str:
        """The range in words: `>= 0 and <= 1` (a finite number where unbounded)."""
        bounds = [f"{op} {b}" for op, b in ((">=", self.minimum), ("<=", self.maximum))
                  if b is not None]
        return " and ".join(bounds) or "a finite number"


@dataclass
class TechniqueContext:
    """What a technique may look at while it applies (filled by the worker)."""

    device: str  # "cpu", "cuda:0"
    task: str
    loaded: LoadedModel
    calibration_inputs: Callable[[], list[dict[str, Any]]]  # batches shaped like the run's inputs
    warnings: list[str] = field(default_factory=list)
    input_dtype: torch.dtype | None = None  # floating inputs are cast to it, if changed
    needs_no_grad: bool = False  # run under no_grad: some kernels fail under inference_mode
    extra_result: dict[str, Any] = field(default_factory=dict)  # goes into result.json
    runtime: str = "torch"  # what runs the compressed model: torch, onnxruntime (runs.csv)
    # (module, ctx, steps, keep_zeros) -> module: fine-tunes in measured windows (infer runs;
    # None where the run cannot train)
    train: Callable[..., Any] | None = None
    workload: str = "infer"  # what the runs of the variant time: infer, generate, train

    @property
    def device_type(self) -> str:
        return self.device.split(":")[0]


@dataclass(frozen=True)
class Technique:
    name: str
    family: str  # baseline | precision | quantization | pruning | sparsity | kv-cache
    summary: str
    apply: Callable[[Any, TechniqueContext, dict[str, Any]], Any]  # (module, ctx, params) -> module
    params: tuple[Param, ...] = ()
    devices: tuple[str, ...] = ("cpu", "cuda")
    layers: str = "all"  # which layer types it touches, in words
    requires: tuple[str, ...] = ()  # importable module names
    extra: str | None = None  # pip extra that installs `requires`
    check: Callable[[TechniqueContext, dict[str, Any]], str | None] | None = None
    # what runs the models it applies to: torch modules, or onnxruntime (an ONNX file's graph)
    runtimes: tuple[str, ...] = ("torch",)
    # architectures it is known to break, and why: (architecture, reason); such a run is
    # skipped with the reason (the worker runs each variant once before its windows)
    not_for: tuple[tuple[str, str], ...] = ()

    def missing_packages(self) -> list[str]:
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def unavailable_reason(self) -> str | None:
        """Why this machine cannot run the technique at all, or None."""
        missing = self.missing_packages()
        if missing:
            extra = f"pip install 'energy-console[{self.extra}]'" if self.extra else "pip install"
            return f"needs {', '.join(missing)}: {extra}"
        return None

    def reason_not_applicable(self, ctx: TechniqueContext, params: dict[str, Any]) -> str | None:
        reason = self.unavailable_reason()
        if reason:
            return f"{self.name} {reason}"
        if ctx.device_type not in self.devices:
            return f"{self.name} runs on {'/'.join(self.devices)} only, not on {ctx.device}"
        runtime = ctx.loaded.runtime if ctx.loaded is not None else "torch"
        if runtime not in self.runtimes:
            return (f"{self.name} changes a torch model; this model is an ONNX graph run by "
                    "onnxruntime, so only the graph techniques apply (onnx-fp32, onnx-int8, "
                    "onnx-fp16, onnx-qdq-int8, onnx-qdq-16x8)")
        return self.check(ctx, params) if self.check else None

    def resolve_params(self, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults filled in and values checked; ValueError names the parameter."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            allowed = ", ".join(known) or "none"
            raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; allowed: {allowed}")
        return {n: (p.validate(given[n]) if n in given else p.default) for n, p in known.items()}
