"""What the console concludes is true of the figures: on synthetic sessions with known figures, a
difference inside noise never makes a winner in any view or format, one outside noise does;
ratio intervals stay above -100 %, energies and plot axes above zero; each variant is compared
with its own runtime's baseline."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from energy_console.core.analysis.compare import changes_vs_baseline, relative_change
from energy_console.core.analysis.export import as_json, as_markdown, draw_scatter
from energy_console.core.analysis.findings import findings, pareto_front
from energy_console.core.analysis.numbers import (
    format_change,
    format_delta,
    format_energy,
    format_latency,
)
from energy_console.core.analysis.plot_data import scatter
from energy_console.core.analysis.report import format_comparison, format_report
from energy_console.core.store.follow import read_session
from energy_console.core.store.records import RunRecord
from energy_console.core.store.session_dir import SessionWriter
from energy_console.tui.app import EnergyConsoleApp
from energy_console.tui.screens.tradeoff import TradeOffScreen

INDISTINGUISHABLE = "indistinguishable at this precision"


def run(technique: str, energy_j: float, ci95: float | None, accuracy: float = 0.9,
        samples: int = 1000, runtime: str = "torch", model: str = "demo/m") -> RunRecord:
    return RunRecord(
        run_id=f"m__{technique}", model=model, task="text-classification", technique=technique,
        device="cpu", runtime=runtime, batch_size=1, seq_len=8, repeats=3,
        energy_j_per_inference=energy_j, energy_j_per_inference_ci95=ci95, avg_power_w=20.0,
        avg_power_w_ci95=0.5, latency_ms_p50=2.0, latency_ms_p50_ci95=0.1, size_bytes=1000,
        quality_metric="accuracy", quality_value=accuracy, quality_samples=samples,
        energy_source="measured")


def write(folder: Path, records: list[RunRecord]) -> Path:
    writer = SessionWriter(folder)
    for record in records:
        writer.record_run(record)
    writer.close()
    return folder


# A variant 5 % cheaper with ±20 % intervals and no better quality: nothing to conclude.
NOISY = [run("baseline", 0.100, 0.02), run("noisy", 0.095, 0.02, accuracy=0.899)]
# A variant 50 % cheaper with ±2-4 % intervals at the same quality: a real saving.
CLEAR = [run("baseline", 0.100, 0.002), run("int8", 0.050, 0.002, accuracy=0.899)]


def test_a_difference_inside_noise_makes_no_winner():
    group = findings(NOISY)[0]
    for ranking in (group.least_energy, group.best_quality, group.best_trade_off):
        assert ranking.winner is None, ranking
        assert {r.technique for r in ranking.tied} == {"baseline", "noisy"}
    assert group.least_energy.needed and group.least_energy.needed > 3  # repeats to separate
    assert [r.technique for r in pareto_front(NOISY)] == ["noisy", "baseline"]  # neither beaten


def test_a_difference_outside_noise_makes_a_winner():
    group = findings(CLEAR)[0]
    assert group.least_energy.winner.technique == "int8"
    assert group.best_trade_off.winner.technique == "int8"
    assert group.best_quality.winner is None  # 0.900 vs 0.899 over 1000 samples: noise
    assert [r.technique for r in group.pareto] == ["int8"]  # cheaper beyond noise, no worse


def test_a_quality_edge_far_below_its_uncertainty_ranks_nothing():
    """bf16's 1074.18 against 1074.25 perplexity: no interval is known, so no best quality."""
    records = [run("baseline", 0.1, 0.01), run("bf16", 0.4, 0.01)]
    records = [RunRecord.from_dict({**r.as_dict(), "quality_metric": "perplexity",
                                    "quality_value": v})
               for r, v in zip(records, (1074.25, 1074.18), strict=True)]
    group = findings(records)[0]
    assert group.best_quality.winner is None
    assert [r.technique for r in group.pareto] == ["baseline"]  # bf16 costs more, no better


