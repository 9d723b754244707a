"""The onnx-qdq-* variants' calibration (core.compression.onnx_qdq.minmax_ranges): the ranges
onnxruntime's own MinMax calibrator finds, read in one pass, and the quantized graph onnxruntime
makes from them byte for byte the one it makes calibrating itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the `onnx` extra (in `dev`) has onnxruntime")
# the exporter the product uses (core.compression.onnx_graph): torch warns that it is the old one
pytestmark = pytest.mark.filterwarnings(
    "ignore:You are using the legacy TorchScript:DeprecationWarning")


class SmallNet:
    """A graph with the ops the quantizer handles (Conv, Relu, MatMul/Gemm, Add), exported."""

    @staticmethod
    def export(path: Path) -> Path:
        import torch

        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 8), torch.nn.ReLU(),
            torch.nn.Linear(8, 3)).eval()
        torch.onnx.export(net, (torch.zeros(1, 3, 8, 8),), str(path), input_names=["pixels"],
                          output_names=["logits"], dynamo=False)
        return path


def feeds(count: int = 3) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [{"pixels": rng.normal(size=(1, 3, 8, 8)).astype(np.float32) * (i + 1)}
            for i in range(count)]


def onnxruntime_calibration(path: Path, tmp_path: Path, batches: list[dict]):
    from energy_console.core.compression.onnx_qdq import quantized_op_types
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            return next(self.batches, None)

    calibrator = create_calibrator(path, list(quantized_op_types()),
                                   augmented_model_path=str(tmp_path / "augmented.onnx"),
                                   calibrate_method=CalibrationMethod.MinMax)
    calibrator.collect_data(Batches())
    return calibrator.compute_data(), Batches


def test_the_ranges_are_those_onnxruntimes_calibrator_finds(tmp_path):
    from energy_console.core.compression.onnx_qdq import minmax_ranges

    graph = SmallNet.export(tmp_path / "net.onnx")
    theirs, _ = onnxruntime_calibration(graph, tmp_path, feeds())
    ours = minmax_ranges(str(graph), feeds())
    assert ours.calibration_method == theirs.calibration_method
    assert set(ours) == set(theirs) and len(theirs.data) >= 8
    for name, expected in theirs.items():
        for got, want in zip(ours[name].range_value, expected.range_value, strict=True):
            assert (got.dtype, got.shape) == (want.dtype, want.shape), name
            assert np.array_equal(got, want), name


@pytest.mark.parametrize("activations", ["uint8", "int16"])
def test_the_quantized_graph_is_the_one_onnxruntime_makes_calibrating_itself(tmp_path,
                                                                              activations):
    from energy_console.core.compression.onnx_qdq import quantize_qdq
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    graph = SmallNet.export(tmp_path / "net.onnx")
    quantize_qdq(str(graph), str(tmp_path / "ours.onnx"), feeds(), activations)
    _, Batches = onnxruntime_calibration(graph, tmp_path, feeds())
    int16 = activations == "int16"
    quantize_static(str(graph), str(tmp_path / "theirs.onnx"), Batches(),
                    quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt16 if int16 else QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                    extra_options={"ActivationSymmetric": int16})
    ours, theirs = (tmp_path / "ours.onnx").read_bytes(), (tmp_path / "theirs.onnx").read_bytes()
    assert b"QuantizeLinear" in ours and ours == theirs
