import pytest
from energy_console.core.measure.carbon import co2e_g, intensity_table, resolve_intensity
from energy_console.core.spec.profile import CarbonSettings


def test_the_profiles_figure_wins_then_the_country_then_the_world_average():
    assert resolve_intensity(CarbonSettings(intensity_g_per_kwh=123, country="FR")).g_per_kwh == 123
    fr = resolve_intensity(CarbonSettings(country="FR"))
    assert fr.g_per_kwh == intensity_table()["FR"] and fr.source == "table:FR"
    world = resolve_intensity(CarbonSettings())
    assert world.source.startswith("table:WORLD") and world.g_per_kwh > 0


def test_co2e_is_kwh_times_intensity():
    one_kwh_j = 3.6e6
    assert co2e_g(one_kwh_j, resolve_intensity(CarbonSettings(intensity_g_per_kwh=400))) == \
        pytest.approx(400.0)
