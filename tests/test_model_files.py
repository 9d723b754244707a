"""The factory and ONNX sources without a session: what a profile may say, what loading runs
and refuses, and what a graph's signature tells."""

from __future__ import annotations

import pytest
from energy_console.core.models import ModelLoadError, load_model, source_for
from energy_console.core.models.base import NotApplicable
from energy_console.core.session.plan import model_task
from energy_console.core.session.profile_check import load_profile, parse_profile
from energy_console.core.spec.profile import ProfileError

MODULE = """\
import torch

class Tiny(torch.nn.Module):
    def __init__(self, classes, width=4):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, width),
                                       torch.nn.Linear(width, classes))

    def forward(self, pixels):
        return self.net(pixels)
"""


def factory_profile(folder, options: str, package: str = "labnets"):
    """A profile naming <package>.tiny:Tiny, a module beside it (each test its own package:
    a module imported once stays imported in this process)."""
    (folder / package).mkdir(exist_ok=True)
    (folder / package / "__init__.py").write_text("")
    (folder / package / "tiny.py").write_text(MODULE)
    path = folder / "p.yaml"
    path.write_text(f"name: t\nmodels:\n  - factory: {package}.tiny:Tiny\n"
                    f"    task: image-classification\n{options}")
    return load_profile(path).models[0]


def test_a_factory_module_beside_the_profile_is_imported_and_its_weights_loaded(tmp_path):
    import torch

    torch.manual_seed(3)
    namespace: dict = {}
    exec(compile(MODULE, "tiny", "exec"), namespace)  # the same class, to write its weights
    trained = namespace["Tiny"](2, width=4)
    torch.save(trained.state_dict(), tmp_path / "tiny.pt")
    entry = factory_profile(tmp_path, "    args: [2]\n    weights: tiny.pt\n"
                                      "    input_shape: [3, 8, 8]\n")
    assert model_task(entry) == "image-classification"
    loaded = load_model(entry, "cpu")
    pixels = loaded.make_inputs(2, 8)["pixel_values"]
    assert torch.equal(loaded.module(pixel_values=pixels).logits, trained(pixels))
    assert loaded.notes == []  # weights given: no note that they are the callable's own
    with pytest.raises(NotApplicable, match="takes 8×8 images only"):
        loaded.make_inputs(2, 16)


