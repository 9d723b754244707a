"""Fixed-rate sampling of every sensor in a thread of the runner (never in the worker).

Each sensor's readings become a cumulative energy series: counter sensors give it directly, power
sensors are integrated by trapezoid between consecutive readings. Energy over a window is the
difference of that series interpolated at the window's edges; the runner calls `read_now()` when an
edge arrives so there is always a reading just after it. Memory is bounded: only the last
`history_s` seconds are kept.
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import cycle
from typing import Any, NamedTuple

from energy_console.core.sensors.base import Reading, Sensor, SplitReadSensor

# A counter that has not moved for this long (ten NVML update periods) is drawing nothing.
STALLED_COUNTER_S = 1.0


class Sample(NamedTuple):
    """One sensor's reading as the sampler keeps it (a named tuple: cheaper than a dataclass)."""

    t: float  # monotonic
    sensor: str
    power_w: float | None
    energy_j: float  # cumulative since the sampler started


# Sample((t, ...)) without the named tuple's Python-level __new__: made ~7 times per round
_new_sample = partial(tuple.__new__, Sample)


_FAILED = object()  # in Sampler._raw where a sensor's read raised


class _WholeRead:
    """A sensor with only read(), seen as a SplitReadSensor: its raw value is the whole Reading."""

    def __init__(self, sensor: Sensor) -> None:
        self.name = sensor.name
        self.read_raw = sensor.read
        self.clock = time.monotonic  # unused by decode: the Reading has its own time

    @staticmethod
    def decode(raw: Reading, t: float) -> Reading:
        return raw


def _split(sensor: Sensor) -> SplitReadSensor | _WholeRead:
    """The sensor's read_raw/decode, unless its read() was replaced on the instance (wrapped, as
    a test does to fake its clock): then that read() is what the sampler calls."""
    if isinstance(sensor, SplitReadSensor) and "read" not in vars(sensor):
        return sensor
    return _WholeRead(sensor)


@dataclass(frozen=True)
class EnergyWindow:
    sensor: str
    energy_j: float
    duration_s: float

    @property
    def avg_power_w(self) -> float:
        return self.energy_j / self.duration_s if self.duration_s > 0 else 0.0


class _Series:
    """One sensor's cumulative energy over time.

    A counter that is read faster than it updates (NVML: every ~100 ms) repeats its value; only the
    readings where it moved are kept, so interpolation runs between the instants the counter
    changed rather than along a staircase, and power is the energy between two changes over their
    interval rather than alternating between zero and double.
    """

    def __init__(self, name: str, maxlen: int):
        self.name = name
        self.t: deque[float] = deque(maxlen=maxlen)
        self.energy_j: deque[float] = deque(maxlen=maxlen)
        self.last_power_w: float | None = None
        self._last_read_t = -math.inf
        # the last kept reading (t[-1], energy_j[-1]) as plain attributes: add() runs at 20 Hz
        self._kept_t: float | None = None
        self._kept_j = 0.0
        self._counter_origin: float | None = None

    def add(self, t: float, energy_j: float | None, power_w: float | None) -> Sample | None:
        if t <= self._last_read_t:
            return None
        kept_t = self._kept_t
        if energy_j is not None:
            if self._counter_origin is None:
                self._counter_origin = energy_j
            cumulative = energy_j - self._counter_origin
            if kept_t is not None:
                if cumulative == self._kept_j:  # the counter has not moved: not kept
                    self._last_read_t = t
                    if power_w is not None:
                        self.last_power_w = power_w
                    elif t - kept_t > STALLED_COUNTER_S:
                        self.last_power_w = 0.0
                    return _new_sample((t, self.name, self.last_power_w, cumulative))
                if power_w is None:
                    power_w = (cumulative - self._kept_j) / (t - kept_t)
        elif power_w is not None:
            if kept_t is None:
                cumulative = 0.0
            elif self.last_power_w is None:
                cumulative = self._kept_j
            else:
                cumulative = self._kept_j + 0.5 * (power_w + self.last_power_w) * (t - kept_t)
        else:
            return None
        self._last_read_t = self._kept_t = t
        self._kept_j = cumulative
        self.t.append(t)
        self.energy_j.append(cumulative)
        self.last_power_w = power_w
        return _new_sample((t, self.name, power_w, cumulative))

    def at(self, t: float) -> float:
        """Cumulative energy at t, linearly interpolated between the readings around it."""
        if not self.t:
            raise LookupError("no readings yet")
        i = bisect_left(self.t, t)
        if i <= 0:
            return self.energy_j[0]
        if i >= len(self.t):
            return self.energy_j[-1]
        t0, t1 = self.t[i - 1], self.t[i]
        e0, e1 = self.energy_j[i - 1], self.energy_j[i]
        return e0 + (e1 - e0) * (t - t0) / (t1 - t0)


