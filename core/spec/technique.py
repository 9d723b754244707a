"""A technique as a profile names it: one step or a chain of steps, each a registered name with
its parameters. core.compression checks the names and parameters against its registry
(parse_technique) and applies them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Step:
    name: str
    params: dict[str, Any] = field(default_factory=dict)  # as given in the profile

    @property
    def slug(self) -> str:
        # Run ids name folders: no ':' (sparse-2:4), which other systems refuse in file names.
        parts = [self.name.replace(":", "-")]
        parts += [f"{k}{_slug_value(v)}" for k, v in self.params.items()]
        return "-".join(parts)

    def to_yaml(self) -> Any:
        return {self.name: dict(self.params)} if self.params else self.name


@dataclass(frozen=True)
class TechniqueSpec:
    """One technique or a chain of them, applied in order, measured as one run."""

    steps: tuple[Step, ...]
    is_chain: bool = False

    @property
    def slug(self) -> str:
        return "+".join(step.slug for step in self.steps)

    @property
    def is_baseline(self) -> bool:
        return all(step.name == "baseline" for step in self.steps)

    def to_yaml(self) -> Any:
        if self.is_chain:
            return {"chain": [step.to_yaml() for step in self.steps]}
        return self.steps[0].to_yaml()


def _slug_value(value: Any) -> str:
    return str(value).lower().replace(" ", "").replace("/", "_")