def test_random_weights_are_compared_by_fidelity():
    note = ("random weights: quality figures are only meaningful as fidelity",)
    records = [RunRecord.from_dict({**r.as_dict(), "warnings": note, "fidelity_top1": f})
               for r, f in zip(CLEAR, (1.0, 0.5), strict=True)]
    group = findings(records)[0]
    assert group.quality.fidelity and group.quality.column == "fidelity_top1"
    assert group.best_quality.winner.technique == "baseline"  # 1.0 vs 0.5 over 1000 samples


def _texts(folder: Path) -> dict[str, str]:
    session = read_session(folder)
    return {"report": format_report(session, width=200), "markdown": as_markdown(session),
            "json": as_json(list(session.runs), session.info)}


def test_no_format_names_a_winner_within_noise(tmp_path):
    texts = _texts(write(tmp_path / "noisy", NOISY))
    assert f"least energy per inference: {INDISTINGUISHABLE}: baseline, noisy" in texts["report"]
    assert "**" not in texts["markdown"] and INDISTINGUISHABLE in texts["markdown"]
    groups = json.loads(texts["json"])["findings"]["groups"]
    assert all(groups[0][k]["winner"] is None
               for k in ("least_energy", "best_quality", "best_trade_off"))
    assert groups[0]["least_energy"]["indistinguishable"] == ["m__baseline", "m__noisy"]


def test_every_format_names_a_winner_outside_noise(tmp_path):
    texts = _texts(write(tmp_path / "clear", CLEAR))
    assert "least energy per inference: int8 (" in texts["report"]
    assert "least energy per inference: **int8**" in texts["markdown"]
    groups = json.loads(texts["json"])["findings"]["groups"]
    assert groups[0]["least_energy"]["winner"] == "m__int8"


def test_json_findings_say_what_the_text_report_says(tmp_path):
    """Issue 25's point 6: the JSON findings are the text report's sentences, as data."""
    texts = _texts(write(tmp_path / "clear", CLEAR))
    findings_data = json.loads(texts["json"])["findings"]
    for group in findings_data["groups"]:
        for key in ("least_energy", "smallest", "best_quality", "best_trade_off"):
            assert group[key]["text"] in texts["report"], group[key]["text"]
        assert group["pareto_text"] in texts["report"]


