from energy_console.core.session.plan import dominates, expand, plan_batches
from energy_console.core.session.profile_check import parse_profile

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


def test_the_baseline_variant_runs_first_for_each_model():
    specs = expand(parse_profile(PROFILE))
    firsts = {}
    for spec in specs:
        firsts.setdefault(spec.model.ref, spec)
    assert all(spec.technique.is_baseline for spec in firsts.values())


def test_each_variant_is_one_batch_of_its_sizes_smallest_first():
    batches = plan_batches(parse_profile(PROFILE))
    # text model: 3 techniques x (2 batch sizes x 3 lengths); image: 3 x 2
    assert [len(b.runs) for b in batches] == [6, 6, 6, 2, 2, 2]
    first = batches[0]
    assert first.label == "demo/tiny-bert-random · baseline"
    assert [(r.batch_size, r.seq_len) for r in first.runs] == [
        (1, 16), (1, 32), (1, 64), (4, 16), (4, 32), (4, 64)]
    assert {(r.model.ref, r.technique.slug) for b in batches for r in b.runs[:1]} == {
        (r.model.ref, r.technique.slug) for r in expand(parse_profile(PROFILE))}
    flat = [r.run_id for b in batches for r in b.runs]
    assert flat == [s.run_id for s in expand(parse_profile(PROFILE))]


def test_a_size_dominates_only_when_no_dimension_is_smaller():
    runs = {(r.batch_size, r.seq_len): r for r in plan_batches(parse_profile(PROFILE))[0].runs}
    assert dominates(runs[(4, 32)], runs[(1, 32)])
    assert dominates(runs[(1, 32)], runs[(1, 32)])
    assert not dominates(runs[(4, 16)], runs[(1, 32)])
    assert not dominates(runs[(1, 16)], runs[(1, 32)])


def test_runs_already_finished_are_left_out():
    profile = parse_profile(PROFILE)
    done = {"tiny-bert-random__baseline__b1-s16", "tiny-resnet-random__baseline__b4-r32"}
    specs = expand(profile, done=done)
    assert len(specs) == 22
    assert not done & {s.run_id for s in specs}


def test_the_device_override_wins():
    specs = expand(parse_profile(PROFILE), device="cuda:1")
    assert {s.device for s in specs} == {"cuda:1"}


def test_each_train_run_is_a_batch_of_its_own():
    profile = parse_profile("""\
name: train-plan
models:
  - demo: demo/tiny-bert-random
    workload: train
    dataset: data/sentiment-mini.csv
techniques: [baseline]
inputs: {batch_sizes: [1], sequence_lengths: [16, 32]}
""")
    batches = plan_batches(profile)
    assert [[r.seq_len for r in b.runs] for b in batches] == [[16], [32]]
