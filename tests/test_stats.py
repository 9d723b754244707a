import pytest
from energy_console.core.measure.stats import ci95_half_width, median, percentile, relative_spread


def test_percentiles_interpolate_between_ranks():
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(list(range(101)), 95) == pytest.approx(95.0)


def test_ci95_uses_student_t_for_few_repeats():
    # n=3, stdev 1: t(2) = 4.303, half width = 4.303 / sqrt(3)
    assert ci95_half_width([1.0, 2.0, 3.0]) == pytest.approx(4.303 / 3**0.5)
    assert ci95_half_width([5.0]) is None


def test_spread_is_relative_to_the_median():
    assert relative_spread([9.0, 10.0, 11.0]) == pytest.approx(0.2)
    assert median([3.0, 1.0, 2.0]) == 2.0


def test_the_median_interval_spans_the_order_statistics_around_the_median():
    from energy_console.core.measure.stats import median_ci95_half_width

    # n = 100: ranks 50 ± 9.8 → the 41st and 60th values (0-based 40 and 59)
    assert median_ci95_half_width([float(i) for i in range(100)]) == (59 - 40) / 2
    assert median_ci95_half_width([1.0, 2.0, 3.0]) is None
