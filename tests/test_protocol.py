import time

from energy_console.core.spec.profile import ProtocolSettings
from energy_console.core.worker.windows import Iteration, calibrate_iterations, measure_windows


class SlowStart:
    """An inference that takes 20 ms for its first calls (a cold cache) and 2 ms after."""

    def __init__(self, slow_calls: int):
        self.calls, self.slow_calls = 0, slow_calls

    def __call__(self):
        self.calls += 1
        time.sleep(0.02 if self.calls <= self.slow_calls else 0.002)


def test_windows_last_min_window_even_when_the_warm_up_was_slow():
    marks = []
    result = measure_windows([Iteration(SlowStart(slow_calls=3))],
                             ProtocolSettings(warmup=3, repeats=2, min_window_s=0.2), "cpu",
                             mark=lambda phase, **f: marks.append((phase, f)))
    for window in result.windows:
        assert window.end_t - window.start_t >= 0.2
    # the warm-up suggested 10 iterations; the fast calls needed many more to fill 0.2 s
    assert all(w.iterations > 10 for w in result.windows)
    edges = [f for phase, f in marks if phase == "repeat"]
    assert [e["edge"] for e in edges] == ["start", "end", "start", "end"]
    assert [e["t"] for e in edges] == [t for w in result.windows for t in (w.start_t, w.end_t)]
    assert [e["iterations"] for e in edges[1::2]] == [w.iterations for w in result.windows]


def test_fixed_iterations_are_exactly_that_many():
    result = measure_windows([Iteration(SlowStart(slow_calls=0))],
                             ProtocolSettings(warmup=1, repeats=3, min_window_s=10.0,
                                              iterations=4), "cpu", mark=lambda *a, **k: None)
    assert [w.iterations for w in result.windows] == [4, 4, 4]


def test_a_window_runs_whole_multiples_of_its_pass():
    fixed = measure_windows([Iteration(SlowStart(slow_calls=0), whole_of=3)],
                            ProtocolSettings(warmup=1, repeats=2, iterations=4), "cpu",
                            mark=lambda *a, **k: None)
    assert [w.iterations for w in fixed.windows] == [6, 6]
    timed = measure_windows([Iteration(SlowStart(slow_calls=0), whole_of=7)],
                            ProtocolSettings(warmup=1, repeats=2, min_window_s=0.03), "cpu",
                            mark=lambda *a, **k: None)
    assert all(w.iterations % 7 == 0 and w.end_t - w.start_t >= 0.03 for w in timed.windows)


def test_kinds_of_window_alternate_each_repeat_and_count_only_their_timed_calls():
    counted: dict[str, int] = {"prefill": 0, "repeat": 0}
    starts: list[tuple[str, int]] = []

    def iteration(phase: str) -> Iteration:
        return Iteration(lambda: phase, phase,
                         counted=lambda result, t0, t1: counted.__setitem__(result,
                                                                           counted[result] + 1),
                         window_starts=lambda planned: starts.append((phase, planned)))

    marks: list[str] = []
    result = measure_windows([iteration("prefill"), iteration("repeat")],
                             ProtocolSettings(warmup=2, repeats=2, iterations=3), "cpu",
                             mark=lambda phase, **f: marks.append(phase))
    assert [w.phase for w in result.windows] == ["prefill", "repeat"] * 2
    assert starts == [("prefill", 3), ("repeat", 3)] * 2
    assert counted == {"prefill": 6, "repeat": 6}  # the warm-up calls are not counted
    assert marks[:2] == ["warmup", "ready"] and len(marks) == 2 + 4 * 2 + 1
    assert marks[-1] == "judge"  # once, after the last round: the runner judges the repeat ones
    assert len(result.of("repeat")) == 2


class Runner:
    """The runner's side of mark(): records the questions and answers from a list of verdicts."""

    def __init__(self, verdicts: list[bool]):
        self.verdicts, self.asked = list(verdicts), []

    def __call__(self, phase: str, **fields):
        if phase == "judge":
            self.asked.append((fields["judged"], fields["windows"]))
            return self.verdicts.pop(0)
        return None


def test_windows_are_added_until_the_runner_judges_them_enough():
    runner = Runner([False, False, True])
    result = measure_windows([Iteration(lambda: None)],
                             ProtocolSettings(warmup=1, repeats=2, iterations=2,
                                              target_ci_pct=5.0), "cpu", mark=runner)
    assert runner.asked == [("repeat", 2), ("repeat", 3), ("repeat", 4)]
    assert len(result.windows) == 4


def test_no_window_starts_that_would_not_fit_in_the_budget():
    runner = Runner([False] * 100)
    started = time.monotonic()
    result = measure_windows([Iteration(lambda: time.sleep(0.01))],
                             ProtocolSettings(warmup=1, repeats=2, min_window_s=0.1,
                                              target_ci_pct=5.0, max_run_s=0.5), "cpu",
                             mark=runner)
    spent_s = result.windows[-1].end_t - result.windows[0].start_t
    assert 2 <= len(result.windows) < 6
    assert spent_s <= 0.5 + 0.15  # one window's worth of scheduling slack on a loaded machine
    assert time.monotonic() - started < 5


def test_a_mark_that_cannot_judge_gets_the_fixed_repeats():
    result = measure_windows([Iteration(lambda: None)],
                             ProtocolSettings(warmup=1, repeats=3, iterations=2,
                                              target_ci_pct=1.0), "cpu",
                             mark=lambda *a, **k: None)
    assert len(result.windows) == 3


def test_calibration_asks_for_enough_iterations_to_fill_the_window():
    assert calibrate_iterations(0.01, 1.0) == 100
    assert calibrate_iterations(5.0, 1.0) == 1
