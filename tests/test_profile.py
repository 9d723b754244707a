import re
from pathlib import Path

import pytest
from energy_console.core.session.profile_check import load_profile, parse_profile
from energy_console.core.spec.profile import ProfileError

ROOT = Path(__file__).resolve().parent.parent

VALID = """\
name: demo
device: cpu
models:
  - demo/tiny-bert-random
  - hf: bert-base-uncased
    task: text-classification
  - path: ./my-model
    task: text-classification
techniques:
  - baseline
  - dynamic-int8
  - bf16
  - chain: [bf16, baseline]
inputs:
  batch_sizes: [1, 8]
  sequence_lengths: [32, 128]
  resolutions: [64, 224]
protocol:
  idle_seconds: 2
  warmup: 5
  min_window_s: 1.0
  repeats: 3
  sample_hz: 20
  cooldown_s: 1.5
  threads: 2
carbon:
  intensity_g_per_kwh: 400
"""


def test_the_documented_shape_loads_with_every_field():
    profile = parse_profile(VALID)
    assert profile.name == "demo"
    assert profile.device == "cpu"
    assert [m.source for m in profile.models] == ["demo", "hf", "path"]
    assert profile.models[1].task == "text-classification"
    assert [t.slug for t in profile.techniques] == ["baseline", "dynamic-int8", "bf16",
                                                    "bf16+baseline"]
    assert profile.inputs.batch_sizes == (1, 8)
    assert profile.protocol.repeats == 3
    assert profile.protocol.cooldown_s == 1.5 and profile.protocol.threads == 2
    assert profile.carbon.intensity_g_per_kwh == 400


def test_saving_and_loading_again_gives_the_same_profile(tmp_path):
    profile = parse_profile(VALID, base_dir=str(tmp_path))
    again = parse_profile(profile.to_yaml(), base_dir=str(tmp_path))
    assert again == profile


def test_shipped_profiles_are_valid():
    paths = [*(ROOT / "profiles").glob("*.yaml"), *(ROOT / "tests" / "profiles").glob("*.yaml")]
    assert len(paths) >= 2
    for path in paths:
        assert load_profile(path).models


def test_the_documented_examples_load():
    manual = (ROOT / "docs" / "profiles.md").read_text(encoding="utf-8")
    examples = re.findall(r"```yaml\n(.*?)```", manual, re.S)
    assert examples
    for example in examples:
        profile = parse_profile(example, source="docs/profiles.md")
        assert profile.models and profile.techniques
        assert parse_profile(profile.to_yaml()) == profile


@pytest.mark.parametrize(
    "change, key, words, line",
    [
        ("  repeats: 3", "protocol.repeats", ["0", "integer >= 1"], 22),
        ("  - bf16", "techniques[2]", ["unknown technique 'int3'", "dynamic-int8"], 12),
        ("device: cpu", "device", ["'gpu'", "auto, cpu, cuda"], 2),
        ("  - demo/tiny-bert-random", "models[0]", ["unknown demo model", "tiny-vit-random"], 4),
        ("  batch_sizes: [1, 8]", "inputs.batch_sizes[1]", ["-8", "integer >= 1"], 15),
    ],
)
def test_a_bad_value_names_the_key_the_value_what_is_allowed_and_the_line(change, key, words,
                                                                            line):
    replacements = {
        "  repeats: 3": "  repeats: 0",
        "  - bf16": "  - int3",
        "device: cpu": "device: gpu",
        "  - demo/tiny-bert-random": "  - demo/tiny-llama",
        "  batch_sizes: [1, 8]": "  batch_sizes: [1, -8]",
    }
    text = VALID.replace(change, replacements[change], 1)
    with pytest.raises(ProfileError) as info:
        parse_profile(text, source="p.yaml")
    message = str(info.value)
    assert info.value.key == key
    assert info.value.line == line
    assert message.startswith(f"p.yaml, line {line}: {key}:")
    for word in words:
        assert word in message


def test_an_unknown_key_lists_the_allowed_ones():
    with pytest.raises(ProfileError) as info:
        parse_profile(VALID.replace("  warmup: 5", "  warmups: 5"))
    assert "unknown key 'warmups'" in str(info.value)
    assert "warmup" in str(info.value).split("allowed here:")[1]
    assert info.value.line == 20


def test_broken_yaml_reports_its_line():
    with pytest.raises(ProfileError) as info:
        parse_profile("name: x\nmodels: [a\n")
    assert "not valid YAML" in str(info.value)
    assert info.value.line is not None


def test_technique_parameters_are_checked():
    text = VALID.replace("  - bf16\n", "  - {dynamic-int8: {bits: 4}}\n")
    with pytest.raises(ProfileError) as info:
        parse_profile(text)
    assert "unknown parameter(s) bits" in str(info.value)


def test_a_missing_profile_file_says_where_profiles_are(tmp_path):
    with pytest.raises(ProfileError) as info:
        load_profile(tmp_path / "nope.yaml")
    assert "no profile file" in str(info.value)


def test_local_paths_resolve_from_the_profiles_folder(tmp_path):
    (tmp_path / "p.yaml").write_text(VALID)
    profile = load_profile(tmp_path / "p.yaml")
    assert profile.models[2].resolved_ref == str((tmp_path / "my-model").resolve())
