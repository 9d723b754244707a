"""The run record is the one source of runs.csv's columns, the manual's table and the views."""

from __future__ import annotations

from pathlib import Path

from energy_console.core.store.figures import RunFigures
from energy_console.core.store.records import RUN_COLUMNS, RunRecord, columns_markdown
from energy_console.tui.runs import LIVE_COLUMNS

RESULTS_DOC = Path(__file__).resolve().parents[1] / "docs" / "results.md"


def test_the_manuals_column_table_is_the_records():
    text = RESULTS_DOC.read_text(encoding="utf-8")
    table = text.split("<!-- columns:start -->")[1].split("<!-- columns:end -->")[0]
    assert table.strip() == columns_markdown()


def test_every_live_table_column_is_made_of_record_fields():
    used = {name for column in LIVE_COLUMNS for name in column.fields}
    assert used <= set(RUN_COLUMNS)


def test_every_figure_the_samples_give_has_its_column():
    columns = RunFigures.__dataclass_fields__
    shared = {name for name in columns if name in RUN_COLUMNS}
    assert shared >= {"energy_j_per_inference", "energy_j_per_inference_ci95", "energy_source",
                      "energy_fault", "avg_power_w", "latency_ms_p50"}


def test_text_cells_parse_back_by_the_fields_type():
    record = RunRecord.from_dict({"run_id": "r", "batch_size": "8", "seq_len": "",
                                  "energy_j_per_inference": "1.5e-3", "sensors": "a;b",
                                  "warnings": "", "quality_metric": ""})
    assert (record.batch_size, record.seq_len, record.energy_j_per_inference) == (8, None, 0.0015)
    assert record.sensors == ("a", "b") and record.warnings == ()
    assert record.quality_metric is None
