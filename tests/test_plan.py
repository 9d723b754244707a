from energy_console.core.plan import expand
from energy_console.core.profile import parse_profile

PROFILE = """\
name: plan
models: [demo/tiny-bert-random, demo/tiny-resnet-random]
techniques: [dynamic-int8, baseline, {chain: [bf16, dynamic-int8]}]
inputs: {batch_sizes: [1, 4], sequence_lengths: [16, 32, 64], resolutions: [32]}
"""


def test_every_model_size_and_technique_combination_is_one_run():
    specs = expand(parse_profile(PROFILE))
    # text model: 2 batch sizes x 3 lengths x 3 techniques; image: 2 x 1 x 3
    assert len(specs) == 18 + 6
    assert len({s.run_id for s in specs}) == len(specs)
    assert [s.index for s in specs] == list(range(len(specs)))


def test_run_ids_are_readable_and_stable():
    ids = [s.run_id for s in expand(parse_profile(PROFILE))]
    assert "tiny-bert-random__dynamic-int8__b1-s16" in ids
    assert "tiny-bert-random__bf16+dynamic-int8__b4-s64" in ids
    assert "tiny-resnet-random__baseline__b4-r32" in ids
    assert ids == [s.run_id for s in expand(parse_profile(PROFILE))]


def test_image_models_use_resolutions_and_text_models_sequence_lengths():
    for spec in expand(parse_profile(PROFILE)):
        if "resnet" in spec.run_id:
            assert spec.resolution == 32 and spec.seq_len is None
        else:
            assert spec.seq_len in (16, 32, 64) and spec.resolution is None


def test_the_baseline_runs_first_for_each_model_and_input_size():
    specs = expand(parse_profile(PROFILE))
    for i in range(0, len(specs), 3):
        assert specs[i].technique.is_baseline


def test_runs_already_finished_are_left_out():
    profile = parse_profile(PROFILE)
    done = {"tiny-bert-random__baseline__b1-s16", "tiny-resnet-random__baseline__b4-r32"}
    specs = expand(profile, done=done)
    assert len(specs) == 22
    assert not done & {s.run_id for s in specs}


def test_the_device_override_wins():
    specs = expand(parse_profile(PROFILE), device="cuda:1")
    assert {s.device for s in specs} == {"cuda:1"}
