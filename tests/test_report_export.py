"""report --format / --out and compare, through the CLI's main() on real sessions."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess

import pytest
from energy_console.core.session.profile_check import load_profile
from energy_console.core.session.runner import Runner

from tests.session_helpers import write_profile

pytestmark = pytest.mark.session


@pytest.fixture(scope="module")
def two_sessions(tmp_path_factory):
    """The same profile measured twice: a baseline and dynamic-int8 of a tiny BERT."""
    folder = tmp_path_factory.mktemp("two")
    profile = load_profile(write_profile(folder, """\
models: [demo/tiny-bert-random]
techniques: [baseline, dynamic-int8]
inputs: {batch_sizes: [1], sequence_lengths: [16]}
"""))
    return [Runner(profile, folder / name).run().path for name in ("a", "b")]


def energy_console(*args: str) -> subprocess.CompletedProcess:
    """`energy-console ARGS` through the CLI's main() in this process, at 100 columns: the same
    parsing, output and exit status without a new interpreter importing the CLI again (nothing
    here needs a process of its own)."""
    from energy_console.core.cli.commands import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "100")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    return subprocess.CompletedProcess(["energy-console", *args], code, out.getvalue(),
                                       err.getvalue())


def test_report_out_writes_the_summary_the_table_and_the_plots(two_sessions, tmp_path):
    done = energy_console("report", str(two_sessions[0]), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    markdown = (out / "report.md").read_text()
    assert "## tiny-bert-random · b1-s16" in markdown
    assert "| dynamic-int8 |" in markdown and "Key findings:" in markdown
    assert "Pareto front (energy vs fidelity: top-1 agreement;" in markdown
    assert "best trade-off" in markdown
    plots = sorted(p.name for p in out.glob("*.png"))
    assert "power.png" in plots and any(p.startswith("energy_vs_quality_") for p in plots)
    for name in plots:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in markdown


def test_report_formats_carry_the_changes_with_their_intervals(two_sessions):
    rows = list(csv.DictReader(energy_console("report", str(two_sessions[0]),
                                              "--format", "csv").stdout.splitlines()))
    int8 = next(r for r in rows if r["technique"] == "dynamic-int8")
    assert float(int8["energy_j_per_inference_change"]) > -1
    assert int8["energy_j_per_inference_change_within_noise"] in ("true", "false")
    report = json.loads(energy_console("report", str(two_sessions[0]), "--format", "json").stdout)
    runs = report["runs"]
    assert {r["technique"] for r in runs} == {"baseline", "dynamic-int8"}
    assert runs[1]["changes"]["size_bytes"]["fraction"] < 0
    table = energy_console("report", str(two_sessions[0])).stdout
    assert max(len(line) for line in table.splitlines()) <= 100  # fits COLUMNS

    # the JSON findings are the text report's findings of the same session, as data (issue 25,
    # point 6): every sentence, wrapped or not, and a winner exactly where the text names one
    words = " ".join(table.split())
    for group in report["findings"]["groups"]:
        for key in ("least_energy", "smallest", "best_quality", "best_trade_off"):
            finding = group[key]
            assert " ".join(finding["text"].split()) in words
            assert (finding["winner"] is None) == (": indistinguishable" in finding["text"]
                                                   or finding["leader"] is None
                                                   or ": none (" in finding["text"])
        assert " ".join(group["pareto_text"].split()) in words


def test_compare_matches_each_run_of_two_sessions(two_sessions):
    done = energy_console("compare", *map(str, two_sessions))
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if "tiny-bert-random" in line]
    assert len(rows) == 2 and any("dynamic-int8" in line for line in rows)
    assert "2 runs in both" in done.stdout
