"""Messages name their run exactly (its workload and its input, new tokens included), and a reason
many runs share is said once."""

from __future__ import annotations

from pathlib import Path

from energy_console.core.analysis.report import report_notes
from energy_console.core.store.events import Notice, RunStarted
from energy_console.core.store.records import RunRecord
from energy_console.core.store.session_model import SessionModel


def test_a_warning_names_the_generate_run_it_belongs_to(tmp_path: Path):
    model = SessionModel(tmp_path)
    for workload, new in (("infer", None), ("generate", 16)):
        model.add_event(RunStarted(run_id=f"lm-{workload}", index=0, total=2,
                                   model="demo/tiny-gpt2-random", technique="baseline",
                                   batch_size=1, seq_len=16, resolution=None,
                                   max_new_tokens=new, workload=workload))
    model.add_event(Notice(level="warning", message="repeats disagree by 40%",
                           run_id="lm-generate"))
    assert model.log[-1] == ("warning: tiny-gpt2-random · baseline · generate · b1-s16-n16: "
                             "repeats disagree by 40%")


def test_a_reason_many_runs_share_is_said_once():
    offline = "hub model not in the cache and HF_HUB_OFFLINE is set: download it first"
    records = [RunRecord(run_id=f"m__{t}", technique=t, status="skipped", reason=offline)
               for t in ("baseline", "bf16", "dynamic-int8")]
    records.append(RunRecord(run_id="n__baseline", status="failed", reason="out of memory"))
    notes = report_notes(records)
    assert sum(offline in line for line in notes) == 1
    assert f"  3 runs skipped: {offline} (m__baseline, m__bf16, m__dynamic-int8)" in notes
    assert "  n__baseline (failed): out of memory" in notes
