"""Every path a session writes stays inside its results directory, whatever a profile names.

Model refs are untrusted text (`hf: '/'`, `..`, 300 characters, unicode); run ids and session
names are folder names, so they are built from a safe slug plus a short hash where the text had to
change, and SessionWriter.run_dir refuses anything that would resolve outside the session.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from energy_console.core.session.plan import expand
from energy_console.core.session.profile_check import load_profile, parse_profile
from energy_console.core.session.runner import Runner
from energy_console.core.spec.profile import ModelEntry
from energy_console.core.store.session_dir import (
    MAX_NAME_BYTES,
    SessionWriter,
    safe_name,
    session_dir_name,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.session_helpers import run_cli_here, write_profile

HOSTILE = ["/", "//", "..", ".", "../..", "a/..", "../../../../tmp/escape", "x" * 300,
           "\x00", "a\x00b", "модель", "名字/模型", "café", " ", "-rf", ".hidden", "a b", "~",
           "$(reboot)", "a\\..\\b", "\udcff", "😀" * 100, "CON", "m\n"]


def assert_one_safe_component(root: Path, name: str) -> None:
    assert name and name not in (".", "..")
    assert "/" not in name and "\x00" not in name
    assert len(name.encode("utf-8")) <= 255
    assert (root / name).resolve().parent == root.resolve()
    assert Path(name).parts == (name,)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_no_slug_leaves_the_folder_is_empty_or_too_long(text):
    name = safe_name(text)
    assert_one_safe_component(Path("/tmp/ec-slug-root"), name)
    assert safe_name(text) == name  # stable


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=300), min_size=1, max_size=6))
def test_any_model_refs_give_distinct_safe_run_ids(refs):
    profile = parse_profile("name: p\ndevice: cpu\nmodels: [demo/tiny-bert-random]\n"
                            "techniques: [baseline, dynamic-int8]\n"
                            "inputs: {batch_sizes: [1, 1, 2], sequence_lengths: [8, 8]}\n")
    models = tuple(ModelEntry(ref=r, source="hf", task="text-classification") for r in refs)
    specs = expand(dataclasses.replace(profile, models=models))
    ids = [s.run_id for s in specs]
    assert len(ids) == len(refs) * 2 * 2 * 1  # duplicate sizes are one run each
    assert len({i.casefold() for i in ids}) == len(ids)
    for run_id in ids:
        assert_one_safe_component(Path("/tmp/ec-slug-root"), run_id)
        assert len(run_id.encode()) <= MAX_NAME_BYTES
    assert ids == [s.run_id for s in expand(dataclasses.replace(profile, models=models))]


def test_hostile_names_each_give_one_safe_component():
    for text in HOSTILE:
        assert_one_safe_component(Path("/tmp/ec-slug-root"), safe_name(text))
        assert_one_safe_component(Path("/tmp"), session_dir_name(text))


def test_normal_names_keep_their_exact_ids():
    profile = parse_profile("name: p\ndevice: cpu\nmodels: [demo/tiny-bert-random, "
                            "{hf: prajjwal1/bert-tiny, task: text-classification}]\n"
                            "techniques: [baseline, {chain: [bf16, dynamic-int8]}]\n"
                            "inputs: {sequence_lengths: [16]}\n")
    assert [s.run_id for s in expand(profile)] == [
        "tiny-bert-random__baseline__b1-s16", "tiny-bert-random__bf16+dynamic-int8__b1-s16",
        "bert-tiny__baseline__b1-s16", "bert-tiny__bf16+dynamic-int8__b1-s16"]
    assert session_dir_name("my-profile_1.x", when=86400) == "19700102T000000Z_my-profile_1.x"


def test_duplicate_sizes_are_one_run_each():
    profile = parse_profile("name: p\ndevice: cpu\nmodels: [demo/tiny-bert-random]\n"
                            "techniques: [baseline]\n"
                            "inputs: {batch_sizes: [1, 4, 1, 4, 1], sequence_lengths: [8, 8]}\n")
    assert [s.run_id for s in expand(profile)] == ["tiny-bert-random__baseline__b1-s8",
                                                   "tiny-bert-random__baseline__b4-s8"]


def test_colliding_short_names_get_distinct_ids():
    # names m, m and m-1: the old numbering gave m-1 twice (one run overwrote the other)
    profile = parse_profile(
        "name: p\ndevice: cpu\ntechniques: [baseline]\ninputs: {sequence_lengths: [8]}\n"
        "models:\n"
        "  - {hf: a/m, task: text-classification}\n"
        "  - {hf: b/m, task: text-classification}\n"
        "  - {hf: c/m-1, task: text-classification}\n"
        "  - {hf: d/M, task: text-classification}\n"
        "  - {hf: a/m, task: text-classification}\n")
    ids = [s.run_id for s in expand(profile)]
    assert len({i.casefold() for i in ids}) == 5, ids
    assert "m-1__baseline__b1-s8" in ids  # unique and safe: unchanged
    assert all(i.startswith(("m-", "M-")) for i in ids)
    assert ids == [s.run_id for s in expand(profile)]  # stable, so resume finds them


@pytest.mark.parametrize("run_id", ["/", "..", ".", "", "a/b", "../x", "x\x00", "x" * 300,
                                    "/etc/passwd", "модель"])
def test_run_dir_refuses_what_is_not_one_safe_name(tmp_path, run_id):
    writer = SessionWriter(tmp_path / "s")
    try:
        with pytest.raises(ValueError, match="not a safe folder name"):
            writer.run_dir(run_id)
    finally:
        writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]
    assert list((tmp_path / "s" / "runs").iterdir()) == []


def test_run_dir_refuses_a_link_out_of_the_session(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    writer = SessionWriter(tmp_path / "s")
    try:
        (tmp_path / "s" / "runs" / "r1").symlink_to(outside)
        with pytest.raises(ValueError, match="outside the session"):
            writer.run_dir("r1")
        assert writer.run_dir("r2") == tmp_path / "s" / "runs" / "r2"
    finally:
        writer.close()
    assert list(outside.iterdir()) == []


def tree(folder: Path) -> set[str]:
    return {str(Path(d, n).relative_to(folder)) for d, dirs, files in os.walk(folder)
            for n in dirs + files}


@pytest.mark.session
def test_a_real_run_with_hostile_hub_ids_writes_only_inside_the_results_dir(tmp_path):
    refs = ["/", "//", "..", "../../../../tmp", "a/..", "x" * 300, "модель", "café/..",
            "-rf", ".."]
    models = "".join(f"  - {{hf: {ref!r}, task: text-classification}}\n" for ref in refs)
    profile = write_profile(tmp_path, f"models:\n{models}techniques: [baseline]\n"
                            "inputs: {sequence_lengths: [8]}\n", name="hostile")
    results = tmp_path / "results"
    root_before = set(os.listdir("/"))
    here_before = tree(tmp_path)
    # `run` refuses these ids in pre-flight (offline, not cached); the runner itself must still
    # keep every write inside the results dir for ids that get past it (a cached hub id).
    refused = run_cli_here(str(profile), "--results-dir", str(results), "--quiet")
    assert refused.returncode == 2 and not results.exists(), refused.stderr
    outcome = Runner(load_profile(profile), results / session_dir_name("hostile")).run()
    # offline, none can load; the second `..` is the same model: skipped after the first failed
    assert (outcome.failed, outcome.skipped) == (len(refs) - 1, 1)
    assert set(os.listdir("/")) == root_before
    assert tree(tmp_path) - here_before <= {str(p.relative_to(tmp_path))
                                            for p in results.rglob("*")} | {"results"}
    (session,) = results.iterdir()
    run_dirs = sorted(p.name for p in (session / "runs").iterdir())
    # one folder per model that started; the second `..`, skipped before it started, has none
    assert len(run_dirs) == len(refs) - 1
    for name in run_dirs:
        assert_one_safe_component(session / "runs", name)
    for path in results.rglob("*"):
        assert not path.is_symlink()
        assert path.resolve().is_relative_to(results.resolve())
    statuses = (session / "runs.csv").read_text()
    assert statuses.count(",failed,") + statuses.count(",skipped,") == len(refs)