def test_factory_weights_that_do_not_fit_and_a_missing_module_say_the_fix(tmp_path):
    import torch

    torch.save({"other.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    entry = factory_profile(tmp_path, "    args: [2]\n    weights: bad.pt\n", "labnets_bad")
    with pytest.raises(ModelLoadError, match="do not fit the model"):
        load_model(entry, "cpu")
    gone = factory_profile(tmp_path, "", "labnets_gone")
    (tmp_path / "labnets_gone" / "tiny.py").unlink()
    assert "no module 'labnets_gone.tiny'" in str(source_for("factory").preflight(gone))


def test_a_factory_module_is_imported_from_the_folder_named_and_a_missing_one_says_the_fix(
        tmp_path):
    """`folder:` (relative to the profile's folder): where a copy of the profile elsewhere (the
    console's, a session's) finds the module that lay beside the original."""
    import torch

    code = tmp_path / "code"
    code.mkdir()
    factory_profile(code, "", "labnets_far")  # the module under code/
    profile = tmp_path / "profiles" / "p.yaml"
    profile.parent.mkdir()
    text = ("name: t\nmodels:\n  - factory: labnets_far.tiny:Tiny\n"
            "    task: image-classification\n    args: [2]\n")
    profile.write_text(text)  # checked before the module is imported (then sys.path has it)
    why = source_for("factory").preflight(load_profile(profile).models[0])
    assert "no module 'labnets_far.tiny' in the profile's folder" in why
    assert "name its folder with `folder:`" in why
    profile.write_text(text + "    folder: ../nowhere\n")
    why = source_for("factory").preflight(load_profile(profile).models[0])
    assert why.endswith("nowhere' does not exist; name the folder its module is in")

    profile.write_text(text + "    folder: ../code\n")
    entry = load_profile(profile).models[0]
    assert source_for("factory").preflight(entry) is None
    logits = load_model(entry, "cpu").module(pixel_values=torch.zeros(1, 3, 8, 8)).logits
    assert logits.shape == (1, 2)


def test_factory_options_of_the_wrong_shape_are_refused_by_key():
    bad = {"input_shape: [3, -1]": "models[0].input_shape",
           "preprocessing: {mean: [0.5], std: [0]}": "models[0].preprocessing",
           "kwargs: [1]": "models[0].kwargs", "colour: red": "models[0].colour",
           "folder: [a]": "models[0].folder"}
    for option, key in bad.items():
        with pytest.raises(ProfileError, match=key.replace("[", r"\[").replace("]", r"\]")):
            parse_profile("name: t\nmodels:\n  - factory: m:f\n    task: image-classification\n"
                          f"    {option}\n")
    with pytest.raises(ProfileError, match="package.module:callable"):
        parse_profile("name: t\nmodels: [{factory: not a callable}]\n")


def graph(path, input_dims, output_dims, input_name="input_1"):
    """A one-node ONNX graph: a float input of `input_dims`, flattened to `output_dims`."""
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Flatten", [input_name], ["logits"], axis=1)
    model = helper.make_model(helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_dims)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, output_dims)]),
        opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_a_channels_last_graph_is_read_as_an_image_model_of_its_fixed_size(tmp_path):
    import torch

    graph(tmp_path / "keras.onnx", ["batch", 4, 4, 3], ["batch", 48])
    profile = parse_profile("name: t\nmodels: [keras.onnx]\n", base_dir=str(tmp_path))
    entry = profile.models[0]
    assert (entry.source, model_task(entry)) == ("onnx", "image-classification")
    loaded = load_model(entry, "cpu")
    assert loaded.runtime == "onnxruntime"
    pixels = loaded.make_inputs(2, 4)["pixel_values"]  # N, C, H, W as every image model
    out = loaded.module(pixel_values=pixels).logits
    assert torch.equal(out, pixels.permute(0, 2, 3, 1).reshape(2, 48))  # transposed on the way
    with pytest.raises(NotApplicable, match="takes 4×4 images only"):
        loaded.make_inputs(1, 8)


def test_an_onnx_file_that_is_missing_or_not_a_graph_says_so(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    profile = parse_profile("name: t\nmodels: [gone.onnx, {onnx: junk.onnx, "
                            "task: image-classification}]\n", base_dir=str(tmp_path))
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(profile.models[0], "cpu")
    with pytest.raises(ModelLoadError, match="is not an ONNX model"):
        load_model(profile.models[1], "cpu")


def loads(module: str) -> bool:
    from energy_console.core.models.base import NotApplicable
    from energy_console.core.models.timm_models import timm_module
    from energy_console.core.models.torchvision_models import torchvision_module

    try:
        {"torchvision": torchvision_module, "timm": timm_module}[module]()
    except NotApplicable:
        return False
    return True


def test_torchvision_preprocessing_and_labels_come_from_the_weights_metadata():
    from types import SimpleNamespace

    from energy_console.core.models.torchvision_models import (
        detection_labels,
        preprocessing_from_transforms,
    )

    # the attributes of torchvision's ImageClassification preset (ResNet18_Weights.DEFAULT)
    preset = SimpleNamespace(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225],
                             crop_size=[224], interpolation=SimpleNamespace(value="bilinear"))
    processed = preprocessing_from_transforms(preset)
    assert processed.image_mean == (0.485, 0.456, 0.406) and processed.size == 224
    assert processed.interpolation == "bilinear"
    assert detection_labels(["__background__", "person", "N/A", "car"]) == ["person", "N/A",
                                                                           "car"]


