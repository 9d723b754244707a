"""bench/gpu_acceptance.py: its verdicts on synthetic sessions, its evidence on the fake NVML, and
its clean skip where there is no CUDA device (here, always). The script runs as a script once (a
verdict); its other commands run through its main() in this process."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from energy_console.core.store import events as ev
from energy_console.core.store.records import RunRecord
from energy_console.core.store.session_dir import SessionWriter, write_json

import tests.fakes.pynvml as fake_nvml
from tests.fakes.pynvml import FakeGpu
from tests.session_helpers import write_plain_torch_profile

pytestmark = pytest.mark.session  # slow tier: the acceptance script in subprocesses

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gpu_acceptance.py"
_spec = importlib.util.spec_from_file_location("gpu_acceptance", SCRIPT)
assert _spec is not None and _spec.loader is not None
acceptance = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("gpu_acceptance", acceptance)  # dataclasses look their module up
_spec.loader.exec_module(acceptance)

T0 = 1_000.0
GPU_SENSOR = {"name": "nvml:0", "kind": "gpu", "measured": True, "method": "counter",
              "detail": "NVIDIA H100 80GB HBM3: total-energy counter (mJ)",
              "update_period_s": 0.1, "device_index": 0}
HOST_SENSOR = {"name": "cpu-estimate", "kind": "cpu", "measured": False, "method": "estimate",
               "detail": "linear model", "update_period_s": None, "device_index": None}


def record(technique: str, status: str = "finished", reason: str = "", **fields) -> RunRecord:
    base = {"run_id": f"tiny-bert-random__{technique}__b8-s128", "model": "demo/tiny-bert-random",
            "technique": technique, "device": "cuda:0", "batch_size": 8, "seq_len": 128,
            "status": status, "reason": reason}
    if status == "finished":
        base.update(energy_j_per_inference=0.01, sensors=("cpu-estimate", "nvml:0"),
                    energy_source="measured", peak_mem_mb=42.0)
    return RunRecord(**{**base, **fields})


def write_session(path: Path, records: list[RunRecord], sensors=(GPU_SENSOR, HOST_SENSOR),
                  memory: list[tuple[str, str, float]] | None = None,
                  disagreement_pct: float = 1.2) -> Path:
    """A finished session as the runner writes it, with the script's evidence beside it."""
    writer = SessionWriter(path)
    write_json(path / "session.json", {"sensors": list(sensors), "total_runs": len(records),
                                       "status": "completed", "started_at": 1.8e9})
    writer.append_event(ev.SessionStarted(session_id=path.name, profile_name="gpu-acceptance",
                                          total_runs=len(records), runner_pid=0,
                                          sensors=list(sensors), missing_sensors=[], t=T0))
    for index, rec in enumerate(records):
        writer.append_event(ev.RunStarted(run_id=rec.run_id, index=index, total=len(records),
                                          model=rec.model, technique=rec.technique,
                                          batch_size=8, seq_len=128, resolution=None, t=T0 + 1))
        writer.record_run(rec)
        if rec.finished:
            writer.append_event(ev.RunFinished(run_id=rec.run_id, row=rec.as_dict(), t=T0 + 2))
        else:
            writer.append_event(ev.RunSkipped(run_id=rec.run_id, reason=rec.reason, t=T0 + 2))
    writer.append_event(ev.SessionFinished(status="completed", finished=len(records),
                                           skipped=0, failed=0, t=T0 + 3))
    writer.close()
    if memory is None:
        memory = [("before-session", "", 512.0)] + [("after-run", r.run_id, 514.0)
                                                     for r in records]
    with (path / acceptance.MEMORY_FILE).open("w", newline="") as handle:
        csv.writer(handle).writerows([("when", "run_id", "used_mib"), *memory])
    counter_j = 600.0
    (path / acceptance.CROSS_CHECK_FILE).write_text(json.dumps({
        "bound_pct": 5.0, "load": "matmul", "checks": [{
            "sensor": "nvml:0", "window_s": 2.0, "counter_j": counter_j,
            "power_j": counter_j * (1 + disagreement_pct / 100),
            "power_source": "instantaneous power field", "under_load": True,
            "disagreement_pct": disagreement_pct}]}))
    return path


def by_check(verdicts) -> dict[str, object]:
    return {v.check: v for v in verdicts}


GOOD = [record("baseline"), record("fp16"),
        record("sparse-2-4", "skipped", "needs compute capability >= 8.0, this GPU has 7.5")]


def test_a_good_session_is_accepted_and_the_table_is_written(tmp_path):
    session = write_session(tmp_path / "s", GOOD)

    verdicts = acceptance.judge(session, gpu=0)
    text = acceptance.write_verdicts(session, verdicts, acceptance._title(session, 0))

    assert all(v.ok for v in verdicts), text
    checks = by_check(verdicts)
    assert "skipped: needs compute capability" in checks[f"run {GOOD[2].run_id}"].detail
    assert "peak_mem 42.0 MB" in checks[f"run {GOOD[0].run_id}"].detail
    assert "+1.20 % (bound ±5 %)" in checks["counter vs power"].detail
    assert "at most +2 MiB" in checks["cuda memory back to baseline"].detail
    assert "2 finished runs charged with it, all measured" in checks["gpu energy measured"].detail
    assert (session / "acceptance.md").read_text() == text
    assert text.startswith("# GPU acceptance, NVIDIA H100 80GB HBM3, 2027-01-15")
    assert text.rstrip().endswith("Accepted: every check passed.")
    assert json.loads((session / "acceptance.json").read_text())["accepted"] is True


