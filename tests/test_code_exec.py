"""pass@1 for code prompts with tests: real sandboxed subprocesses (core.quality.code_exec), the
shipped HumanEval-style tasks, the profile switch, and one real generate session with it on."""

from __future__ import annotations

import csv
import json
import os
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest
from energy_console.core.quality import code_exec
from energy_console.core.quality.code_exec import (
    CodeTask,
    pass_at_1,
    run_completion,
    sandbox,
    truncate_completion,
)
from energy_console.core.quality.datasets import DatasetError, dataset_spec, load_code_tasks
from energy_console.core.quality.generation import code_pass_at_1
from energy_console.core.session.profile_check import parse_profile
from energy_console.core.spec.profile import ProfileError
from energy_console.core.spec.workloads import generation_settings

pytestmark = pytest.mark.session  # slow tier: real runner sessions, CLI processes, end-to-end UI

ROOT = Path(__file__).resolve().parent.parent
CODE_TASKS = ROOT / "data" / "code-tasks.jsonl"

ADD = CodeTask("def add(a, b):\n", "add",
               "def check(candidate):\n    assert candidate(2, 3) == 5\n"
               "    assert candidate(-1, 1) == 0\n")
SQUARE = CodeTask("def square(x):\n", "square",
                  "def check(candidate):\n    assert candidate(3) == 9\n")
SPIN = CodeTask("def spin(n):\n", "spin", "def check(candidate):\n    assert candidate(1) == 1\n")

# never returns: it sleeps rather than spins, as the wall-clock timeout is what ends it (a spin
# would only add 1.5 s of CPU on a busy test machine; the CPU-seconds limit is timeout + 1)
LOOP_FOREVER = "    import time\n    while True:\n        time.sleep(0.05)\n"
# a child that leaves the process group (setsid) and sleeps: only the PID namespace or the
# descendant sweep can end it
ESCAPE_AND_LOOP = ("    import os, time\n    if os.fork() == 0:\n        os.setsid()\n"
                   "        time.sleep(600)\n    while True:\n        time.sleep(0.05)\n")


