"""The worker: one process per run. Loads the model, compresses it, runs the protocol, reports.

It never reads a sensor. Everything it prints goes to the run's worker.log. Messages to the runner
travel over a pipe as (kind, payload) tuples:
  ("phase", {"phase": ..., "t": monotonic, ...})   ("result", WorkerResult)
  ("skip", {"reason": ...})                         ("error", {"reason": ..., "traceback": ...})
The runner's forkserver preloads this module (through core.preload), so each worker starts from a
process where torch and transformers are already imported.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from energy_console.core.compression import (  # noqa: E402
    NotApplicable,
    TechniqueContext,
    apply_technique,
)
from energy_console.core.flops import changes_flops, count_flops  # noqa: E402
from energy_console.core.models import ModelLoadError, load_model  # noqa: E402
from energy_console.core.protocol import run_protocol  # noqa: E402
from energy_console.core.quality import DatasetError, evaluate, prepare_reference  # noqa: E402
from energy_console.core.records import WorkerResult  # noqa: E402
from energy_console.core.size import measure_size  # noqa: E402


def worker_entry(conn, spec, run_dir: str, cache_dir: str, runner_pid: int) -> None:
    """Process target. Never raises: every outcome is one message on the pipe."""
    with contextlib.suppress(OSError):  # its own process group: the runner stops all it starts
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is the runner's to act on
    _redirect_output(Path(run_dir) / "worker.log")
    _die_with_runner(runner_pid)

    def send(kind: str, payload: dict | WorkerResult) -> None:
        conn.send((kind, payload))

    def mark(phase: str, **fields) -> None:
        fields.setdefault("t", time.monotonic())
        send("phase", {"phase": phase, **fields})

    try:
        result = run(spec, Path(cache_dir), mark)
        send("result", result)
    except NotApplicable as exc:  # this run cannot happen here; the reason says why
        send("skip", {"reason": str(exc)})
    except (ModelLoadError, DatasetError) as exc:  # bad input: the message says the fix
        send("error", {"reason": str(exc), "traceback": ""})
    except BaseException as exc:  # the runner records it; the session goes on
        tb = traceback.format_exc()
        print(tb, file=sys.stderr)
        send("error", {"reason": f"{type(exc).__name__}: {exc}", "traceback": tb})
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        conn.close()


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise NotApplicable(
                f"device {requested!r} asked for, but torch sees no CUDA device (a CPU build of "
                "torch, or no GPU/driver); use device: cpu, or install a CUDA build of torch"
            )
        index = int(requested.split(":")[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise NotApplicable(
                f"{requested}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return f"cuda:{index}"
    return "cpu"


def run(spec, cache_dir: Path, mark) -> WorkerResult:
    device = resolve_device(spec.device)
    if spec.protocol.threads:
        torch.set_num_threads(spec.protocol.threads)
    mark("loading", device=device)
    t0 = time.monotonic()
    loaded = load_model(spec.model, device)
    load_s = time.monotonic() - t0
    if getattr(spec, "workload", "infer") == "generate":
        return run_generate(spec, loaded, device, load_s, cache_dir, mark)
    if spec.workload == "train":
        from energy_console.core.train_worker import run_train

        return run_train(spec, loaded, device, load_s, cache_dir, mark)
    if loaded.task == "object-detection":
        return run_detect(spec, loaded, device, load_s, cache_dir, mark)
    size = spec.seq_len if loaded.family == "text" else spec.resolution
    if size is None:  # task learnt from the config differs from what the plan assumed
        raise NotApplicable(
            f"{spec.model.ref} is a {loaded.task} model but the run was planned with the other "
            "input kind; add `task:` to the model in the profile"
        )

    mark("reference")
    reference = prepare_reference(loaded, spec, cache_dir)

    inputs = loaded.make_inputs(spec.batch_size, size, seed=0)
    steps = [step.name for step in spec.technique.steps]
    flops_per_batch = None if changes_flops(steps) else count_flops(loaded.module, inputs)

    mark("compressing")
    t0 = time.monotonic()
    from energy_console.core.train_worker import CompressionTrainer, saved_model

    trainer = CompressionTrainer(loaded, spec, device, mark)  # for techniques that train
    ctx = TechniqueContext(
        device=device,
        task=loaded.task,
        loaded=loaded,
        calibration_inputs=lambda: [
            loaded.make_inputs(spec.batch_size, size, seed=100 + i) for i in range(4)
        ],
        train=trainer,
    )
    module = apply_technique(loaded.module, spec.technique, ctx)
    compress_s = time.monotonic() - t0
    size_report = measure_size(module)

    inputs = _cast_inputs(inputs, ctx.input_dtype)
    if changes_flops(steps):
        flops_per_batch = count_flops(module, inputs)
    sync = torch.cuda.synchronize if device.startswith("cuda") else _no_sync
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    grad_mode = torch.no_grad if ctx.needs_no_grad else torch.inference_mode
    protocol = spec.protocol
    with grad_mode():
        measured = run_protocol(
            lambda: module(**inputs),
            sync,
            warmup=protocol.warmup,
            repeats=protocol.repeats,
            min_window_s=protocol.min_window_s,
            iterations=protocol.iterations,
            mark=mark,
        )
    peak_mem_mb = _peak_memory_mb(device)

    mark("quality")
    quality_result = evaluate(loaded, module, reference, ctx.input_dtype)

    return _worker_result(
        device, loaded, ctx, reference, measured, quality_result, size_report,
        load_s=load_s, compress_s=compress_s, peak_mem_mb=peak_mem_mb,
        warnings=tuple(reference.warnings),
        flops_per_inference=None if flops_per_batch is None
        else flops_per_batch / spec.batch_size,
        training=trainer.timings, **saved_model(module, loaded, spec, cache_dir.parent),
    )


def run_generate(spec, loaded, device: str, load_s: float, cache_dir: Path,
                 mark) -> WorkerResult:
    """A generate run: prompts, the uncompressed model's greedy outputs, compression, then
    prefill and full-generation windows (core.generate), then the fidelity of the outputs."""
    from energy_console.core.generate import batches, prepare_prompts, run_generate_protocol
    from energy_console.core.quality.eval_set import text_tokenizer
    from energy_console.core.quality.generation import (
        evaluate_generation,
        prepare_generation_reference,
    )
    from energy_console.core.workloads import GENERATE_TASKS, generation_settings

    if loaded.task not in GENERATE_TASKS or not hasattr(loaded.module, "generate"):
        raise NotApplicable(f"{spec.model.ref} is a {loaded.task} model: generate runs need a "
                            "causal LM; remove `workload: generate` from this model entry")
    settings = generation_settings(spec.model.generation)
    prompts = prepare_prompts(loaded, spec, settings)
    code_tasks = None
    if settings.pass_at_1:  # checked before any window: a dataset without tests fails fast
        from energy_console.core.datasets import dataset_spec, load_code_tasks

        code_tasks = load_code_tasks(dataset_spec(spec.model.dataset, spec.model.base_dir))
    prompt_batches = batches(prompts, spec.batch_size, device)

    mark("reference")
    reference = prepare_generation_reference(loaded, spec, prompt_batches, prompts, cache_dir)

    mark("compressing")
    t0 = time.monotonic()
    first = prompt_batches[0].inputs
    ctx = TechniqueContext(
        device=device, task=loaded.task, loaded=loaded,
        calibration_inputs=lambda: [b.inputs for b in prompt_batches[:4]] or [first],
    )
    module = apply_technique(loaded.module, spec.technique, ctx)
    compress_s = time.monotonic() - t0
    size_report = measure_size(module)
    if not hasattr(module, "generate"):
        raise NotApplicable(f"{spec.technique.slug} turns the model into a module without "
                            "generate(); it cannot run generate workloads")
    sync = torch.cuda.synchronize if device.startswith("cuda") else _no_sync
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    grad_mode = torch.no_grad if ctx.needs_no_grad else torch.inference_mode
    protocol = spec.protocol
    with grad_mode():
        measured = run_generate_protocol(
            module, prompt_batches, prompts, settings, spec.max_new_tokens, sync,
            warmup=protocol.warmup, repeats=protocol.repeats,
            min_window_s=protocol.min_window_s, iterations=protocol.iterations, mark=mark,
        )
    peak_mem_mb = _peak_memory_mb(device)

    mark("quality")  # after the windows: pass@1's subprocesses never run inside one
    quality_result = evaluate_generation(
        loaded, module, reference, prompt_batches, prompts, spec.max_new_tokens,
        text_tokenizer(loaded, spec.model), code_tasks, settings.pass_at_1_timeout_s)
    return _worker_result(
        device, loaded, ctx, reference, measured, quality_result, size_report,
        load_s=load_s, compress_s=compress_s, peak_mem_mb=peak_mem_mb,
        warnings=tuple(prompts.warnings), generation=measured.timings,
    )


CALIBRATION_BATCHES = 8  # detection: batches of the dataset's images for static quantization


def run_detect(spec, loaded, device: str, load_s: float, cache_dir: Path, mark) -> WorkerResult:
    """A detection run: images, the uncompressed model's detections, compression, then windows
    that each time pre-processing + detector + post-processing (core.detection) on one batch
    of decoded images, then mAP and fidelity-mAP."""
    from energy_console.core.detection import DetectionPipeline
    from energy_console.core.quality.detection_eval import (
        detection_images,
        evaluate_detection,
        prepare_detection_reference,
    )

    images = detection_images(loaded, spec)
    base = DetectionPipeline.for_model(loaded, spec.resolution, device)
    mark("reference")
    reference = prepare_detection_reference(loaded, spec, images, base, cache_dir)
    calibration = [{"pixel_values": base.preprocess(batch)}  # static quantization's ranges
                   for batch in images.batches(spec.batch_size, CALIBRATION_BATCHES)]
    steps = [step.name for step in spec.technique.steps]
    flops_per_batch = None if changes_flops(steps) else count_flops(loaded.module, calibration[0])

    mark("compressing")
    t0 = time.monotonic()
    ctx = TechniqueContext(device=device, task=loaded.task, loaded=loaded,
                           calibration_inputs=lambda: calibration)
    module = apply_technique(loaded.module, spec.technique, ctx)
    compress_s = time.monotonic() - t0
    size_report = measure_size(module)
    if changes_flops(steps):
        flops_per_batch = count_flops(module, _cast_inputs(calibration[0], ctx.input_dtype))
    pipeline = base.with_module(module, ctx.input_dtype)
    batch = images.batches(spec.batch_size, 1)[0]
    sync = torch.cuda.synchronize if device.startswith("cuda") else _no_sync
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    grad_mode = torch.no_grad if ctx.needs_no_grad else torch.inference_mode
    protocol = spec.protocol
    with grad_mode():
        measured = run_protocol(lambda: pipeline(batch), sync, warmup=protocol.warmup,
                                repeats=protocol.repeats, min_window_s=protocol.min_window_s,
                                iterations=protocol.iterations, mark=mark)
    peak_mem_mb = _peak_memory_mb(device)

    mark("quality")
    quality_result = evaluate_detection(pipeline, images, reference, spec.batch_size)
    return _worker_result(
        device, loaded, ctx, reference, measured, quality_result, size_report,
        load_s=load_s, compress_s=compress_s, peak_mem_mb=peak_mem_mb, warnings=(),
        flops_per_inference=None if flops_per_batch is None
        else flops_per_batch / spec.batch_size,
    )


def _worker_result(device: str, loaded, ctx, reference, measured, quality, size_report, *,
                   load_s: float, compress_s: float, peak_mem_mb: float,
                   warnings: tuple[str, ...], **workload_figures: Any) -> WorkerResult:
    """What both workloads send back; `warnings` are the workload's own, `workload_figures`
    its extra WorkerResult fields (flops, generation timings)."""
    return WorkerResult(
        device=device,
        task=loaded.task,
        iterations=tuple(measured.iterations),
        latencies_ms=tuple(tuple(r) for r in measured.latencies_ms),
        first_warmup_t=measured.first_warmup_t,
        load_s=load_s,
        compress_s=compress_s,
        size_bytes=size_report.size_bytes,
        params=size_report.params,
        nonzero_params=size_report.nonzero_params,
        dtype_bytes=dict(size_report.dtype_bytes),
        peak_mem_mb=peak_mem_mb,
        quality=quality,
        warnings=tuple(ctx.warnings) + tuple(loaded.notes) + warnings + tuple(quality.warnings),
        reference_seconds=reference.seconds,
        reference_cache_hit=reference.cache_hit,
        technique_details=dict(ctx.extra_result),
        torch_threads=torch.get_num_threads(),
        runtime=ctx.runtime,
        **workload_figures,
    )


def _cast_inputs(inputs: dict, dtype) -> dict:
    if dtype is None:
        return inputs
    return {
        k: v.to(dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v
        for k, v in inputs.items()
    }


def _no_sync() -> None:
    pass


def _peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _redirect_output(log_path: Path) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def _die_with_runner(runner_pid: int) -> None:
    """A worker must never outlive its runner, even one killed with SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    def watch() -> None:
        while True:
            try:
                os.kill(runner_pid, 0)
            except ProcessLookupError:
                os._exit(3)
            time.sleep(0.5)

    threading.Thread(target=watch, name="runner-watch", daemon=True).start()
