"""A session recorded before core/ was split into layers still opens: `report` in its table and
JSON formats reads every run of it as recorded (the console's views of it are the snapshots in
tests/test_snapshots.py)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RECORDED = Path(__file__).parent / "data" / "finished-session"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def session(tmp_path) -> Path:
    return Path(shutil.copytree(RECORDED, tmp_path / RECORDED.name))


def _report(session: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "energy_console.core.cli", "report",
                           str(session), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={"COLUMNS": "160", "PATH": "/usr/bin",
                                            "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def _recorded_rows() -> list[dict[str, str]]:
    with (RECORDED / "runs.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_json_report_of_a_session_recorded_before_the_layers_holds_its_rows(session):
    rows = json.loads(_report(session, "--format", "json"))["runs"]
    recorded = _recorded_rows()
    assert [r["run_id"] for r in rows] == [r["run_id"] for r in recorded]
    for row, old in zip(rows, recorded, strict=True):
        assert row["status"] == old["status"]
        if old["energy_j_per_inference"]:
            assert row["energy_j_per_inference"] == pytest.approx(
                float(old["energy_j_per_inference"]))


def test_the_table_report_of_a_session_recorded_before_the_layers_shows_every_run(session):
    text = _report(session)
    assert f"{RECORDED.name}: {len(_recorded_rows())} runs" in text
    for old in _recorded_rows():
        if old["status"] != "finished":
            assert old["run_id"] in text and old["reason"] in text
    assert "181 ±10 mJ" in text  # tiny-bert-random baseline, as recorded
