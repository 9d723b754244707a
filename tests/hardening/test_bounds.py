"""Every number a profile holds has a range (core/spec/limits.py, the one table); values outside
it -- NaN, infinity, true/false, negatives, huge -- are refused at load time with file, line, key,
the value and the range. docs/safety.md's Ranges table is that table."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from energy_console.core.compression import techniques
from energy_console.core.session.profile_check import limit_rows, parse_profile
from energy_console.core.spec.limits import LIMITS, Limit, markdown_table
from energy_console.core.spec.profile import ProfileError
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
HEAD = "name: b\ndevice: cpu\n"
MODEL = "models: [demo/tiny-bert-random]\n"
GENERATE_MODEL = ("models:\n  - demo: demo/tiny-gpt2-random\n    workload: generate\n"
                  "    dataset: d.jsonl\n")
# the keys a generation setting needs beside it to apply at all
GENERATION_NEEDS = {"temperature": "do_sample: true, ", "top_k": "do_sample: true, ",
                    "top_p": "do_sample: true, ", "pass_at_1_timeout_s": "pass_at_1: true, "}


def document(row: Limit, value_text: str) -> tuple[str, int]:
    """A profile holding value_text at row's key, and the line it is on."""
    if row.key.startswith("techniques: "):
        technique, param = row.key.removeprefix("techniques: ").split(".")
        return HEAD + MODEL + f"techniques:\n  - {{{technique}: {{{param}: {value_text}}}}}\n", 5
    if row.key == "models[].dataset.max_samples":
        return HEAD + "models:\n  - demo: demo/tiny-bert-random\n" \
            f"    dataset: {{path: d.csv, max_samples: {value_text}}}\n", 5
    if row.key.startswith("models[].generation."):
        name = row.key.rsplit(".", 1)[1]
        return HEAD + GENERATE_MODEL + \
            f"    generation: {{{GENERATION_NEEDS.get(name, '')}{name}: {value_text}}}\n", 7
    if row.key.startswith("models[].training."):
        name = row.key.rsplit(".", 1)[1]
        return HEAD + "models:\n  - demo: demo/tiny-bert-random\n" \
            f"    training: {{{name}: {value_text}}}\n", 5
    section, name = row.key.removesuffix("[]").split(".")
    value = f"[{value_text}]" if row.key.endswith("[]") else value_text
    return HEAD + MODEL + f"{section}:\n  {name}: {value}\n", 5


def yaml_number(value) -> str:
    if isinstance(value, float) and math.isnan(value):
        return ".nan"
    if isinstance(value, float) and math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    return repr(value).lower() if isinstance(value, bool) else repr(value)


VALUE_ROWS = [row for row in limit_rows() if not row.length]


def hostile_values(row: Limit):
    yield math.inf
    yield -math.inf
    yield math.nan
    yield True
    yield 10 ** 20
    yield -1
    yield row.maximum * 2 + 1
    if row.min_exclusive or row.minimum > 0:
        yield row.minimum if row.min_exclusive else row.minimum / 2


@pytest.mark.parametrize("row", VALUE_ROWS, ids=lambda r: r.key)
def test_values_outside_the_range_are_refused_with_key_line_value_and_range(row):
    for value in hostile_values(row):
        text, line = document(row, yaml_number(value))
        with pytest.raises(ProfileError) as info:
            parse_profile(text, source="b.yaml")
        message = str(info.value)
        assert info.value.line == line, message
        assert message.startswith(f"b.yaml, line {line}: "), message
        if row.key.startswith("techniques: "):  # the technique's own Param words it
            assert info.value.key == "techniques[0]", message
            assert f"{row.key.split('.')[-1]} must be" in message, message
        else:
            assert info.value.key.replace("[0]", "[]") == row.key, message
        shown = {yaml_number(value), repr(value)}
        if row.kind is float and isinstance(value, int) and not isinstance(value, bool):
            shown.add(repr(float(value)))  # a float parameter given as an integer
        assert any(text in message for text in shown), message
        assert row.allowed in message, message


@pytest.mark.parametrize("row", VALUE_ROWS, ids=lambda r: r.key)
def test_the_edges_of_each_range_are_accepted(row):
    edges = [row.maximum] + ([] if row.min_exclusive else [row.minimum])
    for value in edges:
        value = row.kind(value)
        text, _ = document(row, yaml_number(value))
        parse_profile(text)


@pytest.mark.parametrize("row", [row for row in LIMITS if row.length], ids=lambda r: r.key)
def test_lists_longer_than_allowed_are_refused(row):
    count = int(row.maximum) + 1
    if row.key == "models":
        text = HEAD + "models: [" + ", ".join(["demo/tiny-bert-random"] * count) + "]\n"
    elif row.key == "techniques":
        text = HEAD + MODEL + "techniques: [" + ", ".join(["baseline"] * count) + "]\n"
    else:
        name = row.key.split(".")[1]
        text = HEAD + MODEL + f"inputs: {{{name}: [" + ", ".join(["1"] * count) + "]}\n"
    with pytest.raises(ProfileError) as info:
        parse_profile(text)
    assert f"{count} entries are not allowed" in str(info.value)
    assert info.value.key == row.key


ALL_NUMBERS = st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                        st.booleans())


@settings(deadline=2000, max_examples=200, derandomize=True)
@given(st.sampled_from([row for row in LIMITS if not row.length]), ALL_NUMBERS)
def test_a_number_loads_exactly_when_its_range_allows_it(row, value):
    text, _ = document(row, yaml_number(value))
    allowed = (not isinstance(value, bool) and math.isfinite(value) and row.inside(value)
               and (row.kind is float or isinstance(value, int)))
    try:
        parse_profile(text)
    except ProfileError as exc:
        assert not allowed, str(exc)
    else:
        assert allowed


def test_every_numeric_technique_parameter_has_a_range():
    for name, technique in techniques().items():
        for param in technique.params:
            if param.type in (int, float):
                assert param.minimum is not None and param.maximum is not None, (name, param)


def test_the_manuals_range_table_is_the_code_table():
    safety = (ROOT / "docs" / "safety.md").read_text(encoding="utf-8")
    assert "\n## Ranges\n" in safety
    ranges = safety.split("\n## Ranges\n", 1)[1].split("\n## ", 1)[0]
    tables = re.findall(r"(?m)^\|.*\|$(?:\n^\|.*\|$)*", ranges)
    assert tables == [markdown_table(limit_rows())], \
        "regenerate with core.spec.limits.markdown_table(core.session.profile_check.limit_rows())"
    profiles = (ROOT / "docs" / "profiles.md").read_text(encoding="utf-8")
    assert "(safety.md#ranges)" in profiles  # a profile's reader finds the ranges
