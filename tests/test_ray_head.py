"""The Ray head's rules that need no cluster (tests/test_session_ray.py runs real ones)."""

from __future__ import annotations

from energy_console.core.scale.ray_head import replacement_needed


def test_a_lost_station_is_started_again_only_for_more_batches_than_the_live_stations_take():
    # the lost-worker session: its batch's leftover run waits for the station still measuring
    assert not replacement_needed(pending_batches=1, live_stations=1, replacements_left=3)
    assert replacement_needed(pending_batches=1, live_stations=0, replacements_left=3)  # the only
    assert replacement_needed(pending_batches=5, live_stations=2, replacements_left=1)
    assert not replacement_needed(pending_batches=5, live_stations=2, replacements_left=0)
    assert not replacement_needed(pending_batches=0, live_stations=0, replacements_left=3)