def sandbox_processes(since: float) -> list[psutil.Process]:
    """Processes started since `since` that run a sandboxed program."""
    found = []
    for proc in psutil.process_iter(["cmdline", "create_time"]):
        try:
            if proc.info["create_time"] >= since - 1 and any(
                    "energy-console-exec-" in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def group_members(pgid: int) -> list[int]:
    members = []
    for proc in psutil.process_iter():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                members.append(proc.pid)
        except (psutil.Error, ProcessLookupError):
            continue
    return members


def test_three_tasks_pass_fail_and_timeout_count_as_one_third_and_leave_no_process():
    since = time.time()
    result = pass_at_1([ADD, SQUARE, SPIN],
                       ["    return a + b\n", "    return x + x\n", LOOP_FOREVER],
                       timeout_s=1.5)
    passed, failed, timeout = result.results
    assert (passed.status, passed.passed) == ("passed", True)
    assert (failed.status, failed.passed) == ("failed", False)
    assert "AssertionError" in failed.detail and "AssertionError" in failed.stderr
    assert (timeout.status, timeout.passed) == ("timeout", False)
    assert 1.5 <= timeout.seconds < 6
    assert result.value == pytest.approx(1 / 3) and result.tasks == 3
    assert result.counts == {"passed": 1, "failed": 1, "timeout": 1}
    assert timeout.pid is not None and not psutil.pid_exists(timeout.pid)
    assert group_members(timeout.pid) == []
    assert sandbox_processes(since) == []


def test_a_timeout_ends_a_child_that_left_the_process_group_too():
    since = time.time()
    result = run_completion(SPIN, ESCAPE_AND_LOOP, timeout_s=1.5)
    assert result.status == "timeout" and not result.passed
    deadline = time.monotonic() + 3  # SIGKILL is delivered at once; reaping may lag a moment
    while sandbox_processes(since) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox_processes(since) == []


def test_a_crash_a_syntax_error_and_a_cpu_hog_are_failures_that_say_why():
    crash = run_completion(ADD, "    raise RuntimeError('boom')\n")
    assert crash.status == "failed" and crash.detail == "RuntimeError: boom"
    broken = run_completion(ADD, "    return a +\n")
    assert broken.status == "failed" and "SyntaxError" in broken.detail
    memory = run_completion(ADD, "    x = bytearray(3 << 30)\n    return a + b\n")
    assert memory.status == "failed" and "MemoryError" in memory.detail  # RLIMIT_AS


def test_output_is_captured_and_truncated():
    result = run_completion(ADD, "    print('x' * 100000)\n    return a + b\n")
    assert result.passed
    assert len(result.stdout) < code_exec.OUTPUT_LIMIT + 100
    assert result.stdout.endswith("more bytes]")


def test_the_program_runs_isolated_in_a_fresh_folder_with_a_minimal_environment(monkeypatch):
    monkeypatch.setenv("ENERGY_CONSOLE_SECRET", "x")
    probe = ("    import os, sys\n    assert sys.flags.isolated == 1\n"
             "    assert 'ENERGY_CONSOLE_SECRET' not in os.environ\n"
             "    assert os.listdir('.') == [], os.listdir('.')\n"
             "    assert os.environ['HOME'] == os.getcwd()\n"
             "    return a + b\n")
    result = run_completion(ADD, probe)
    assert result.passed, result.stderr


@pytest.fixture()
def listener():
    """A TCP server on loopback that accepts connections, as a stand-in for the network."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                conn.close()
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    server.close()


def test_a_completion_that_opens_a_socket_fails_when_the_network_is_isolated(listener):
    if not sandbox().network_isolated:
        pytest.skip(f"no network isolation on this machine: {sandbox().how}")
    connect = ("    import socket\n"
               f"    socket.create_connection(('127.0.0.1', {listener}), timeout=2).close()\n"
               "    return a + b\n")
    # the same program reaches the listener without the namespace, so the failure is the sandbox's
    open_run = run_completion(ADD, connect, isolate_network=False)
    assert open_run.passed and not open_run.network_isolated, open_run.stderr
    isolated = run_completion(ADD, connect)
    assert isolated.network_isolated
    assert isolated.status == "failed" and "unreachable" in isolated.detail.lower()


def test_without_unshare_the_result_says_the_network_was_not_isolated(monkeypatch):
    sandbox.cache_clear()
    monkeypatch.setattr(code_exec.shutil, "which", lambda name: None)
    try:
        box = sandbox()
        result = run_completion(ADD, "    return a + b\n")
        warnings: list[str] = []
        code_pass_at_1([ADD], ["    return a + b\n"], 5.0, warnings)
    finally:
        sandbox.cache_clear()
    assert not box.network_isolated and "no network isolation" in box.how
    assert result.passed and result.network_isolated is False
    assert any("without network isolation" in w for w in warnings)


def test_completions_are_cut_where_the_function_ends():
    assert truncate_completion("    return 1\n\ndef other():\n    pass\n") == "    return 1\n"
    assert truncate_completion("    return 1\nprint(f())\n") == "    return 1"
    assert truncate_completion("    return 1\n") == "    return 1\n"


def test_every_shipped_task_passes_with_its_solution_and_fails_without_one():
    tasks = load_code_tasks(dataset_spec(str(CODE_TASKS)))
    lines = [json.loads(line) for line in CODE_TASKS.read_text().splitlines()]
    assert 6 <= len(tasks) == len(lines) <= 10
    good = pass_at_1(tasks, [line["canonical_solution"] for line in lines])
    assert good.value == 1.0, [(r.detail, r.stderr) for r in good.results if not r.passed]
    bad = pass_at_1(tasks, ["    pass\n"] * len(tasks))
    assert bad.value == 0.0


def test_pass_at_1_is_off_unless_the_profile_asks():
    assert generation_settings(None).pass_at_1 is False
    assert generation_settings({"do_sample": False}).pass_at_1 is False
    on = generation_settings({"pass_at_1": True, "pass_at_1_timeout_s": 3})
    assert on.pass_at_1 and on.pass_at_1_timeout_s == 3.0
    assert on.generate_kwargs() == {"do_sample": False}  # not a decoding setting
    with pytest.raises(ValueError, match="pass_at_1: 'yes' is not allowed"):
        generation_settings({"pass_at_1": "yes"})
    with pytest.raises(ValueError, match="applies only with `pass_at_1: true`"):
        generation_settings({"pass_at_1_timeout_s": 3})


def test_asking_for_pass_at_1_without_tests_is_a_clear_error(tmp_path):
    with pytest.raises(ProfileError, match="add `dataset:` with a HumanEval-style JSONL"):
        parse_profile("name: p\nmodels:\n  - demo: demo/tiny-gpt2-random\n"
                      "    workload: generate\n    generation: {pass_at_1: true}\n")
    prompts = ROOT / "data" / "prompts-code.jsonl"
    with pytest.raises(DatasetError, match=r"lack entry_point, test; pass@1 needs") as caught:
        load_code_tasks(dataset_spec(str(prompts)))
    assert "remove `pass_at_1: true`" in str(caught.value)
    text = tmp_path / "prompts.txt"
    text.write_text("def f():\n")
    with pytest.raises(DatasetError, match="is not a .jsonl file"):
        load_code_tasks(dataset_spec(str(text)))

    from energy_console.core.session.preflight import dataset_problem

    profile = parse_profile(
        "name: p\nmodels:\n  - demo: demo/tiny-gpt2-random\n    workload: generate\n"
        f"    dataset: {prompts}\n    generation: {{pass_at_1: true}}\n")
    assert "lack entry_point, test" in (dataset_problem(profile.models[0], "causal-lm") or "")
    shipped = parse_profile(
        "name: p\nmodels:\n  - demo: demo/tiny-gpt2-random\n    workload: generate\n"
        f"    dataset: {CODE_TASKS}\n    generation: {{pass_at_1: true}}\n")
    assert dataset_problem(shipped.models[0], "causal-lm") is None
    without = parse_profile(
        "name: p\nmodels:\n  - demo: demo/tiny-gpt2-random\n    workload: generate\n"
        f"    dataset: {prompts}\n")
    assert dataset_problem(without.models[0], "causal-lm") is None


def test_tasks_follow_the_prompts_they_belong_to_under_max_samples():
    from energy_console.core.quality.datasets import load_prompts

    spec = dataset_spec({"path": str(CODE_TASKS), "max_samples": 3})
    tasks = load_code_tasks(spec)
    assert [t.prompt for t in tasks] == load_prompts(spec)
    assert len(tasks) == 3


@pytest.mark.session
def test_a_generate_session_with_pass_at_1_records_the_column(tmp_path):
    from energy_console.core.session.profile_check import load_profile
    from energy_console.core.session.runner import Runner

    from tests.session_helpers import write_profile

    prompts = ROOT / "data" / "prompts-code.jsonl"
    profile = load_profile(write_profile(tmp_path, f"""\
models:
  - demo: demo/tiny-gpt2-random
    workload: generate
    dataset: {{path: {CODE_TASKS}, max_samples: 3}}
    generation: {{pass_at_1: true, pass_at_1_timeout_s: 5}}
  - demo: demo/tiny-gpt2-random
    workload: generate
    dataset: {{path: {prompts}, max_samples: 2}}
techniques: [baseline]
inputs: {{batch_sizes: [1], sequence_lengths: [32], max_new_tokens: [4]}}
"""))
    outcome = Runner(profile, tmp_path / "session").run()
    with (outcome.path / "runs.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["finished", "finished"], [r["reason"] for r in rows]
    with_tests, without = rows
    assert float(with_tests["quality_pass_at_1"]) == 0.0  # random weights write no valid code
    assert with_tests["quality_pass_at_1_tasks"] == "3"
    assert without["quality_pass_at_1"] == "" and without["quality_pass_at_1_tasks"] == ""


def test_the_program_gets_private_temporary_folders_that_leave_nothing_behind():
    box = sandbox()
    if not box.private_tmp:
        pytest.skip(f"no mount namespace on this machine: {box.how}")
    names = {folder: f"energy-console-probe-{os.getpid()}-{i}"
             for i, folder in enumerate(("/tmp", "/var/tmp", "/dev/shm"))}
    fill = "".join(f"    open('{folder}/{name}', 'wb').write(b'x' * (10 << 20))\n"
                   for folder, name in names.items())
    probe = ("    import os\n" + fill +
             # its own /tmp holds only what it wrote and its own folder
             f"    assert sorted(os.listdir('/tmp')) == sorted(['{names['/tmp']}', "
             "os.path.basename(os.path.dirname(os.getcwd()))]), os.listdir('/tmp')\n"
             "    return a + b\n")
    result = run_completion(ADD, probe)
    assert result.passed, result.stderr
    left = [f"{folder}/{name}" for folder, name in names.items()
            if os.path.exists(f"{folder}/{name}")]
    assert left == []


def test_a_completion_cannot_reach_a_local_socket_in_a_folder_anyone_can_enter(tmp_path):
    box = sandbox()
    if not box.local_sockets_refused:
        pytest.skip(f"no seccomp filter for local sockets on this machine: {box.how}")
    folder = Path("/run") if os.access("/run", os.W_OK) else tmp_path
    shared = Path(folder) / f"energy-console-shared-{os.getpid()}"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    path = shared / "service.sock"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        path.chmod(0o777)
        server.listen(4)
        connect = ("    import socket\n    s = socket.socket(socket.AF_UNIX)\n"
                   f"    s.connect({str(path)!r})\n    s.close()\n    return a + b\n")
        # without the sandbox the same program reaches it: the failure is the sandbox's
        assert run_completion(ADD, connect, isolate_network=False).passed
        refused = run_completion(ADD, connect)
        assert refused.status == "failed" and "PermissionError" in refused.detail, refused
    finally:
        server.close()
        path.unlink(missing_ok=True)
        shared.rmdir()


def test_the_socket_filter_is_known_for_the_usual_machines_only():
    from energy_console.core.quality.seccomp import unix_socket_filter

    assert len(unix_socket_filter("x86_64") or b"") == 8 * 8  # 8 instructions of 8 bytes
    assert unix_socket_filter("x86_64") != unix_socket_filter("aarch64")
    assert unix_socket_filter("sparc64") is None
