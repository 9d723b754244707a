"""`report` and report.md on a recorded generate session (tests/data/generate-session: the demo
LM, baseline and dynamic-int8, fixed length, 4 prompts in whole passes): the generation figures
with their intervals, what each variant was fed, and prompt perplexity named as such."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from energy_console.core.analysis.export import as_markdown, render
from energy_console.core.analysis.generation import GENERATION_COLUMNS, generation_cells
from energy_console.core.analysis.numbers import format_energy, format_latency
from energy_console.core.store.follow import read_session
from energy_console.core.store.records import RunRecord

RECORDED = Path(__file__).parent / "data" / "generate-session"


@pytest.fixture(scope="module")
def session():
    return read_session(RECORDED)


def _recorded() -> list[RunRecord]:
    with (RECORDED / "runs.csv").open(newline="") as handle:
        return [RunRecord.from_dict(row) for row in csv.DictReader(handle)]


def test_the_recorded_runs_were_fed_the_same_prompts_at_a_fixed_length():
    runs = _recorded()
    assert {(r.prompt_ids, r.prompt_tokens, r.fixed_length, r.output_tokens) for r in runs} == {
        ("0-3", runs[0].prompt_tokens, True, 8.0)}


def test_the_table_report_shows_every_generation_figure_with_its_interval(session):
    text = render(session, "table", 400)
    assert "generation: 2 runs" in text
    for header in GENERATION_COLUMNS:
        assert header in text, header
    for r in _recorded():
        assert format_energy(r.energy_j_per_output_token,
                             ci95=r.energy_j_per_output_token_ci95) in text
        assert format_latency(r.ttft_ms_p50, ci95=r.ttft_ms_p50_ci95) in text
        assert format_latency(r.tpot_ms_p50, ci95=r.tpot_ms_p50_ci95) in text
        assert format_energy(r.decode_energy_j_per_inference,
                             ci95=r.decode_energy_j_per_inference_ci95) in text
        assert "±" in format_latency(r.ttft_ms_p50, ci95=r.ttft_ms_p50_ci95)
    assert "perplexity of the prompts' own tokens" in text


def test_a_narrow_report_keeps_energy_per_output_token(session):
    text = render(session, "table", 80)
    assert "J/output token" in text and "┃ prompt ppl" not in text  # dropped from the end


def test_report_md_has_a_generation_section_with_every_run(session):
    markdown = as_markdown(session)
    section = markdown.split("## Generation", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| tiny-gpt2-random")]
    assert len(rows) == 2
    for r, row in zip(_recorded(), rows, strict=True):
        cells = generation_cells(r)
        assert row == "| " + " | ".join(cells[c] for c in GENERATION_COLUMNS) + " |"
        assert cells["length"] == "fixed" and cells["prompts"].startswith("0-3 (")
        assert cells["prompt ppl"] != "-" and cells["prefill p50"].count("±") == 1


def test_infer_sessions_have_no_generation_section():
    infer = read_session(Path(__file__).parent / "data" / "finished-session")
    assert "## Generation" not in as_markdown(infer)
    assert "generation:" not in render(infer, "table", 160)


async def test_the_trade_offs_view_shows_the_generation_figures_of_each_group(tmp_path):
    import shutil

    from energy_console.tui.app import EnergyConsoleApp
    from energy_console.tui.screens.tradeoff import TradeOffScreen
    from textual.widgets import DataTable

    session = Path(shutil.copytree(RECORDED, tmp_path / RECORDED.name))
    app = EnergyConsoleApp(attach=session, results_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(TradeOffScreen(session))
        await pilot.pause()
        table = app.screen.query_one(".generation", DataTable)
        assert [str(c.label) for c in table.ordered_columns][:3] == [
            "technique", "J/output token", "TTFT p50"]
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        for r, row in zip(_recorded(), rows, strict=True):
            cells = generation_cells(r)
            assert row[:4] == [r.technique, cells["J/output token"], cells["TTFT p50"],
                               cells["TPOT p50"]]
            assert "±" in row[2] and "±" in row[3]
