"""onnx-qdq-* calibration: the one-pass MinMax ranges (core.compression.onnx_qdq.minmax_ranges)
against onnxruntime's own MinMax calibrator, on an exported BERT classifier of --layers layers
(12: BERT-base's graph, about 530 calibrated tensors, at tiny widths so that it exports in
seconds; the calibrator's cost grows with the graph's node count, not its widths).

Each run times, in CPU seconds of this process (onnxruntime on one thread): the ranges alone, and
the whole static quantization (ranges + onnxruntime's QDQ quantizer) both ways, and checks that
the two quantized graphs are the same bytes. Medians over --runs; other processes on the machine
move single runs.

    .venv/bin/python bench/bench_onnx_calibration.py [--layers 12] [--runs 3] [--batches 8]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def export_bert(folder: Path, layers: int) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=256, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=64)).eval()
    path = folder / "bert.onnx"
    torch.onnx.export(model, (torch.randint(0, 256, (1, 16)),), str(path),
                      input_names=["input_ids"], output_names=["logits"], dynamo=False)
    return path


def onnxruntime_ranges(graph: Path, feeds: list[dict], folder: Path):
    from energy_console.core.compression.onnx_qdq import quantized_op_types
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    calibrator = create_calibrator(graph, list(quantized_op_types()),
                                   augmented_model_path=str(folder / "augmented.onnx"),
                                   calibrate_method=CalibrationMethod.MinMax)
    calibrator.collect_data(Batches(feeds))
    return calibrator.compute_data()


class Batches:
    def __init__(self, feeds: list[dict]):
        self.feeds = iter(feeds)

    def get_next(self):
        return next(self.feeds, None)


def onnxruntime_quantized(graph: Path, target: Path, feeds: list[dict]) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(str(graph), str(target), Batches(feeds), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                    extra_options={"ActivationSymmetric": False})


def cpu_s(call) -> tuple[float, object]:
    start = time.process_time()
    result = call()
    return time.process_time() - start, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=8)
    args = parser.parse_args()

    import numpy as np
    import onnxruntime
    import torch
    from energy_console.core.compression.onnx_qdq import minmax_ranges, quantize_qdq

    torch.set_num_threads(1)
    onnxruntime.set_default_logger_severity(3)
    logging.disable(logging.WARNING)  # the quantizer's advice on pre-processing
    rng = np.random.default_rng(0)
    feeds = [{"input_ids": rng.integers(0, 256, (1, 16), dtype=np.int64)}
             for _ in range(args.batches)]
    times: dict[str, list[float]] = {k: [] for k in ("ours", "theirs", "ours_q", "theirs_q")}
    with tempfile.TemporaryDirectory(prefix="bench-onnx-calibration-") as tmp:
        folder = Path(tmp)
        graph = export_bert(folder, args.layers)
        tensors = 0
        for _ in range(args.runs):
            seconds, ours = cpu_s(lambda: minmax_ranges(str(graph), feeds))
            times["ours"].append(seconds)
            tensors = len(ours.data)
            times["theirs"].append(cpu_s(lambda: onnxruntime_ranges(graph, feeds, folder))[0])
            times["ours_q"].append(cpu_s(lambda: quantize_qdq(
                str(graph), str(folder / "ours.onnx"), feeds, "uint8"))[0])
            times["theirs_q"].append(cpu_s(lambda: onnxruntime_quantized(
                graph, folder / "theirs.onnx", feeds))[0])
        same = (folder / "ours.onnx").read_bytes() == (folder / "theirs.onnx").read_bytes()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"BERT graph, {args.layers} layers, {tensors} calibrated tensors, {args.batches} "
          f"batches, {args.runs} runs (median CPU s)")
    print(f"  ranges:        one pass {med['ours']:.2f} s   onnxruntime's calibrator "
          f"{med['theirs']:.2f} s   ({med['theirs'] / med['ours']:.1f}x)")
    print(f"  quantization:  one pass {med['ours_q']:.2f} s   onnxruntime's own "
          f"{med['theirs_q']:.2f} s   ({med['theirs_q'] / med['ours_q']:.1f}x)")
    print(f"  quantized graphs identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
