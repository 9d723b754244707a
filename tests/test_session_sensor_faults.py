"""A sensor that fails mid-run, or whose counter stands still, marks the run: never a clean
"measured" figure (fake powercap tree, real runner and worker processes)."""

from __future__ import annotations

import os

import pytest
from energy_console.core.analysis.report import format_report
from energy_console.core.store.follow import read_session
from energy_console.core.store.session_dir import read_runs
from energy_console.tui.runs import live_cells

from tests.fakes.powercap import build_powercap_tree, start_counter_writer, stop_counter_writer
from tests.session_helpers import read_events, run_cli_here_while, wait_for_event, write_profile

pytestmark = pytest.mark.session
RANGE_UJ = 30_000_000


@pytest.fixture(scope="module")
def faulty_session(tmp_path_factory):
    """package-0 advances at 40 W until the first timed window opens, then its energy_uj reads
    as nothing (every read raises); dram-0 never moves at all."""
    tmp_path = tmp_path_factory.mktemp("faults")
    tree = build_powercap_tree(tmp_path / "powercap", sockets=1, core=False,
                               max_energy_range_uj=RANGE_UJ)
    profile = write_profile(tmp_path, """\
models: [demo/tiny-bert-random]
techniques: [baseline]
inputs: {batch_sizes: [1], sequence_lengths: [16]}
""", protocol="protocol: {idle_seconds: 0.5, warmup: 1, min_window_s: 1.2, repeats: 2, "
                                   "threads: 1}\n")
    writer = start_counter_writer({tree.zone("intel-rapl:0"): 40.0}, RANGE_UJ)
    session = tmp_path / "session"

    def break_package_0_at_the_first_window():
        wait_for_event(session, lambda e: e["kind"] == "phase" and e["phase"] == "repeat")
        stop_counter_writer(writer)
        os.truncate(tree.zone("intel-rapl:0") / "energy_uj", 0)

    try:  # in this process: the sensors are read by the runner, not by its workers
        run_cli_here_while(break_package_0_at_the_first_window, session, str(profile),
                           "--session-dir", str(session), "--quiet",
                           env={"ENERGY_CONSOLE_POWERCAP_ROOT": str(tree.root)})
    finally:
        if writer.poll() is None:
            stop_counter_writer(writer)
    return session


def test_the_run_is_marked_faulty_with_each_sensors_problem(faulty_session):
    (record,) = read_runs(faulty_session)
    assert record.status == "finished"  # latency, size and quality still stand
    assert record.energy_source == "faulty"
    assert "rapl:package-0 failed during a window (ValueError" in record.energy_fault
    assert "rapl:dram-0 did not move" in record.energy_fault


def test_the_user_is_told_in_an_error_notice_the_console_and_the_report(faulty_session):
    (record,) = read_runs(faulty_session)
    notices = [e for e in read_events(faulty_session)
               if e["kind"] == "notice" and e["level"] == "error"]
    assert [n["run_id"] for n in notices] == [record.run_id]
    assert "energy not trustworthy" in notices[0]["message"]
    assert "FAULT" in live_cells(record, None)["energy"]
    report = format_report(read_session(faulty_session))
    assert "not trustworthy" in report and record.run_id in report
