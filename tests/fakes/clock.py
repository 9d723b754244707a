"""A clock that moves only when a test moves it: pass it wherever code takes `clock=`."""

from __future__ import annotations


class ManualClock:
    """Reads `t`; `advance(s)` or `t += s` moves it."""

    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t
