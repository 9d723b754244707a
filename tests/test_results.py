import csv

import pytest
from energy_console.core.store import events as ev
from energy_console.core.store.control import ControlReader, send_control
from energy_console.core.store.records import RunRecord
from energy_console.core.store.session_dir import SessionWriter, read_events, read_runs


def test_every_event_type_survives_the_json_round_trip(tmp_path):
    samples = [
        ev.SessionStarted(session_id="s", profile_name="p", total_runs=2, runner_pid=1,
                          sensors=[{"name": "cpu-estimate"}], missing_sensors=[]),
        ev.Notice(level="warning", message="m"),
        ev.IdleBaseline(duration_s=1.0, power_w={"a": 2.0}),
        ev.RunStarted(run_id="r", index=0, total=2, model="m", technique="t", batch_size=1,
                      seq_len=8, resolution=None, worker_pid=5, node="box-a", gpu_index=2),
        ev.WorkerEnded(run_id="r", node="box-a", gpu_index=2),
        ev.PhaseChanged(run_id="r", phase="repeat", repeat=1, repeats=3, iterations=10),
        ev.RunFinished(run_id="r", row={"run_id": "r", "energy_j_per_inference": 0.5}),
        ev.RunSkipped(run_id="r", reason="why"),
        ev.RunFailed(run_id="r", reason="why"),
        ev.SessionFinished(status="completed", finished=1, skipped=0, failed=1),
    ]
    assert {type(e) for e in samples} == set(ev.EVENT_TYPES.values())
    writer = SessionWriter(tmp_path)
    for event in samples:
        writer.append_event(event)
    writer.close()
    assert read_events(tmp_path) == samples


def test_runs_csv_keeps_one_row_per_run_and_replaces_a_rerun(tmp_path):
    writer = SessionWriter(tmp_path)
    writer.record_run(RunRecord(run_id="a", status="failed", reason="x"))
    writer.record_run(RunRecord(run_id="b", status="finished", energy_j_per_inference=0.25))
    writer.record_run(RunRecord(run_id="a", status="finished", energy_j_per_inference=0.5))
    with (tmp_path / "runs.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["run_id"], r["status"]) for r in rows] == [("a", "finished"), ("b", "finished")]
    assert float(rows[0]["energy_j_per_inference"]) == 0.5
    # a writer reopening the session keeps what is there
    SessionWriter(tmp_path).record_run(RunRecord(run_id="c", status="skipped"))
    assert [r.run_id for r in read_runs(tmp_path)] == ["a", "b", "c"]


def test_runs_csv_reads_back_as_the_records_written(tmp_path):
    written = RunRecord(
        run_id="m__dynamic-int8__b4-r64", model="path/to/m", task="image-classification",
        technique="dynamic-int8", device="cpu", batch_size=4, resolution=64, iterations=120,
        repeats=3, energy_j_per_inference=0.0123456, energy_j_per_inference_ci95=0.001,
        size_bytes=1_234_567, quality_metric="accuracy", quality_value=0.5,
        energy_source="measured", sensors=("rapl:package-0", "rapl:dram-0"),
        warnings=("repeats disagree by 20%",),
    )
    writer = SessionWriter(tmp_path)
    writer.record_run(written)
    (read,) = read_runs(tmp_path)
    assert read == written
    assert read.input_size == "b4-r64"
    with (tmp_path / "runs.csv").open() as f:
        assert next(csv.reader(f)) == list(RunRecord.__dataclass_fields__)


def test_a_misspelt_column_is_an_error_not_a_silent_drop():
    with pytest.raises(TypeError, match="energy_j_per_inferense"):
        RunRecord(run_id="a", energy_j_per_inferense=0.1)


def test_a_session_from_a_newer_version_still_reads(tmp_path):
    (tmp_path / "runs.csv").write_text(
        "run_id,status,future_column,energy_j_per_inference\na,finished,x,0.5\n")
    (record,) = read_runs(tmp_path)
    assert (record.run_id, record.status, record.energy_j_per_inference) == ("a", "finished", 0.5)


def test_control_commands_are_read_once_and_only_when_complete(tmp_path):
    reader = ControlReader(tmp_path)
    assert list(reader.poll()) == []
    send_control(tmp_path, "cancel run-1")
    with (tmp_path / "control").open("a") as f:
        f.write("sto")  # a view still writing
    assert list(reader.poll()) == ["cancel run-1"]
    with (tmp_path / "control").open("a") as f:
        f.write("p\n")
    assert list(reader.poll()) == ["stop"]
    assert list(reader.poll()) == []