def test_timm_preprocessing_fixed_size_and_labels_come_from_the_pretrained_config():
    from energy_console.core.models.timm_models import (
        fixed_size,
        label_names,
        preprocessing_from_config,
    )

    config = {"input_size": (3, 224, 224), "interpolation": "bicubic", "mean": (0.5, 0.5, 0.5),
              "std": (0.5, 0.5, 0.5), "crop_pct": 0.875, "fixed_input_size": True,
              "label_names": ["daisy", "rose"]}
    processed = preprocessing_from_config(config)
    assert (processed.size, processed.interpolation) == (224, "bicubic")
    assert fixed_size(config) == 224 and fixed_size({"input_size": (3, 224, 224)}) is None
    assert label_names(config, 2) == ["daisy", "rose"] and label_names(config, 102) is None


def test_torchvision_and_timm_entries_know_their_task_before_loading():
    profile = parse_profile("name: t\nmodels: [{torchvision: resnet18, weights: DEFAULT}, "
                            "{torchvision: ssdlite320_mobilenet_v3_large}, "
                            "{timm: mixer_b16_224, checkpoint: mixer.pt}]\n")
    assert [model_task(m) for m in profile.models] == [
        "image-classification", "object-detection", "image-classification"]
    assert profile.models[2].options == {"checkpoint": "mixer.pt"}


@pytest.mark.parametrize("source,ref", [("torchvision", "resnet18"), ("timm", "resnet18")])
def test_a_source_whose_library_does_not_load_is_skipped_with_the_install_command(source, ref):
    if loads(source):
        pytest.skip(f"{source} loads here: its models are loaded by the test below")
    entry = parse_profile(f"name: t\nmodels: [{{{source}: {ref}}}]\n").models[0]
    assert "pip install 'energy-console[" in source_for(source).preflight(entry)
    with pytest.raises(NotApplicable, match=r"pip install 'energy-console\["):
        load_model(entry, "cpu")


def test_a_torchvision_classifier_with_a_state_dict_runs_like_any_model(tmp_path):
    if not loads("torchvision"):
        pytest.skip("torchvision does not load with this torch (no wheel, or a CUDA wheel: "
                    "`operator torchvision::nms does not exist`)")
    import torch
    import torchvision

    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), tmp_path / "r.pt")
    (tmp_path / "p.yaml").write_text("name: t\nmodels: [{torchvision: resnet18, weights: r.pt, "
                                     "kwargs: {num_classes: 3}}]\n")
    loaded = load_model(load_profile(tmp_path / "p.yaml").models[0], "cpu")
    assert loaded.module(**loaded.make_inputs(2, 64)).logits.shape == (2, 3)


def test_a_timm_model_of_fixed_input_size_takes_that_resolution_only():
    if not loads("timm"):
        pytest.skip("timm is not installed, or needs a torchvision that does not load with this "
                    "torch")
    entry = parse_profile("name: t\nmodels: [{timm: vit_tiny_patch16_224, "
                          "kwargs: {num_classes: 3}}]\n").models[0]
    loaded = load_model(entry, "cpu")
    assert loaded.module(**loaded.make_inputs(1, 224)).logits.shape == (1, 3)
    with pytest.raises(NotApplicable, match="224×224 images only"):
        loaded.make_inputs(1, 64)


def test_a_source_s_own_keys_are_written_back_as_the_user_wrote_them():
    text = ("name: t\nmodels:\n  - factory: labnets.cnn:SmallCNN\n    task: image-classification\n"
            "    kwargs: {width: 8}\n    weights: cnn.pt\n    input_shape: [3, 32, 32]\n"
            "  - {onnx: m.onnx, preprocessing: {mean: [0.5], std: [0.25]}}\n")
    profile = parse_profile(text)
    again = parse_profile(profile.to_yaml())
    assert again.models == profile.models
    assert again.models[0].short_name == "SmallCNN"
