"""The plots of a run, on a recorded real session: its power trace, and the screen itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from energy_console.core.analysis.traces import power_traces, run_span
from energy_console.tui.app import EnergyConsoleApp
from energy_console.tui.screens.plots import PlotsScreen

RECORDED = Path(__file__).parent / "data" / "finished-session"
RUN = "tiny-bert-random__dynamic-int8__b1-s32"


def test_a_runs_power_trace_lies_within_its_span():
    start, end = run_span(RECORDED, RUN)
    traces = power_traces(RECORDED, start, end)
    assert set(traces) == {"cpu-estimate"}
    trace = traces["cpu-estimate"]
    assert len(trace.t) > 10 and start <= trace.t[0] and trace.t[-1] <= end
    assert all(0 <= w <= 20.0 + 1e-6 for w in trace.watts)  # the estimate's fixed 20 W


def test_a_missing_run_has_no_span():
    assert run_span(RECORDED, "no-such-run") is None


@pytest.mark.session  # slow tier
async def test_p_on_the_results_screen_plots_the_run_under_the_cursor(tmp_path):
    session = Path(shutil.copytree(RECORDED, tmp_path / "s"))
    app = EnergyConsoleApp(attach=session, results_root=tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.3)
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("down", "p")
        await pilot.pause()
        assert isinstance(app.screen, PlotsScreen)
        assert app.screen.run_id == RUN
        for tab in ("size", "power"):
            app.screen.query_one("TabbedContent").active = tab
            await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, PlotsScreen)
