"""Profiles are untrusted text: hostile YAML is refused fast, with file, line, key and fix, and
nothing but ProfileError ever comes out of load_profile (fuzzed with hypothesis)."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import time
from pathlib import Path

import pytest
from energy_console.core.session.profile_check import load_profile, parse_profile
from energy_console.core.spec.profile import ProfileError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.session_helpers import run_cli_here

BASE = "name: x\nmodels: [demo/tiny-bert-random]\n"


def alias_bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n" + BASE


def refused(text: str, source: str = "p.yaml") -> ProfileError:
    started = time.monotonic()
    with pytest.raises(ProfileError) as info:
        parse_profile(text, source=source)
    # a guard against a parse that blows up with the input (an expanded alias bomb takes
    # minutes), not a speed figure: "[" * 20000 takes 0.4 s on a quiet 2-core box, 1 s loaded
    assert time.monotonic() - started < 5.0
    return info.value


def test_an_alias_bomb_is_refused_in_well_under_a_second_in_a_real_process(tmp_path):
    (tmp_path / "bomb.yaml").write_text(alias_bomb(9))  # 9**9 = 387 million nodes if expanded
    code = ("import sys, time\n"
            "from energy_console.core.session.profile_check import load_profile\n"
            "from energy_console.core.spec.profile import ProfileError\n"
            "t = time.monotonic()\ntry:\n    load_profile(sys.argv[1])\n"
            "except ProfileError as e:\n    print(round(time.monotonic() - t, 3), e)\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "bomb.yaml")],
                            capture_output=True, text=True, timeout=30)
    seconds, message = result.stdout.split(" ", 1)
    assert float(seconds) < 1.0 and result.stderr == ""
    assert "bomb.yaml, line 1: a0: YAML anchor &a0 is not allowed" in message
    assert "profiles do not use anchors and aliases" in message


@pytest.mark.parametrize("text, line, key, words", [
    ("name: x\nmodels: &m [*m]\n", 2, "models", ["anchor &m"]),
    (BASE + "protocol: {repeats: *r}\n", 3, "protocol.repeats", ["alias *r", "write the value"]),
    (BASE + "protocol:\n  <<: {repeats: 2}\n", 4, "protocol", ["merge keys (<<)"]),
])
def test_anchors_aliases_and_merge_keys_are_refused(text, line, key, words):
    error = refused(text)
    assert (error.line, error.key) == (line, key)
    assert all(word in str(error) for word in words)


@pytest.mark.parametrize("text, line, key", [
    (BASE + "name: y\n", 3, "name"),
    (BASE + "protocol:\n  repeats: 2\n  warmup: 1\n  'repeats': 3\n", 6, "protocol.repeats"),
    (BASE + "inputs: {batch_sizes: [1], batch_sizes: [2]}\n", 3, "inputs.batch_sizes"),
])
def test_a_key_written_twice_is_refused_naming_both_lines(text, line, key):
    error = refused(text)
    assert (error.line, error.key) == (line, key)
    assert "appears twice" in str(error) and "keep one" in str(error)


@pytest.mark.parametrize("name", ['"abc\\n"', "|\n  abc", '"a\\x1b[2Jb"', '"a\\tb"', '"a\\u202eb"',
                                  '"abc\\0"'])
def test_control_characters_in_names_are_refused(name):
    error = refused(f"name: {name}\nmodels: [demo/tiny-bert-random]\n")
    assert error.key == "name" and error.line == 1
    assert "control character" in str(error) and "remove it" in str(error)


def test_control_characters_in_any_value_are_refused():
    error = refused('name: x\nmodels:\n  - hf: "gpt2\\u202e"\n    task: causal-lm\n')
    assert (error.key, error.line) == ("models[0].hf", 3)
    assert "U+202E" in str(error)


def test_a_raw_nul_byte_is_refused_with_its_line():
    error = refused(BASE + "device: cpu\x00\n")
    assert error.line == 3 and "U+0000" in str(error)


def test_invalid_utf8_is_refused_with_line_and_byte(tmp_path):
    (tmp_path / "p.yaml").write_bytes(b"name: x\nmodels: [demo/tiny-\xff]\n")
    with pytest.raises(ProfileError) as info:
        load_profile(tmp_path / "p.yaml")
    assert info.value.line == 2
    assert "not UTF-8" in str(info.value) and "0xff" in str(info.value)
    assert "save the profile as UTF-8" in str(info.value)


@pytest.mark.parametrize("text, what", [
    ("[" * 20000, "nested more than"),
    ("a:\n" + "".join("  " * i + "- \n" for i in range(1, 60)), "nested more than"),
    (BASE + "x: [" + "1, " * 6000 + "]\n", "more than 5000 values"),
    ("# " + "x" * 40000 + "\n" + BASE, "at most 32768"),
    (BASE + "protocol: {repeats: " + "9" * 5000 + "}\n", "numbers in a profile are at most"),
    (BASE + "protocol: {repeats: 1" + ":59" * 3000 + "}\n", "numbers in a profile are at most"),
])
def test_oversized_text_is_refused_fast(text, what):
    assert what in str(refused(text))


def test_numbers_with_an_exponent_are_read_as_numbers():
    profile = parse_profile(BASE + "protocol: {cooldown_s: 1e3, run_timeout_s: 1.2E+3}\n"
                            "carbon: {intensity_g_per_kwh: 4e2}\n")
    assert profile.protocol.cooldown_s == 1000.0 and profile.protocol.run_timeout_s == 1200.0
    assert profile.carbon.intensity_g_per_kwh == 400.0
    error = refused(BASE + "protocol: {iterations: 1e6}\n")
    assert "write it as a whole number: 1000000" in str(error)


@pytest.mark.parametrize("text, words", [
    (BASE + "x: !!python/object/apply:os.system ['true']\n", ["remove the tag"]),
    (BASE + "protocol: {repeats: 2001-13-45}\n", ["protocol.repeats", "month must be"]),
    (BASE + "protocol: {repeats: !!float abc}\n", ["protocol.repeats", "cannot read"]),
    ("? [a]\n: b\n", ["plain name"]),
    (BASE + "---\n" + BASE, ["another document"]),
    ("", ["the profile is empty"]),
])
def test_odd_yaml_is_a_profile_error_not_a_crash(text, words):
    error = refused(text)
    assert all(word in str(error) for word in words)


def test_a_file_that_is_not_a_regular_file_is_refused(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo.yaml")
    for path in (tmp_path, tmp_path / "fifo.yaml", Path("/dev/zero")):
        with pytest.raises(ProfileError, match="not a regular file"):
            load_profile(path)


# ----------------------------------------------------------------------------- through the CLI

BAD_PROFILES = {
    "bomb": (alias_bomb(9).encode(), "line 1: a0: YAML anchor &a0"),
    "utf8": (b"name: x\nmodels: [demo/tiny-\xff]\n", "line 2: not UTF-8"),
    "inf": ((BASE + "protocol: {min_window_s: .inf}\n").encode(),
            "line 3: protocol.min_window_s: .inf is not allowed; expected a number > 0"),
    "dup": ((BASE + "name: y\n").encode(), "line 3: name: key 'name' appears twice"),
}


@pytest.mark.parametrize("case", sorted(BAD_PROFILES))
def test_a_bad_profile_exits_2_through_the_cli_and_creates_nothing(tmp_path, case):
    data, words = BAD_PROFILES[case]
    (tmp_path / "bad.yaml").write_bytes(data)
    results = tmp_path / "results"
    started = time.monotonic()
    result = run_cli_here(str(tmp_path / "bad.yaml"), "--results-dir", str(results))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: {tmp_path / 'bad.yaml'}, ")
    assert words in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not results.exists()
    assert time.monotonic() - started < 30


# ----------------------------------------------------------------------------- fuzzing

VALID = """\
name: demo
device: cpu
models:
  - demo/tiny-bert-random
  - {demo: demo/tiny-gpt2-random, dataset: {path: d.txt, max_samples: 20}}