async def test_the_trade_offs_view_names_no_winner_within_noise(tmp_path):
    folder = write(tmp_path / "noisy", NOISY)
    app = EnergyConsoleApp(attach=folder, results_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.push_screen(TradeOffScreen(folder))
        await pilot.pause()
        text = "\n".join(str(s.render()) for s in app.screen.query(".findings"))
    assert f"least energy per inference: {INDISTINGUISHABLE}" in text
    assert "least energy per inference: noisy" not in text


def test_compare_marks_every_figure_within_noise(tmp_path):
    a = read_session(write(tmp_path / "a", NOISY))
    b = read_session(write(tmp_path / "b", [run("baseline", 0.101, 0.02),
                                            run("noisy", 0.090, 0.02)]))
    text = format_comparison(a, b, width=200)
    rows = [line for line in text.splitlines() if "noisy" in line or "baseline" in line]
    assert rows and all(line.count("~") >= 3 for line in rows)  # ΔE, Δt and power Δ


def test_a_ratio_interval_never_passes_minus_100_percent():
    rng = random.Random(7)
    for _ in range(500):
        value, reference = rng.uniform(1e-3, 10), rng.uniform(1e-3, 10)
        change = relative_change(value, rng.uniform(0, 5) * value, reference,
                                 rng.uniform(0, 5) * reference)
        assert -1.0 < change.low <= change.fraction <= change.high
    wide = relative_change(4.49, 7.8, 5.5, 1.0)  # the issue's `ΔE ~-19 ±147%`
    assert wide.within_noise and wide.low > -1.0
    assert format_change(wide).startswith("~-18% (-")


def test_figures_read_without_e_notation_and_never_below_zero():
    assert format_energy(4.49, ci95=7.8) == "4.49 [0–12.3] J"
    assert format_energy(1.85, ci95=0.2) == "1.85 ±0.2 J"
    assert format_latency(1320.0) == "1.32 s"
    assert format_delta(6.319e-05) == "+0.0000632"
    assert format_change(relative_change(1.0019, 0.0008, 1.0, 0.0008)) == "+0.19% (+0.08…+0.30)"


def test_no_plot_axis_goes_below_zero():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [run("baseline", 1.85, 4.6), run("int8", 0.5, 0.9)]  # intervals wider than values
    group = findings(records)[0]
    for kind in ("quality", "size"):
        data = scatter(group, kind)
        assert data.x_min == 0 and all(p.x_low >= 0 and p.y_low >= 0 for p in data.points)
        figure = draw_scatter(data, plt)
        axes = figure.axes[0]
        assert axes.get_xlim()[0] >= 0 and axes.get_ylim()[0] >= 0
        plt.close(figure)


def test_onnx_variants_are_compared_with_onnx_fp32():
    records = [run("baseline", 0.100, 0.001), run("onnx-fp32", 0.050, 0.001, runtime="onnxruntime"),
               run("onnx-qdq-int8", 0.047, 0.001, runtime="onnxruntime")]
    changes = changes_vs_baseline(records)
    assert changes["m__onnx-qdq-int8"]["energy_j_per_inference"].fraction == \
        pytest.approx(-0.06)  # against onnx-fp32, not -53 % against torch
    assert changes["m__onnx-fp32"]["energy_j_per_inference"] is None  # its runtime's baseline
    text = "\n".join(findings_lines(records))
    assert "changes against baseline (torch), onnx-fp32 (onnxruntime)" in text


def test_a_missing_runtime_baseline_is_said_not_replaced():
    records = [run("baseline", 0.100, 0.001),
               run("onnx-qdq-int8", 0.047, 0.001, runtime="onnxruntime")]
    assert changes_vs_baseline(records)["m__onnx-qdq-int8"]["energy_j_per_inference"] is None
    text = "\n".join(findings_lines(records))
    assert "m__onnx-qdq-int8: no finished onnx-fp32 run" in text


def findings_lines(records: list[RunRecord]) -> list[str]:
    from energy_console.core.analysis.findings_text import findings_notes

    return findings_notes(records, changes_vs_baseline(records))


def test_repeats_to_separate_shrink_the_interval_below_the_gap():
    from energy_console.core.analysis.findings import repeats_to_separate
    from energy_console.core.measure.stats import t95

    a, b = NOISY
    needed = repeats_to_separate(b, a)
    sd = math.hypot(*(r.energy_j_per_inference_ci95 * math.sqrt(3) / t95(2)
                      / r.energy_j_per_inference for r in (a, b)))
    gap = math.log(a.energy_j_per_inference / b.energy_j_per_inference)
    assert 1.96 * sd / math.sqrt(needed) < gap * 1.01
    assert t95(min(needed - 2, 29)) * sd / math.sqrt(needed - 1) >= gap * 0.99


def test_perplexity_differences_are_judged_against_their_bootstrap_interval():
    from energy_console.core.quality.metrics import TokenScores

    scores = TokenScores()
    scores.sequences = [(20.0, 10), (25.0, 10), (22.0, 10), (30.0, 10)]  # NLL sums, tokens
    scores.nll_sum, scores.predicted = 97.0, 40
    half_width = scores.perplexity_ci95()
    assert 0 < half_width < scores.perplexity()

    def lm(technique, energy, ppl, ci):
        return RunRecord.from_dict({**run(technique, energy, 0.001).as_dict(),
                                    "quality_metric": "perplexity", "quality_value": ppl,
                                    "quality_value_ci95": ci})

    close = findings([lm("baseline", 0.1, 1074.25, 3.0), lm("bf16", 0.4, 1074.18, 3.0)])[0]
    assert close.best_quality.winner is None  # 0.07 apart, ±3 each
    apart = findings([lm("baseline", 0.1, 20.0, 0.5), lm("int4", 0.05, 25.0, 0.5)])[0]
    assert apart.best_quality.winner.technique == "baseline"  # lower perplexity, beyond noise


def test_a_single_repeat_ranks_nothing_and_says_why():
    records = [run("baseline", 0.100, None), run("int8", 0.010, None)]  # no interval
    ranking = findings(records)[0].least_energy
    assert ranking.winner is None and "measure at least 2" in ranking.reason
