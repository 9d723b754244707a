import time

from energy_console.core.worker.windows import calibrate_iterations, run_protocol


class SlowStart:
    """An inference that takes 20 ms for its first calls (a cold cache) and 2 ms after."""

    def __init__(self, slow_calls: int):
        self.calls, self.slow_calls = 0, slow_calls

    def __call__(self):
        self.calls += 1
        time.sleep(0.02 if self.calls <= self.slow_calls else 0.002)


def test_windows_last_min_window_even_when_the_warm_up_was_slow():
    marks = []
    result = run_protocol(SlowStart(slow_calls=3), lambda: None, warmup=3, repeats=2,
                          min_window_s=0.2, iterations=None,
                          mark=lambda phase, **f: marks.append((phase, f)))
    for start, end in result.windows:
        assert end - start >= 0.2
    # the warm-up suggested 10 iterations; the fast calls needed many more to fill 0.2 s
    assert all(n > 10 for n in result.iterations)
    assert [len(r) for r in result.latencies_ms] == result.iterations
    edges = [f for phase, f in marks if phase == "repeat"]
    assert [e["edge"] for e in edges] == ["start", "end", "start", "end"]
    assert [e["t"] for e in edges] == [t for w in result.windows for t in w]


def test_fixed_iterations_are_exactly_that_many():
    result = run_protocol(SlowStart(slow_calls=0), lambda: None, warmup=1, repeats=3,
                          min_window_s=10.0, iterations=4, mark=lambda *a, **k: None)
    assert result.iterations == [4, 4, 4]


def test_calibration_asks_for_enough_iterations_to_fill_the_window():
    assert calibrate_iterations(0.01, 1.0) == 100
    assert calibrate_iterations(5.0, 1.0) == 1
