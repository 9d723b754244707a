"""The headless commands, run as a user runs them: through the console script's main() in this
process (tests.session_helpers.cli_here), or in a fresh interpreter where the process is the
point (what a listing imports; a detached runner)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from energy_console.core.store.records import RunRecord
from energy_console.core.store.session_dir import SessionWriter

from tests.session_helpers import ROOT, cli_here


def energy_console(*args, env=None, before: str = ""):
    """`energy-console ARGS` in a fresh interpreter; `before` runs first (a fake, say)."""
    code = (f"{before}\n"
            "import sys; from energy_console.tui.main import main; code = main(sys.argv[1:]); "
            "print('TORCH LOADED' if 'torch' in sys.modules else '', file=sys.stderr); "
            "sys.exit(code)")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)


def test_version():
    done = cli_here("--version")
    assert done.returncode == 0 and done.stdout.startswith("energy-console 0.")


def with_nvidia_driver_file(path) -> str:
    """Code that points the catalogue's driver check at `path` (no NVIDIA driver if absent)."""
    return ("import energy_console.core.compression.catalogue as catalogue; "
            f"catalogue.NVIDIA_DRIVER_FILE = {str(path)!r}")


@pytest.fixture
def nvidia_driver_file(monkeypatch, tmp_path):
    """The file the catalogue's driver check reads, here: absent until a test writes it."""
    import energy_console.core.compression.catalogue as catalogue

    monkeypatch.setattr(catalogue, "NVIDIA_DRIVER_FILE", str(tmp_path / "version"))
    return tmp_path / "version"


def technique_block(listing: str, name: str) -> str:
    """The lines `list techniques` prints for one technique."""
    lines = listing.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{name}  "))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")),
               len(lines))
    return "\n".join(lines[start:end])


def test_listing_models_and_techniques_stays_light(tmp_path):
    models = energy_console("list", "models")
    assert "demo/tiny-vit-random" in models.stdout and "image-classification" in models.stdout
    no_driver = energy_console("list", "techniques",
                               before=with_nvidia_driver_file(tmp_path / "no-driver"))
    for name in ("dynamic-int8", "weight-int4", "structured-prune", "sparse-2:4", "chain"):
        assert name in no_driver.stdout
    # sparse-2:4 needs a CUDA GPU, and says so where there is no NVIDIA driver
    assert "unavailable: runs on cuda only" in technique_block(no_driver.stdout, "sparse-2:4")
    assert "TORCH LOADED" not in models.stderr + no_driver.stderr


def test_a_cuda_only_technique_is_listed_as_available_where_a_driver_is_loaded(
        nvidia_driver_file):
    nvidia_driver_file.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15\n")
    listing = cli_here("list", "techniques")
    assert listing.returncode == 0
    assert technique_block(listing.stdout, "sparse-2:4").splitlines()[-1].strip() == "available"


def test_sensors_tells_the_truth_about_a_machine_without_counters(tmp_path):
    done = cli_here("sensors", env={"ENERGY_CONSOLE_POWERCAP_ROOT": str(tmp_path / "none")})
    assert done.returncode == 0
    out = done.stdout
    assert "cpu-estimate" in out and "estimate" in out.lower()
    assert "rapl" in out and "nvml" in out
    assert "fix" in out


def test_report_shows_each_run_and_its_change_against_baseline(tmp_path):
    session = tmp_path / "s"
    writer = SessionWriter(session)
    base = {"model": "m", "device": "cpu", "batch_size": 1, "seq_len": 8, "status": "finished",
            "avg_power_w": 10.0, "latency_ms_p50": 2.0, "energy_source": "estimated",
            "quality_metric": "accuracy", "quality_value": 0.9}
    writer.record_run(RunRecord(**base, run_id="m__baseline__b1-s8", technique="baseline",
                                energy_j_per_inference=0.4, size_bytes=1000))
    writer.record_run(RunRecord(**base, run_id="m__dynamic-int8__b1-s8", technique="dynamic-int8",
                                energy_j_per_inference=0.3, size_bytes=250))
    writer.close()
    done = cli_here("report", str(session), env={"COLUMNS": "200"})
    assert done.returncode == 0
    (line,) = [x for x in done.stdout.splitlines() if "dynamic-int8" in x and "│" in x]
    # no intervals recorded: the energy change is never called a finding; bytes are exact
    assert "b1-s8" in line and "~-25%" in line and " -75%" in line
    assert "Pareto front" in done.stdout


def test_attach_without_a_session_says_so(tmp_path):
    done = cli_here("attach", "--results-dir", str(tmp_path))
    assert done.returncode == 2
    assert "no session to attach to" in done.stderr
    done = cli_here("attach", str(tmp_path))
    assert done.returncode == 2 and "not a session directory" in done.stderr


def test_a_profile_that_does_not_exist_is_named(tmp_path):
    done = cli_here("run", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2
    assert "no profile file" in done.stderr


def test_an_invalid_profile_is_refused_with_the_line_and_nothing_runs(tmp_path):
    profile = tmp_path / "bad.yaml"
    profile.write_text("name: bad\nmodels: [demo/tiny-bert-random]\nprotocol:\n  repeats: -1\n")
    done = cli_here("run", str(profile), "--results-dir", str(tmp_path / "results"))
    assert done.returncode == 2
    assert "line 4: protocol.repeats: -1 is not allowed" in done.stderr
    assert not (tmp_path / "results").exists()


def test_a_results_directory_that_cannot_be_written_is_named_with_the_fix(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = cli_here("run", str(ROOT / "tests" / "profiles" / "tiny.yaml"),
                    "--results-dir", str(blocker))
    assert done.returncode == 2
    assert f"cannot write the session to {blocker}" in done.stderr
    assert "--results-dir" in done.stderr


@pytest.mark.session
def test_a_detached_run_returns_at_once_and_measures_on_its_own(tmp_path):
    import json
    import time

    from tests.session_helpers import wait_for_event, wait_gone, write_plain_torch_profile

    profile = write_plain_torch_profile(tmp_path, techniques="[baseline]")
    session = tmp_path / "session"
    started = time.monotonic()
    # the command in this process: the runner it detaches is a process of its own all the same
    done = cli_here("run", str(profile), "--session-dir", str(session), "--detach")
    assert done.returncode == 0 and time.monotonic() - started < 30
    assert f"energy-console attach {session}" in done.stdout
    finished = wait_for_event(session, lambda e: e["kind"] == "session_finished")
    assert finished["status"] == "completed" and finished["finished"] == 1
    runner_pid = json.loads((session / "session.json").read_text())["runner_pid"]
    assert str(runner_pid) in done.stdout
    assert wait_gone([runner_pid], timeout_s=15) == []  # it ends with its session


def test_gpus_this_machine_lacks_are_refused_before_anything_is_written(tmp_path, monkeypatch):
    from tests.fakes import pynvml as fake_nvml
    from tests.fakes.pynvml import FakeGpu

    fake_nvml.configure(gpus=[FakeGpu(), FakeGpu()])
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml)
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\ndevice: cpu\nmodels: [demo/tiny-bert-random]\n")
    done = cli_here("run", str(profile), "--gpus", "1,3", "--results-dir",
                    str(tmp_path / "results"))
    assert done.returncode == 2
    assert "this machine's GPUs are [0, 1]; [3] not among them" in done.stderr
    assert not (tmp_path / "results").exists()