techniques: [baseline, {magnitude-prune: {amount: 0.5}}, {chain: [bf16, baseline]}]
inputs: {batch_sizes: [1, 8], sequence_lengths: [32], resolutions: [64]}
protocol: {idle_seconds: 2, warmup: 5, min_window_s: 1.0, repeats: 3, sample_hz: 20}
carbon: {intensity_g_per_kwh: 400}
sensors: {cpu_tdp_w: 65}
"""

HOSTILE = [".inf", "-.inf", ".nan", "-1", "0", "1e308", "1e-308", "1e6", "0x10", "0o7", "1:30",
           "~", "true", "9" * 80, "*a", "&a x", "&a [*a]", "!!python/name:os.system",
           "!!binary aGk=", "!!set {a}", "!!timestamp 2001-01-01", "'\\x00'", '"\\x1b[2J"',
           '"\\u202e"', "[[[[[[", "{{{{", "]", "}", "- - -", "? a", "<<: {a: 1}", "|\n  x",
           ">\n  x", "[1, 2", "'unterminated", '"', "@", "`", "%YAML 1.1", "---", "...",
           "a: b: c", "{a: 1, a: 2}", "[1, [2, [3]]]", "1_000", "+.5", ".5e3", "-0",
           "\t", "\u00a0", "\ufeff", "\u2028", "null", "{chain: {chain: []}}", "{}", "[]"]

SETTINGS = settings(deadline=2000, max_examples=100, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def only_profile_errors(call) -> None:
    """call() may succeed or raise ProfileError; anything else, a print or > 2 s fails."""
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            call()
        except ProfileError as exc:
            assert str(exc)  # a message, never empty
    assert time.monotonic() - started < 2.0
    assert out.getvalue() == "" and err.getvalue() == ""


@SETTINGS
@given(st.text(max_size=2000))
def test_random_text_gives_a_profile_or_a_profile_error(text):
    only_profile_errors(lambda: parse_profile(text, source="fuzz.yaml"))


@SETTINGS
@given(st.binary(max_size=2000))
def test_random_bytes_give_a_profile_or_a_profile_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "p.yaml"
    path.write_bytes(data)
    only_profile_errors(lambda: load_profile(path))


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(HOSTILE)), max_size=6),
       st.integers(0, 2**32 - 1))
def test_a_valid_profile_with_hostile_fragments_spliced_in(splices, seed):
    text = VALID
    for position, fragment in splices:
        cut = position % (len(text) + 1)
        text = text[:cut] + fragment + text[cut:]
    only_profile_errors(lambda: parse_profile(text, source="fuzz.yaml"))


yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.sampled_from(["baseline", "demo/tiny-bert-random", "cpu", "bf16"]),
)
KEYS = ["name", "device", "models", "techniques", "inputs", "protocol", "carbon", "sensors",
        "batch_sizes", "repeats", "sample_hz", "hf", "path", "demo", "task", "dataset", "chain",
        "magnitude-prune", "amount", "max_samples", "country", "cpu_tdp_w", "threads"]
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5),
    max_leaves=40,
)


@SETTINGS
@given(st.dictionaries(st.sampled_from(KEYS), yaml_values, max_size=8),
       st.booleans())
def test_random_profile_shaped_documents(document, flow):
    import yaml

    text = yaml.safe_dump(document, default_flow_style=flow, allow_unicode=True)
    only_profile_errors(lambda: parse_profile(text, source="fuzz.yaml"))
