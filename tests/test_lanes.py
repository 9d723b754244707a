"""Choosing GPUs for lanes (--gpus), pinning a run to one, and the profile keys for sweeps."""

from __future__ import annotations

import pytest
from energy_console.core.scale.lanes import resolve_gpus, torch_index
from energy_console.core.scale.placement import Here, dispatch_for, runs_go_to
from energy_console.core.session.port import HERE
from energy_console.core.session.profile_check import parse_profile
from energy_console.core.spec.profile import ProfileError

NAMES = {0: "NVIDIA H100 80GB HBM3", 1: "NVIDIA H100 80GB HBM3", 2: "NVIDIA A100-SXM4-80GB"}
BASE = "name: sweep\nmodels: [demo/tiny-bert-random]\n"


def test_all_means_every_gpu_nvml_sees_and_a_list_keeps_its_order_once():
    assert resolve_gpus("all", NAMES) == (0, 1, 2)
    assert resolve_gpus("2,0,2", NAMES) == (2, 0)


@pytest.mark.parametrize("text, words", [
    ("0,5", "[5] not among them"), ("x", "expected `all` or GPU indexes"),
    (",", "none given"),
])
def test_gpus_this_machine_lacks_are_named_with_what_it_has(text, words):
    with pytest.raises(ValueError) as info:
        resolve_gpus(text, NAMES)
    assert words in str(info.value)


def test_all_on_a_machine_without_gpus_says_so():
    with pytest.raises(ValueError, match="NVML finds no GPU"):
        resolve_gpus("all", {})


def test_a_pinned_gpu_model_refuses_the_other_gpus_by_name():
    assert resolve_gpus("0,1", NAMES, gpu_model="h100") == (0, 1)
    with pytest.raises(ValueError) as info:
        resolve_gpus("all", NAMES, gpu_model="H100")
    assert "2 (NVIDIA A100-SXM4-80GB)" in str(info.value)


def test_torch_numbers_gpus_as_cuda_visible_devices_lists_them():
    assert torch_index(5, "3,5") == 1
    assert torch_index(2, None) == 2


def test_exclusive_and_gpu_model_load_and_save():
    profile = parse_profile(BASE + "exclusive: true\ngpu_model: H100\n")
    assert profile.exclusive and profile.gpu_model == "H100"
    assert parse_profile(profile.to_yaml()) == profile
    assert not parse_profile(BASE).exclusive


@pytest.mark.parametrize("line, words", [
    ("exclusive: 1", "expected true or false"), ("gpu_model: ''", "part of a GPU's name"),
])
def test_bad_sweep_keys_are_named(line, words):
    with pytest.raises(ProfileError) as info:
        parse_profile(BASE + line + "\n")
    assert words in str(info.value)


def test_each_choice_of_where_runs_go_gives_the_runner_its_locks_and_record():
    assert dispatch_for(Here()) is HERE and runs_go_to(None, None) == Here()
    lanes = dispatch_for(runs_go_to((0, 2), None))
    assert (lanes.gpus, lanes.locks_here, lanes.spread) == ((0, 2), True, {"gpus": [0, 2]})
    ray = dispatch_for(runs_go_to(None, "auto"))
    assert (ray.gpus, ray.locks_here, ray.spread) == (None, False, {"ray": "auto"})
