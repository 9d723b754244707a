"""Fixed-rate sampling of every sensor in a thread of the runner (never in the worker).

Each sensor's readings become a cumulative energy series (energy_series). Energy over a window is
the difference of that series interpolated at the window's edges; the runner calls `read_now()`
when an edge arrives so there is always a reading just after it. Memory is bounded: only the last
`history_s` seconds are kept.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from operator import call
from typing import Any

from energy_console.core.measure.energy_series import EnergySeries, EnergyWindow, Sample
from energy_console.core.measure.sensors.base import (
    POLLED_POWER,
    POWER_SAMPLES,
    Reading,
    Sensor,
    SplitReadSensor,
)

# Readings missing for this many periods (and at least GAP_MIN_S; 1.5 s at the display rate) are
# a gap: a window that overlaps one is faulty, its edges and power-only integration unfounded.
GAP_PERIODS = 3
GAP_MIN_S = 0.5

_FAILED = object()  # in a tick (Sampler._ticks) where a sensor's read raised
_SKIPPED = object()  # in a tick where a sensor was not read (its rate is below the tick's)
_skip = itertools.repeat(_SKIPPED).__next__  # a C-level call that reads nothing
# How often the runner reads energy counters (and the estimate, a counter of CPU time) between
# window edges: enough for the live trace (a sparkline shows 60 s in at most ~100 columns), a
# stuck counter (STALLED_COUNTER_S) and a wrap (RAPL's takes minutes at full power).
DISPLAY_HZ = 2.0
# How often samples are decoded and handed on (samples.csv, a Ray station's head): each delivery
# wakes cold code, so fewer is cheaper; the live view lags by at most this.
DELIVER_EVERY_S = 2.0
# A driver's power samples are fetched this often (and at each delivery): its buffer holds a few
# seconds of them (120 at 20 ms on the GPUs that keep them), so a fetch must come well within it.
DRIVER_FETCH_EVERY_S = 1.0


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


class Sampler:
    """Reads every sensor at sample_hz in its own thread, and whenever read_now() is called;
    with a display_hz (the runner's: DISPLAY_HZ), the sensors that read a cumulative energy
    (counters, the estimate) only at that rate in the thread (their energy over a window comes
    from read_now at its edges), a driver's power samples (it keeps them, with their times) every
    DRIVER_FETCH_EVERY_S and at each delivery, and power-only sensors at sample_hz.

    A tick of the thread only reads: one list of every sensor's raw value and a time per clock
    (see SplitReadSensor), made by one C-level pass over the reads. Ticks are decoded into the
    series, each sensor's in read order, in batches: every `deliver_every_s`, and before anything
    is asked of the series (read_now, energy_at, window, failures, stop). A woken thread runs
    cold, so per tick it does as little as it can; a batch runs warm. on_samples gets every
    sample, each sensor's in order, at the same batches (0: after each tick) and the rest at
    stop(): one call, and one write to samples.csv, per batch. Sensor clocks must not raise.
    """

    def __init__(
        self,
        sensors: Sequence[Sensor],
        sample_hz: float = 20.0,
        on_samples: Callable[[list[Sample]], None] | None = None,
        history_s: float = 120.0,
        deliver_every_s: float = DELIVER_EVERY_S,
        display_hz: float | None = None,
    ):
        self.sensors = list(sensors)
        # counters (and the estimate) need reading only at window edges (read_now) and for the
        # display: with a display_hz they are read at that rate, a driver's power samples every
        # DRIVER_FETCH_EVERY_S, power-only sensors at sample_hz (none: the thread wakes at
        # display_hz)
        counters = ({s.name for s in self.sensors if s.method != POLLED_POWER} if display_hz
                    else set())
        buffered = {s.name for s in self.sensors if s.method == POWER_SAMPLES} & counters
        polled = any(s.name not in counters for s in self.sensors)
        self.period_s = 1.0 / (sample_hz if polled or not display_hz else display_hz)
        display_every = max(1, round(sample_hz / display_hz)) if display_hz and polled else 1
        self.on_samples = on_samples
        self.deliver_every_s = deliver_every_s
        maxlen = int(history_s * sample_hz) + 64
        self._series = {s.name: EnergySeries(s.name, maxlen) for s in self.sensors}
        split = [_split(s) for s in self.sensors]
        # A tick is map(call, _tick_calls) into a list: each clock's sensors' read_raw, then the
        # clock once (one time for the sensors read together: microseconds apart). Where the reads
        # are C functions (a pread partial, time.monotonic) no Python frame runs between them. The
        # raw values of a tick keep this layout until decoded.
        by_clock: dict[Callable[[], float], list[SplitReadSensor | _WholeRead]] = {}
        for sensor in split:
            by_clock.setdefault(sensor.clock, []).append(sensor)
        self._tick_calls: list[Callable[[], Any]] = []
        self._call_names: list[str] = []  # the sensor each call reads, for its failures
        # (name, decode, add, position of its raw value in a tick, of its time)
        self._decoders: list[tuple[str, Callable[[Any, float], Reading],
                                   Callable[..., Sample | None], int, int]] = []
        for clock, group in by_clock.items():
            time_position = len(group) + len(self._tick_calls)
            for sensor in group:
                self._decoders.append((sensor.name, sensor.decode, self._series[sensor.name].add,
                                       len(self._tick_calls), time_position))
                self._tick_calls.append(sensor.read_raw)
                self._call_names.append(sensor.name)
            self._tick_calls.append(clock)
            self._call_names.append("clock")
        # A delivery's ticks, in order: the last reads every sensor (then the batch is handed
        # on), as does one every DRIVER_FETCH_EVERY_S; a display tick every sensor but the driver
        # samples; the others only power-only sensors. A sensor left out of a tick is read by a
        # call that reads nothing.
        ticks_per_delivery = max(1, round(deliver_every_s / self.period_s))
        fetch_every = max(1, round(DRIVER_FETCH_EVERY_S / self.period_s))

        def calls_at(ticks_to_delivery: int) -> list[Callable[[], Any]]:
            skipped = set() if ticks_to_delivery % fetch_every == 0 else buffered
            if ticks_to_delivery % display_every:
                skipped = counters
            return [_skip if name in skipped else read
                    for read, name in zip(self._tick_calls, self._call_names, strict=True)]

        self._cycle = [calls_at(to_go) for to_go in reversed(range(ticks_per_delivery))]
        self._lock = threading.Lock()  # held around each tick and each decoding
        self._ticks: list[list[Any]] = []  # read, not decoded: in read order, in that layout
        self._pending: list[Sample] = []  # decoded, not yet handed to on_samples
        self._deliver_at = 0.0
        self._delivering = threading.Lock()  # one delivery at a time keeps batches in order
        self._stopping = False  # a plain flag, not an Event: checked 20 times a second
        self._thread: threading.Thread | None = None
        self._failures: deque[tuple[float, str, str]] = deque(maxlen=maxlen)  # (t, sensor, why)
        self.gap_s = max(GAP_PERIODS * self.period_s, GAP_MIN_S)
        self._gaps: deque[tuple[float, float]] = deque(maxlen=256)  # (from, to), monotonic

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
        """A tick every period (the deadline kept, not drifting), a delivery every
        deliver_every_s. Everything a tick touches is bound here: the thread wakes cold, and on
        a virtual machine each name looked up or frame entered then costs microseconds."""
        acquire, release, tick_on = self._lock.acquire, self._lock.release, self._tick_on
        keep, deliver, cycle = self._ticks.append, self._deliver, self._cycle
        period_s, monotonic, sleep = self.period_s, time.monotonic, time.sleep
        ticks_per_delivery = len(cycle)
        ticks = 0
        next_t = monotonic()
        while not self._stopping:
            calls = cycle[ticks]
            acquire()  # from here to release(): _tick, inlined (a frame less per wake-up)
            tick: list[Any] = []
            try:
                tick += map(call, calls)
            except Exception as exc:
                tick_on(tick, exc, calls)
            keep(tick)
            release()
            ticks += 1
            if ticks >= ticks_per_delivery:
                ticks = 0
                deliver(wait=False)
            next_t += period_s
            delay = next_t - monotonic()
            # time.sleep, not Event.wait: a third cheaper per wake-up; stop() waits one period
            if delay > 0:
                sleep(delay)
            else:  # fell behind (a slow sensor, a busy machine, a stopped process): skip
                now = monotonic()
                # this tick's deadline was next_t - period, the one before next_t - 2 periods
                if now - next_t + 2 * period_s > self.gap_s:
                    self._gaps.append((next_t - 2 * period_s, now))
                next_t = now

    def _tick(self) -> None:
        """One tick outside the thread (read_now; the lock is held)."""
        tick: list[Any] = []
        try:
            tick += map(call, self._tick_calls)
        except Exception as exc:
            self._tick_on(tick, exc, self._tick_calls)
        self._ticks.append(tick)

    def _tick_on(self, tick: list[Any], exc: Exception, calls: list[Callable[[], Any]]) -> None:
        """A read raised (a sensor that fails must not stop the others): mark it failed and read
        the rest of the tick (list += map keeps what was read before the exception)."""
        while True:
            failed = len(tick)
            self._failures.append((time.monotonic(), self._call_names[failed],
                                   f"{type(exc).__name__}: {exc}"))
            tick.append(_FAILED)
            try:
                tick += map(call, calls[failed + 1:])
                return
            except Exception as again:
                exc = again

    def _decode(self) -> list[Sample]:
        """The kept ticks into the series, each sensor's in read order; returns their samples
        (the lock is held)."""
        ticks, samples = self._ticks, list[Sample]()
        if not ticks:
            return samples
        columns = list(zip(*ticks, strict=True))  # per call of the tick: its values, in order
        ticks.clear()
        append = samples.append
        for name, decode, add, value_at, time_at in self._decoders:
            for value, t in zip(columns[value_at], columns[time_at], strict=True):
                if value is _FAILED or value is _SKIPPED:
                    continue
                try:
                    sample = add(*decode(value, t))
                except Exception as exc:  # text that does not parse: that reading failed
                    self._failures.append((t, name, f"{type(exc).__name__}: {exc}"))
                    continue
                if sample is not None:
                    append(sample)
        if samples and self.on_samples:
            self._pending += samples
        return samples

    def read_now(self) -> list[Sample]:
        """Read every sensor once, now; returns the new samples (on_samples gets them too)."""
        with self._lock:
            self._decode()  # the thread's ticks first: they were read before
            self._tick()
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
        """Per sensor, the last error its reads raised between t0 and t1 (monotonic); a gap in
        the readings that overlaps them fails every sensor."""
        with self._lock:
            self._decode()
            found = {name: why for t, name, why in self._failures if t0 <= t <= t1}
        why = self.gap_between(t0, t1)
        if why:
            found.update({sensor.name: why for sensor in self.sensors})
        return found

    def gap_between(self, t0: float, t1: float) -> str:
        """The longest gap in the readings that overlaps t0..t1, in words ('' when none)."""
        with self._lock:
            gaps = [(a, b) for a, b in self._gaps if a < t1 and b > t0]
        if not gaps:
            return ""
        longest = max(b - a for a, b in gaps)
        return (f"no readings for {longest:.1f} s (over {self.gap_s:.2g} s): the runner was "
                "stopped or starved of CPU")

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
