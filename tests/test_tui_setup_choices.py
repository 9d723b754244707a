"""The setup screen's pure parts, without running the app: what a selection means, its labels,
its counts, typed values."""

from __future__ import annotations

import pytest
from energy_console.core.compression import Param
from energy_console.tui.setup_choices import (
    chain_problem,
    entry_key,
    entry_prompt,
    in_order,
    numbered_key,
    param_problem,
    params_title,
    replaced,
    run_summary,
    technique_rows,
    typed_value,
)

CHAIN = {"chain": [{"structured-prune": {"ratio": 0.3}}, "dynamic-int8"]}


def test_a_profile_lists_its_techniques_as_catalogue_rows_and_entries_of_their_own():
    rows = technique_rows([{"magnitude-prune": {"amount": 0.3}}, "baseline", CHAIN,
                           {"magnitude-prune": {"amount": 0.6}}])
    assert rows.params == {"magnitude-prune": {"amount": 0.3}, "baseline": {}}
    again = {"magnitude-prune": {"amount": 0.6}}
    assert rows.entries == {entry_key(CHAIN): CHAIN, entry_key(again): again}
    assert rows.order == ["magnitude-prune", "baseline", entry_key(CHAIN), entry_key(again)]


def test_a_selection_runs_in_the_profile_order_then_as_ticked():
    assert in_order(["c", "a", "x"], ["a", "b", "c"]) == ["a", "c", "x"]
    assert replaced(["a", "b", "c"], "b", "c") == ["a", "c"]
    assert numbered_key("tiny", {"tiny": 1, "tiny #2": 2}) == "tiny #3"
    assert numbered_key("other", {"tiny": 1}) == "other"


def test_labels_and_counts():
    assert run_summary(1, "13s", 1, 2) == \
        "1 run · about 13s (rough: half to twice that) · 1 model × 2 techniques"
    assert entry_prompt(CHAIN) == "chain: structured-prune ratio=0.3 + dynamic-int8"
    assert params_title("x", CHAIN) == ("chain, applied in order: structured-prune ratio=0.3 → "
                                        "dynamic-int8 (c edits)")
    assert params_title("magnitude-prune", None) == "magnitude-prune parameters (⏎ edits)"


def test_typed_values_are_checked_against_the_parameter():
    amount = Param("amount", float, 0.5, "share pruned", minimum=0.0, maximum=1.0)
    assert param_problem(amount, "") is None and param_problem(amount, "0.25") is None
    assert param_problem(amount, "lots") == "amount must be a float, got 'lots'"
    assert "amount must be" in (param_problem(amount, "2") or "")
    assert typed_value(bool, "True") is True
    with pytest.raises(ValueError):
        typed_value(bool, "yes")
    assert chain_problem("") is None and chain_problem("baseline + dynamic-int8") is None
    assert "no-such" in (chain_problem("no-such") or "")


def test_the_duration_estimate_follows_the_protocol_and_the_workload():
    from energy_console.core.session.plan import expand
    from energy_console.core.session.profile_check import parse_profile
    from energy_console.tui.estimate import estimate_duration_s

    def estimate(body: str, workload: str = "infer") -> float:
        profile = parse_profile("name: t\ndevice: cpu\nmodels:\n  - demo: demo/tiny-gpt2-random"
                                f"\n    workload: {workload}\ntechniques: [baseline]\n" + body)
        return estimate_duration_s(expand(profile), profile.protocol.idle_seconds)

    infer = estimate("inputs: {sequence_lengths: [16]}\n")
    generate = estimate("inputs: {sequence_lengths: [16], max_new_tokens: [64]}\n", "generate")
    assert generate > infer  # each iteration makes 64 tokens, and so does its quality check
    more_repeats = estimate("inputs: {sequence_lengths: [16]}\nprotocol: {repeats: 10}\n")
    assert more_repeats > infer
