"""Messages name their run exactly (its workload and its input, new tokens included), and a reason
many runs share is said once."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
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


def test_the_eta_learns_each_workloads_run_time_and_says_how_rough(tmp_path: Path):
    """Two infer runs of 2 s and 4 s timed, one generate run of 30 s: 1 infer and 1 generate
    left take 3 + 30 s, ±47 % from the spread of the four runs."""
    from energy_console.core.store.events import RunFinished, SessionStarted
    from energy_console.tui.format import eta

    model = SessionModel(tmp_path)
    model.add_event(SessionStarted(t=0.0, session_id="s", profile_name="p", total_runs=6,
                                   runner_pid=1, sensors=[], missing_sensors=[],
                                   runs_by_workload={"infer": 3, "generate": 3}))
    t = 0.0
    for i, (workload, seconds) in enumerate((("infer", 2.0), ("infer", 4.0),
                                              ("generate", 30.0), ("generate", 30.0))):
        model.add_event(RunStarted(t=t, run_id=f"r{i}", index=i, total=6, model="demo/m",
                                   technique="baseline", batch_size=1, seq_len=8,
                                   resolution=None, workload=workload))
        t += seconds
        model.add_event(RunFinished(t=t, run_id=f"r{i}", row={"run_id": f"r{i}"}))
    snapshot = model.snapshot(now=t, runner_alive=True)
    assert snapshot.eta_s == pytest.approx(3.0 + 30.0)
    assert snapshot.eta_rough_pct == pytest.approx(
        100 * statistics.stdev([2, 4, 30, 30]) / statistics.fmean([2, 4, 30, 30]))
    assert eta(33.0, 47.4) == "33s ±47%" and eta(33.0, None) == "~33s"
