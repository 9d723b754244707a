"""The judge of a run's windows (core.measure.precision) and the windows that count."""

from __future__ import annotations

import pytest
from energy_console.core.measure.precision import (
    judge,
    precision_status,
    undisturbed,
    window_precision,
)
from energy_console.core.measure.sensors.base import SensorInfo
from energy_console.core.spec.profile import ProtocolSettings
from energy_console.core.store.figures import WindowEnergy

COUNTER = SensorInfo(name="rapl:package-0", kind="cpu", method="counter", measured=True)
STEADY_LATENCIES = [10.0] * 50


def windows(*energies_j: float, disturbed: dict[int, str] | None = None) -> list[WindowEnergy]:
    disturbed = disturbed or {}
    return [WindowEnergy(duration_s=1.0, energy_j={COUNTER.name: e},
                         disturbed=disturbed.get(i, "")) for i, e in enumerate(energies_j)]


def test_without_a_target_the_repeats_are_enough():
    protocol = ProtocolSettings(repeats=3)
    assert not judge(50.0, STEADY_LATENCIES, 2, protocol).enough
    assert judge(50.0, STEADY_LATENCIES, 3, protocol).enough


def test_with_a_target_both_intervals_must_be_within_it():
    protocol = ProtocolSettings(repeats=2, target_ci_pct=2.0)
    assert judge(1.5, STEADY_LATENCIES, 5, protocol).enough
    assert not judge(2.5, STEADY_LATENCIES, 5, protocol).enough
    wide = [10.0, 20.0] * 25  # the median's interval spans the two values
    assert not judge(1.5, wide, 5, protocol).enough
    assert not judge(None, STEADY_LATENCIES, 5, protocol).enough  # no interval yet


def test_the_verdict_uses_the_student_t_interval_of_the_windows():
    # energies 10, 11, 12 J over 10 inferences: mean 1.1, sd 0.1, t(2) = 4.303
    verdict = window_precision(windows=windows(10.0, 11.0, 12.0), iterations=[10, 10, 10],
                               batch_size=1, sensors=[COUNTER],
                               latencies_ms=[STEADY_LATENCIES] * 3,
                               protocol=ProtocolSettings(repeats=3, target_ci_pct=30.0))
    assert verdict.energy_ci_pct == pytest.approx(4.303 * 0.1 / 3 ** 0.5 / 1.1 * 100, rel=1e-3)
    assert verdict.enough and verdict.windows == 3


def test_disturbed_windows_do_not_count_towards_the_repeats():
    measured = windows(10.0, 99.0, 11.0, disturbed={1: "sampler gap"})
    verdict = window_precision(windows=measured, iterations=[10] * 3, batch_size=1,
                               sensors=[COUNTER], latencies_ms=[STEADY_LATENCIES] * 3,
                               protocol=ProtocolSettings(repeats=3))
    assert verdict.windows == 2 and not verdict.enough


def test_disturbed_windows_are_left_out_with_their_iterations_and_latencies():
    kept, iterations, latencies = undisturbed(windows(1.0, 2.0, 3.0, disturbed={1: "gap"}),
                                              [10, 20, 30], [[1.0], [2.0], [3.0]])
    assert [w.energy_j[COUNTER.name] for w in kept] == [1.0, 3.0]
    assert iterations == [10, 30] and latencies == [[1.0], [3.0]]


def test_when_every_window_was_disturbed_all_stay_and_the_run_is_marked():
    every = windows(1.0, 2.0, disturbed={0: "gap", 1: "gap"})
    kept, _, _ = undisturbed(every, [10, 10], [[1.0], [1.0]])
    assert len(kept) == 2


def test_the_records_status_says_whether_the_target_was_reached():
    assert precision_status(ProtocolSettings(), 50.0, 50.0) == ""
    target = ProtocolSettings(target_ci_pct=5.0)
    assert precision_status(target, 4.9, 1.0) == "converged"
    assert precision_status(target, 5.1, 1.0) == "budget"
    assert precision_status(target, 1.0, None) == "budget"


def test_the_live_view_shows_the_interval_narrowing_past_the_repeats():
    from energy_console.core.store.events import PhaseChanged
    from energy_console.core.store.session_model import _phase_label

    first = PhaseChanged(run_id="r", phase="repeat", repeat=2, repeats=3)
    later = PhaseChanged(run_id="r", phase="repeat", repeat=7, repeats=3, energy_ci_pct=3.42,
                         target_ci_pct=2.0)
    assert _phase_label(first) == "repeat 2 of 3"
    assert _phase_label(later) == "repeat 7 · ±3.4 % of ±2 %"