class Sampler:
    """Reads every sensor at sample_hz in its own thread, and whenever read_now() is called.

    A tick of the thread only reads: each sensor's raw value and its time go into one list (see
    SplitReadSensor); they are decoded into the series in order, in batches: at most every
    `deliver_every_s`, and before anything is asked of the series (read_now, energy_at, window,
    failures, stop). A woken thread runs cold, so per tick it does as little as it can; a batch runs
    warm. on_samples gets every sample, in order, at the same batches (0: after each tick) and the
    rest at stop(): one call, and one write to samples.csv, per batch.
    """

    def __init__(
        self,
        sensors: Sequence[Sensor],
        sample_hz: float = 20.0,
        on_samples: Callable[[list[Sample]], None] | None = None,
        history_s: float = 120.0,
        deliver_every_s: float = 1.0,
    ):
        self.sensors = list(sensors)
        self.period_s = 1.0 / sample_hz
        self.on_samples = on_samples
        self.deliver_every_s = deliver_every_s
        maxlen = int(history_s * sample_hz) + 64
        self._series = {s.name: _Series(s.name, maxlen) for s in self.sensors}
        split = [_split(s) for s in self.sensors]
        self._reads = [(s.name, s.read_raw, s.clock) for s in split]
        self._decoders = [(s.name, s.decode, self._series[s.name].add) for s in split]
        self._lock = threading.Lock()
        self._raw: list[Any] = []  # per tick and sensor: raw value (or _FAILED), then its time
        self._pending: list[Sample] = []  # decoded, not yet handed to on_samples
        self._deliver_at = 0.0
        self._delivering = threading.Lock()  # one delivery at a time keeps batches in order
        self._stopping = False  # a plain flag, not an Event: checked 20 times a second
        self._thread: threading.Thread | None = None
        self._failures: deque[tuple[float, str, str]] = deque(maxlen=maxlen)  # (t, sensor, why)

    def start(self) -> None:
        self.read_now()
        self._thread = threading.Thread(target=self._loop, name="sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and hand on_samples what it has not had yet."""
        self._stopping = True
        if self._thread:
            self._thread.join(timeout=5)
        self._deliver(wait=True)

    def _loop(self) -> None:
        lock, read_all, deliver = self._lock, self._read_all, self._deliver
        period_s, monotonic, sleep = self.period_s, time.monotonic, time.sleep
        next_t = monotonic()
        while not self._stopping:
            next_t += period_s
            with lock:
                read_all()
            now = monotonic()
            if now >= self._deliver_at:
                deliver(wait=False)
                now = monotonic()
            delay = next_t - now
            if delay < 0:  # fell behind (a slow sensor or a busy machine): skip, don't burst
                next_t = now
                delay = 0
            # time.sleep, not Event.wait: a third cheaper per wake-up; stop() waits one period
            sleep(delay)

    def _read_all(self) -> None:
        """One tick: every sensor's raw value and time, kept for _decode (the lock is held)."""
        append = self._raw.append
        for name, read_raw, clock in self._reads:
            try:
                append(read_raw())
            except Exception as exc:  # a sensor that fails once must not stop the others
                self._failures.append((time.monotonic(), name, f"{type(exc).__name__}: {exc}"))
                append(_FAILED)
            append(clock())

    def _decode(self) -> list[Sample]:
        """The kept ticks into the series, in order; returns their samples (the lock is held)."""
        raw, samples = self._raw, []
        pairs = iter(raw)
        for (name, decode, add), value, t in zip(cycle(self._decoders), pairs, pairs):
            if value is _FAILED:
                continue
            try:
                sample = add(*decode(value, t))
            except Exception as exc:  # text that does not parse: that reading failed
                self._failures.append((t, name, f"{type(exc).__name__}: {exc}"))
                continue
            if sample is not None:
                samples.append(sample)
        raw.clear()
        if samples and self.on_samples:
            self._pending += samples
        return samples

    def read_now(self) -> list[Sample]:
        """Read every sensor once, now; returns the new samples (on_samples gets them too)."""
        with self._lock:
            self._decode()  # the thread's ticks first: they were read before
            self._read_all()
            samples = self._decode()
            due = bool(samples) and time.monotonic() >= self._deliver_at
        if due:
            self._deliver(wait=False)
        return samples

    def _deliver(self, wait: bool) -> None:
        if not self._delivering.acquire(blocking=wait):
            return  # another thread is delivering: these samples go with the next batch
        try:
            with self._lock:
                self._decode()
                batch, self._pending = self._pending, []
                self._deliver_at = time.monotonic() + self.deliver_every_s
            if batch and self.on_samples:
                self.on_samples(batch)
        finally:
            self._delivering.release()

    def failures(self, t0: float, t1: float) -> dict[str, str]:
        """Per sensor, the last error its reads raised between t0 and t1 (monotonic)."""
        with self._lock:
            self._decode()
            return {name: why for t, name, why in self._failures if t0 <= t <= t1}

    def energy_at(self, t: float) -> dict[str, float]:
        """Each sensor's cumulative energy (J) at monotonic time t."""
        with self._lock:
            self._decode()
            return {name: series.at(t) for name, series in self._series.items() if series.t}

    def window(self, start: dict[str, float], t0: float, t1: float) -> dict[str, EnergyWindow]:
        """Energy per sensor from edge values `start` (energy_at(t0)) to t1."""
        end = self.energy_at(t1)
        return {
            name: EnergyWindow(name, end[name] - start[name], t1 - t0)
            for name in start
            if name in end
        }
