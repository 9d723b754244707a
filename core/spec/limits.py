"""The allowed range of every number a profile can hold: one table, read by the profile checker
and printed in docs/safety.md's Ranges (tests/hardening/test_bounds.py compares the two).

A profile is text anyone may hand you; these bounds keep a typo or a hostile file from asking for
1e20 repeats, a 1000 s sensor period or an endless timeout. Technique parameters keep their ranges
on their `Param` (core/compression, whose catalogue gives them as rows of this table too).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limit:
    key: str  # as written in a profile; `[]` stands for every item of a list
    kind: type  # int or float
    minimum: float
    maximum: float
    min_exclusive: bool = False  # minimum itself not allowed (a window of 0 s)
    unit: str = ""
    length: bool = False  # the bound is on the number of entries of a list, not on a value

    @property
    def allowed(self) -> str:
        """The range in words, as error messages and docs/safety.md write it."""
        low = f"> {_show(self.minimum)}" if self.min_exclusive else f">= {_show(self.minimum)}"
        return f"{low} and <= {_show(self.maximum)}"

    @property
    def expected(self) -> str:
        if self.length:
            return f"a list of {_show(self.minimum)} to {_show(self.maximum)} entries"
        what = "an integer" if self.kind is int else "a number"
        return f"{what} {self.allowed}" + (f" ({self.unit})" if self.unit else "")

    def problem(self, value: Any) -> str | None:
        """None if value is allowed, else what is wrong with it and what to write instead."""
        if self.length:
            if self.minimum <= len(value) <= self.maximum:
                return None
            return f"{len(value)} entries are not allowed; expected {self.expected}"
        hint = ""
        if isinstance(value, bool):
            hint = " (true/false is not a number)"
        elif not isinstance(value, (int, float)):
            pass
        elif not math.isfinite(value):
            hint = " (infinity and NaN are not numbers a profile can use)"
        elif self.kind is int and isinstance(value, float):
            if value.is_integer() and abs(value) < 1e15:
                hint = f" (write it as a whole number: {int(value)})"
        elif self.inside(value):
            return None
        return f"{show_value(value)} is not allowed; expected {self.expected}{hint}"

    def inside(self, value: float) -> bool:
        low = value > self.minimum if self.min_exclusive else value >= self.minimum
        return low and value <= self.maximum


# The one table. Keys follow the profile; units say what the number counts.
LIMITS: tuple[Limit, ...] = (
    Limit("models", int, 1, 100, unit="entries", length=True),
    Limit("models[].dataset.max_samples", int, 1, 1_000_000, unit="samples"),
    Limit("models[].generation.temperature", float, 1e-6, 100, unit="softmax temperature"),
    Limit("models[].generation.top_k", int, 1, 1_000_000, unit="tokens kept"),
    Limit("models[].generation.top_p", float, 1e-6, 1, unit="probability mass kept"),
    Limit("models[].generation.seed", int, 0, 2**31 - 1, unit="sampling seed"),
    Limit("models[].generation.eos_token_id", int, 0, 10_000_000, unit="token id"),
    Limit("models[].generation.pass_at_1_timeout_s", float, 0.1, 600, unit="seconds per task"),
    Limit("models[].training.lr", float, 1e-9, 10, unit="learning rate"),
    Limit("models[].training.weight_decay", float, 0, 10, unit="decay factor"),
    Limit("models[].training.holdout", float, 0.01, 0.9,
          unit="share of the dataset held out, 0.25 = 25 %"),
    Limit("models[].training.seed", int, 0, 2**31 - 1, unit="torch seed"),
    Limit("techniques", int, 1, 100, unit="entries", length=True),
    Limit("inputs.batch_sizes", int, 1, 64, unit="entries", length=True),
    Limit("inputs.batch_sizes[]", int, 1, 4096, unit="inputs per batch"),
    Limit("inputs.sequence_lengths", int, 1, 64, unit="entries", length=True),
    Limit("inputs.sequence_lengths[]", int, 1, 131_072, unit="tokens"),
    Limit("inputs.resolutions", int, 1, 64, unit="entries", length=True),
    Limit("inputs.resolutions[]", int, 1, 8192, unit="pixels per side"),
    Limit("inputs.max_new_tokens", int, 1, 64, unit="entries", length=True),
    Limit("inputs.max_new_tokens[]", int, 1, 131_072, unit="tokens generated per prompt"),
    Limit("protocol.idle_seconds", float, 0, 600, unit="seconds"),
    Limit("protocol.warmup", int, 0, 10_000, unit="iterations"),
    Limit("protocol.min_window_s", float, 0, 3600, min_exclusive=True, unit="seconds"),
    Limit("protocol.repeats", int, 1, 1000, unit="repeats per run"),
    Limit("protocol.sample_hz", float, 1, 1000, unit="readings per second"),
    Limit("protocol.iterations", int, 1, 10_000_000, unit="iterations per repeat"),
    Limit("protocol.max_spread", float, 0, 10, min_exclusive=True, unit="relative, 0.15 = 15 %"),
    Limit("protocol.run_timeout_s", float, 0, 86_400, min_exclusive=True, unit="seconds"),
    Limit("protocol.cooldown_s", float, 0, 3600, unit="seconds"),
    Limit("protocol.idle_refresh_s", float, 0, 86400, unit="seconds"),
    Limit("protocol.threads", int, 1, 1024, unit="CPU threads"),
    Limit("protocol.target_ci_pct", float, 0, 100, min_exclusive=True,
          unit="% of the value, 95 % interval"),
    Limit("protocol.max_run_s", float, 0, 86_400, min_exclusive=True,
          unit="seconds of timed windows per run"),
    Limit("carbon.intensity_g_per_kwh", float, 0, 2000, unit="g CO2e per kWh"),
    Limit("sensors.cpu_tdp_w", float, 0, 2000, min_exclusive=True, unit="watts"),
)

BY_KEY: dict[str, Limit] = {limit.key: limit for limit in LIMITS}


def limit(key: str) -> Limit:
    return BY_KEY[key]


def markdown_table(rows: Iterable[Limit]) -> str:
    """The rows as docs/safety.md's table of ranges (tests/hardening/test_bounds.py checks it
    against this table's rows and the techniques' parameters)."""
    lines = ["| Field | Kind | Allowed | Unit |", "|---|---|---|---|"]
    for row in rows:
        kind = "list" if row.length else ("integer" if row.kind is int else "number")
        allowed = (f"{_show(row.minimum)} to {_show(row.maximum)} entries" if row.length
                   else row.allowed)
        lines.append(f"| `{row.key}` | {kind} | {allowed} | {'' if row.length else row.unit} |")
    return "\n".join(lines)


def show_value(value: Any) -> str:
    """A value for an error message: YAML spelling of inf/nan, long values shortened."""
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _show(number: float) -> str:
    if isinstance(number, float) and number.is_integer():
        number = int(number)
    return str(number)
