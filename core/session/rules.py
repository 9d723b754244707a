"""When the runner takes the idle baseline and how long it rests between runs: the one place
these rules live.

- **Idle baseline**: taken with no worker running before the first variant (the device cold),
  and taken again before the next variant once `protocol.idle_refresh_s` have passed since the
  last one (by then the device has warmed to its working temperature, where it draws more at
  idle than cold). Each run is charged with the latest baseline. `idle_seconds: 0` takes none;
  `idle_refresh_s: 0` never refreshes.
- **Cool-down**: `protocol.cooldown_s` of rest before each run but the first: the runner rests
  between variants, the worker between the input sizes of one variant (pause_between_runs).
"""

from __future__ import annotations


class IdleSchedule:
    """Whether the idle baseline is due before the next variant (see the module's rules)."""

    def __init__(self, protocol) -> None:
        self.idle_s = protocol.idle_seconds
        self.refresh_s = protocol.idle_refresh_s
        self.cooldown_s = protocol.cooldown_s
        self._last_t: float | None = None

    def due(self, now: float) -> bool:
        if self.idle_s <= 0:
            return False
        if self._last_t is None:
            return True
        return self.refresh_s > 0 and now - self._last_t >= self.refresh_s

    def taken(self, now: float) -> None:
        self._last_t = now
