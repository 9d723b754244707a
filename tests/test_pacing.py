"""When the idle baseline is taken (core.pacing): the rule lives in one place."""

from energy_console.core.session.rules import IdleSchedule
from energy_console.core.spec.profile import ProtocolSettings


def test_the_idle_baseline_is_taken_first_and_again_once_the_refresh_time_has_passed():
    schedule = IdleSchedule(ProtocolSettings(idle_seconds=2, idle_refresh_s=600))
    assert schedule.due(now=100.0)
    schedule.taken(now=102.0)
    assert not schedule.due(now=701.0)
    assert schedule.due(now=702.0)


def test_no_idle_seconds_means_no_baseline_and_no_refresh_means_one():
    assert not IdleSchedule(ProtocolSettings(idle_seconds=0)).due(now=0.0)
    once = IdleSchedule(ProtocolSettings(idle_seconds=2, idle_refresh_s=0))
    once.taken(now=0.0)
    assert not once.due(now=1e9)


def test_the_cooldown_comes_from_the_protocol():
    assert IdleSchedule(ProtocolSettings(cooldown_s=5)).cooldown_s == 5
