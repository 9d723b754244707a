"""Changes carry their interval; a change inside it is marked within noise in every view."""

from __future__ import annotations

import math

import pytest
from energy_console.core.analysis.compare import (
    Change,
    machine_differences,
    relative_change,
    repeats_to_resolve,
)
from energy_console.core.analysis.numbers import format_change
from energy_console.core.analysis.report import format_report
from energy_console.core.measure.stats import t95
from energy_console.core.store.follow import read_session
from energy_console.core.store.records import RunRecord
from energy_console.core.store.session_dir import SessionWriter
from energy_console.tui.app import EnergyConsoleApp
from energy_console.tui.runs import energy_changes, live_cells
from energy_console.tui.screens.results import CHANGE_COLUMN, ResultsScreen


def test_the_interval_of_a_ratio_adds_both_relative_errors_in_quadrature_on_the_log_scale():
    change = relative_change(0.3, 0.03, 0.4, 0.02)
    assert change.fraction == pytest.approx(-0.25)
    half_width = math.hypot(0.1, 0.05)
    assert change.low == pytest.approx(0.75 * math.exp(-half_width) - 1)
    assert change.high == pytest.approx(0.75 * math.exp(half_width) - 1)
    assert not change.within_noise


def test_a_change_smaller_than_its_interval_is_within_noise():
    assert relative_change(0.41, 0.04, 0.40, 0.04).within_noise
    assert Change(-0.2, None, None).within_noise  # no interval: never called a finding
    assert format_change(Change(0.05, -0.04, 0.15)) == "~+5.0% (-4.0…+15)"
    assert format_change(Change(0.25, 0.22, 0.28)) == "+25% (+22…+28)"
    assert format_change(Change(-0.75, -0.75, -0.75)) == "-75%"  # exact (bytes)


def test_repeats_to_resolve_follow_from_the_measured_spread():
    # 3 repeats with a 95 % half-width of 20 %: relative s.d. = 0.2·√3 / t(2)
    record = RunRecord(run_id="r", repeats=3, energy_j_per_inference=1.0,
                       energy_j_per_inference_ci95=0.2)
    needed = repeats_to_resolve(record, 0.05)
    sd = 0.2 * math.sqrt(3) / t95(2)
    assert t95(needed - 1) * sd / math.sqrt(needed) <= 0.05
    assert t95(needed - 2) * sd / math.sqrt(needed - 1) > 0.05


def _run(technique: str, energy_j: float, ci95: float) -> RunRecord:
    return RunRecord(
        run_id=f"m__{technique}__b1-s8", model="demo/m", task="text-classification",
        technique=technique, device="cpu", batch_size=1, seq_len=8, repeats=3,
        energy_j_per_inference=energy_j, energy_j_per_inference_ci95=ci95,
        avg_power_w=20.0, avg_power_w_ci95=0.5, latency_ms_p50=2.0, latency_ms_p50_ci95=0.1,
        size_bytes=1000, energy_source="measured", other_cpu_load_pct=1.0,
    )


@pytest.fixture
def session(tmp_path):
    """A baseline, a variant 5 % dearer with ±20 % intervals (noise) and one 50 % cheaper."""
    writer = SessionWriter(tmp_path / "s")
    for record in (_run("baseline", 0.100, 0.02), _run("noisy", 0.105, 0.02),
                   _run("int8", 0.050, 0.002)):
        writer.record_run(record)
    writer.close()
    return tmp_path / "s"


def test_the_live_table_dims_and_marks_the_change_within_noise(session):
    records = list(read_session(session).runs)
    changes = energy_changes(records)
    cells = {r.technique: live_cells(r, changes[r.run_id]) for r in records}
    noisy, real = cells["noisy"]["energy_change"], cells["int8"]["energy_change"]
    assert noisy.plain.startswith("~+5") and noisy.style == "dim"
    assert real.plain.startswith("-50") and real.style == "green"
    assert "±" in cells["int8"]["energy"]  # energy per inference shows its interval


async def test_the_results_screen_marks_the_change_within_noise(session):
    app = EnergyConsoleApp(attach=session, results_root=session.parent)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(ResultsScreen(session))
        await pilot.pause()
        table = app.screen.query_one("DataTable")
        cell = {key.value: str(table.get_cell(key, CHANGE_COLUMN)) for key in table.rows}
        assert cell["m__noisy__b1-s8"].startswith("~+5")
        assert cell["m__int8__b1-s8"].startswith("-50")


def test_the_report_marks_the_change_within_noise(session):
    lines = format_report(read_session(session)).splitlines()
    noisy = next(line for line in lines if " noisy " in line)
    int8 = next(line for line in lines if " int8 " in line)
    assert "~+5.0% (" in noisy
    assert "-50% (" in int8 and "~-50" not in int8
    assert any("Repeats for a 95 % interval" in line for line in lines)


def test_infer_and_generate_runs_of_one_model_each_compare_with_their_own_baseline():
    from energy_console.core.analysis.compare import changes_vs_baseline

    def run(technique, workload, energy_j, max_new=None):
        return RunRecord(run_id=f"{workload}-{technique}", model="demo/gpt2", technique=technique,
                         device="cpu", batch_size=1, seq_len=64, workload=workload,
                         max_new_tokens=max_new, energy_j_per_inference=energy_j,
                         energy_j_per_inference_ci95=energy_j / 100)

    records = [run("baseline", "infer", 0.1), run("int8", "infer", 0.05),
               run("baseline", "generate", 1.0, 16), run("int8", "generate", 2.0, 16)]
    changes = changes_vs_baseline(records)
    assert changes["infer-int8"]["energy_j_per_inference"].fraction == pytest.approx(-0.5)
    assert changes["generate-int8"]["energy_j_per_inference"].fraction == pytest.approx(1.0)


def test_two_runs_on_different_boxes_say_how_the_machines_differ():
    a = RunRecord(run_id="r", node="box-a", gpu_name="NVIDIA H100 80GB HBM3",
                  gpu_driver="550.54.15", gpu_power_limit_w=700.0, gpu_sm_clock_mhz=1980,
                  gpu_temperature_c=41.0)
    b = RunRecord(run_id="r", node="box-b", gpu_name="NVIDIA A100-SXM4-80GB",
                  gpu_driver="550.54.15", gpu_power_limit_w=400.0, gpu_sm_clock_mhz=1950,
                  gpu_temperature_c=43.0)
    assert machine_differences(a, b) == [
        "node: box-a -> box-b", "gpu_name: NVIDIA H100 80GB HBM3 -> NVIDIA A100-SXM4-80GB",
        "gpu_power_limit_w: 700.0 -> 400.0"]  # clocks and temperature within their tolerance
    assert machine_differences(a, a) == []
