import pytest
from energy_console.core.analysis.compare import changes_vs_baseline
from energy_console.core.analysis.numbers import format_energy, format_size
from energy_console.core.store.records import RunRecord


def _row(run_id, technique, energy, size, batch=1):
    return RunRecord.from_dict({
            "run_id": run_id, "model": "m", "device": "cpu", "batch_size": batch, "seq_len": 8,
            "resolution": "", "technique": technique, "status": "finished",
            "energy_j_per_inference": energy, "avg_power_w": 10, "latency_ms_p50": 2,
            "size_bytes": size})


def test_changes_are_relative_to_the_same_models_baseline_at_the_same_input_size():
    rows = [_row("b1", "baseline", "0.4", "1000"), _row("q1", "dynamic-int8", "0.3", "250"),
            _row("b8", "baseline", "2.0", "1000", batch=8), _row("q8", "bf16", "1.0", "500", 8)]
    changes = changes_vs_baseline(rows)
    assert changes["q1"]["energy_j_per_inference"].fraction == pytest.approx(-0.25)
    assert changes["q1"]["size_bytes"].fraction == pytest.approx(-0.75)
    assert changes["q8"]["energy_j_per_inference"].fraction == pytest.approx(-0.5)
    assert changes["b1"]["energy_j_per_inference"] is None


def test_a_run_without_a_finished_baseline_has_no_change():
    rows = [_row("q1", "dynamic-int8", "0.3", "250")]
    assert changes_vs_baseline(rows)["q1"]["energy_j_per_inference"] is None


def test_energies_and_sizes_read_in_human_units():
    assert format_energy(0.0123) == "12.3 mJ"
    assert format_energy(2.5) == "2.5 J"
    assert format_energy(None) == "-"
    assert format_energy(0.0123, ci95=0.00042) == "12.3 ±0.42 mJ"
    assert format_size(2457512) == "2.46 MB"


def _finished(run_id, technique, energy, metric, value, model="m"):
    return RunRecord.from_dict({
            "run_id": run_id, "model": model, "device": "cpu", "batch_size": 1, "seq_len": 8,
            "technique": technique, "status": "finished", "energy_j_per_inference": energy,
            "quality_metric": metric, "quality_value": value})


def test_runs_frame_types_the_numeric_columns(tmp_path):
    from energy_console.core.analysis.report import runs_frame
    from energy_console.core.store.session_dir import SessionWriter

    writer = SessionWriter(tmp_path)
    writer.record_run(_finished("a", "baseline", 0.5, "accuracy", 0.9))
    writer.record_run(RunRecord(run_id="b", status="failed", reason="boom"))
    writer.close()
    frame = runs_frame(tmp_path)
    assert frame["energy_j_per_inference"].tolist()[0] == 0.5
    assert frame["energy_j_per_inference"].isna().tolist() == [False, True]
    assert frame["reason"].tolist() == ["", "boom"]


def test_the_pareto_front_keeps_runs_nothing_beats_on_energy_and_quality():
    from energy_console.core.analysis.findings import findings, pareto_front

    def scored(run_id, technique, energy, metric, value, model="m"):
        return RunRecord.from_dict({**_finished(run_id, technique, energy, metric, value,
                                                model).as_dict(),
                                    "energy_j_per_inference_ci95": energy / 100,
                                    "quality_samples": 10_000})

    runs = [
        scored("base", "baseline", 1.0, "accuracy", 0.90),
        scored("int8", "dynamic-int8", 0.5, "accuracy", 0.895),  # cheaper, nearly as good
        scored("bf16", "bf16", 2.0, "accuracy", 0.90),           # dearer, no better
        scored("prune", "magnitude-prune", 0.4, "accuracy", 0.5),  # cheapest, much worse
        scored("lm", "baseline", 1.0, "perplexity", 20.0, model="lm"),
        scored("lm-q", "dynamic-int8", 1.5, "perplexity", 25.0, model="lm"),  # dearer
    ]
    # base's 0.005 accuracy edge over int8 is inside its uncertainty over 10,000 samples: int8,
    # cheaper beyond noise, beats it
    assert [r.run_id for r in pareto_front(runs[:4])] == ["prune", "int8"]
    assert [r.run_id for r in pareto_front(runs[4:])] == ["lm"]
    m, lm = findings(runs)
    assert (m.least_energy.winner.run_id, m.best_quality.leader.run_id) == ("prune", "base")
    assert m.best_quality.winner is None  # base and bf16 tie on accuracy
    assert m.best_trade_off.winner.run_id == "int8"  # within 1 % of the baseline's accuracy
    assert lm.best_quality.winner is None  # perplexity has no known interval: no winner
