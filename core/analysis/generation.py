"""The generation section of a report: for generate runs, latency to the first token and per
token, energy per output token, prefill and decode energy, each with its 95 % interval, and what
every variant was fed (the same prompts, whole passes) and made (fixed or natural length)."""

from __future__ import annotations

import io

from energy_console.core.analysis.numbers import format_energy, format_latency
from energy_console.core.analysis.tables import fitted_table
from energy_console.core.spec.text import printable
from energy_console.core.store.records import RunRecord

GENERATION_COLUMNS = ("model", "technique", "input", "J/output token", "TTFT p50", "TPOT p50",
                      "prefill p50", "prefill E/prompt", "decode E/prompt", "decode tok/s",
                      "e2e tok/s", "length", "output tokens", "prompts", "prompt ppl")
ESSENTIAL_GENERATION_COLUMNS = 4  # model, technique, input, J/output token always stay
GENERATION_NOTE = (
    "Generation: ± is the 95 % interval (latencies: of the median over calls or decode steps). "
    "Every per-output-token figure divides by all tokens made; prefill + decode energy per "
    "prompt make one prompt's generation. Each variant was fed whole passes over the same "
    "prompts (`prompts`: their ids, then mean prompt tokens); `fixed` length made exactly "
    "max_new_tokens per prompt, `natural` stopped at EOS. `prompt ppl` is the perplexity of the "
    "prompts' own tokens, not of a text.")


def generation_records(records: list[RunRecord]) -> list[RunRecord]:
    return [r for r in records if r.finished and r.workload == "generate"]


def generation_cells(r: RunRecord) -> dict[str, str]:
    """One generate run's cells, by GENERATION_COLUMNS header."""
    length = {True: "fixed", False: "natural", None: ""}[r.fixed_length]
    prompts = r.prompt_ids or "?"
    if r.prompt_tokens is not None:
        prompts += f" ({r.prompt_tokens:.3g} tok)"
    return {
        "model": r.model_label, "technique": r.technique, "input": r.input_size,
        "J/output token": format_energy(r.energy_j_per_output_token,
                                        ci95=r.energy_j_per_output_token_ci95),
        "TTFT p50": format_latency(r.ttft_ms_p50, ci95=r.ttft_ms_p50_ci95),
        "TPOT p50": format_latency(r.tpot_ms_p50, ci95=r.tpot_ms_p50_ci95),
        "prefill p50": format_latency(r.prefill_latency_ms_p50,
                                      ci95=r.prefill_latency_ms_p50_ci95),
        "prefill E/prompt": format_energy(r.prefill_energy_j_per_inference,
                                          ci95=r.prefill_energy_j_per_inference_ci95),
        "decode E/prompt": format_energy(r.decode_energy_j_per_inference,
                                         ci95=r.decode_energy_j_per_inference_ci95),
        "decode tok/s": _rate(r.decode_tokens_per_s),
        "e2e tok/s": _rate(r.e2e_tokens_per_s),
        "length": length,
        "output tokens": "-" if r.output_tokens is None else f"{r.output_tokens:.3g}",
        "prompts": prompts,
        "prompt ppl": ("-" if r.quality_metric != "prompt_perplexity" or r.quality_value is None
                       else f"{r.quality_value:.4g}"),
    }


def _rate(per_s: float | None) -> str:
    return "-" if per_s is None else f"{per_s:.3g}"


def generation_table(records: list[RunRecord], width: int):
    """A rich Table of the generate runs, as many columns as fit in `width`; None without any."""
    runs = generation_records(records)
    if not runs:
        return None
    return fitted_table(f"generation: {len(runs)} runs", GENERATION_COLUMNS,
                        [generation_cells(r) for r in runs], ESSENTIAL_GENERATION_COLUMNS, width)


def generation_text(records: list[RunRecord], width: int) -> str:
    """The `report` table format's generation section: the table and its note; "" without
    generate runs."""
    from rich.console import Console

    table = generation_table(records, width)
    if table is None:
        return ""
    out = io.StringIO()
    console = Console(width=width, file=out, color_system=None, force_terminal=False)
    console.print(table)
    console.print(GENERATION_NOTE, markup=False, highlight=False)
    return printable(out.getvalue(), one_line=False)


def generation_markdown(records: list[RunRecord]) -> list[str]:
    """report.md's `## Generation` section (no lines without generate runs)."""
    runs = generation_records(records)
    if not runs:
        return []
    lines = ["## Generation", "", "| " + " | ".join(GENERATION_COLUMNS) + " |",
             "|" + "---|" * len(GENERATION_COLUMNS)]
    lines += ["| " + " | ".join(generation_cells(r)[c] for c in GENERATION_COLUMNS) + " |"
              for r in runs]
    return [*lines, "", GENERATION_NOTE, ""]