@pytest.mark.parametrize("case, failing", [
    ("failed run", "run tiny-bert-random__bf16__b8-s128"),
    ("skipped without a reason", "run tiny-bert-random__bf16__b8-s128"),
    ("estimated energy", "gpu energy measured"),
    ("no gpu counter", "gpu energy measured"),
    ("cross-check out of bound", "counter vs power"),
    ("memory left behind", "cuda memory back to baseline"),
])
def test_each_broken_promise_fails_its_check(tmp_path, case, failing):
    records = list(GOOD)
    sensors: tuple[dict, ...] = (GPU_SENSOR, HOST_SENSOR)
    memory, pct = None, 1.2
    if case == "failed run":
        records.append(record("bf16", "failed", "CUDA error: an illegal memory access"))
    elif case == "skipped without a reason":
        records.append(record("bf16", "skipped", ""))
    elif case == "estimated energy":
        records.append(record("bf16", energy_source="estimated", sensors=("cpu-estimate",)))
    elif case == "no gpu counter":
        sensors = ({**GPU_SENSOR, "method": "polled-power"}, HOST_SENSOR)
    elif case == "cross-check out of bound":
        pct = -7.5
    else:
        memory = [("before-session", "", 512.0), ("after-run", GOOD[0].run_id, 512.0),
                  ("after-run", GOOD[1].run_id, 1800.0)]

    verdicts = acceptance.judge(write_session(tmp_path / "s", records, sensors, memory, pct), 0)

    failed = [v.check for v in verdicts if not v.ok]
    assert failing in failed, failed
    assert "NOT accepted" in acceptance.format_verdicts(verdicts, "t")
    if case == "memory left behind":
        assert f"{GOOD[1].run_id} +1288 MiB" in by_check(verdicts)[failing].detail


def test_the_verdict_command_rejudges_a_session(tmp_path):
    session = write_session(tmp_path / "s", GOOD, disagreement_pct=9.0)

    result = subprocess.run([sys.executable, str(SCRIPT), "--verdict", str(session)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "| counter vs power" in result.stdout and "FAIL" in result.stdout
    assert (session / "acceptance.md").exists()


def test_without_cuda_it_skips_with_a_clear_message(tmp_path, capsys):
    code = acceptance.main(["--results-dir", str(tmp_path)])  # in this process: no CUDA either

    assert code == acceptance.EXIT_SKIPPED, capsys.readouterr()
    assert "SKIPPED: no CUDA device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_the_profile_covers_every_cuda_technique_and_plans(tmp_path):
    from energy_console.core.session.plan import expand
    from energy_console.core.session.profile_check import load_profile

    (tmp_path / "p.yaml").write_text(acceptance.profile_text("cuda:0"))
    specs = expand(load_profile(tmp_path / "p.yaml"))

    techniques = {s.technique.slug for s in specs}
    for name in ("baseline", "fp16", "bf16", "dynamic-int8", "weight-int8", "weight-int4",
                 "weight-fp8", "sparse-2-4", "structured-prune"):
        assert name in techniques
    assert any("+" in t for t in techniques)  # the chain
    assert len(specs) == 40 and {s.device for s in specs} == {"cuda:0"}


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    return fake_nvml


def test_the_cross_check_evidence_on_the_fake_nvml(fake, tmp_path):
    """No CUDA here: the GPU is checked idle, and the verdict says so."""
    fake.configure(gpus=[FakeGpu(power_w=150.0)])
    session = write_session(tmp_path / "s", GOOD)

    acceptance.record_cross_check(session, 0, seconds=0.8)

    verdict = acceptance._cross_check_verdict(session, "nvml:0")
    assert verdict.ok, verdict.detail
    assert "idle (torch" in verdict.detail and "sees no CUDA device" in verdict.detail
    data = json.loads((session / acceptance.CROSS_CHECK_FILE).read_text())
    assert data["checks"][0]["counter_j"] == pytest.approx(150.0 * data["checks"][0]["window_s"],
                                                           rel=0.05)


@pytest.mark.session
def test_memory_is_read_when_each_run_ends(fake, tmp_path):
    """The real runner on a two-run CPU profile; the watcher reads the fake GPU's memory."""
    fake.configure(gpus=[FakeGpu(memory_used_mib=700)])
    session = tmp_path / "s"

    code = acceptance.run_and_watch_memory(session, write_plain_torch_profile(tmp_path), "cpu", 0)

    assert code == 0
    with (session / acceptance.MEMORY_FILE).open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["when"] for r in rows] == ["before-session", "after-run", "after-run"]
    assert [r["run_id"] for r in rows[1:]] == ["PlainCNN__baseline__b1-r32",
                                               "PlainCNN__dynamic-int8__b1-r32"]
    assert {float(r["used_mib"]) for r in rows} == {700.0}
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == ""  # the runner saw the bare host
