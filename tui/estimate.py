"""How long a session will take, estimated before it starts from its plan and protocol (the
setup screen's summary line); the live ETA learns from the runs as they are timed instead."""

from __future__ import annotations

from energy_console.core.session.plan import RunSpec

SESSION_START_S = 6.0  # the runner's forkserver importing torch + transformers, once a session
# Set so the default profile's estimate (2m41s) sits between what a quiet 2-core box took
# (1m19s) and a loaded one (5m12s): "half to twice that" covers both.
VARIANT_START_S = 3.0  # forking a worker, loading and compressing a small model
RUN_QUALITY_S = 2.0  # a run's reference outputs and quality checks on a small model
WARMUP_ITERATION_S = 0.05  # a guess: the latency of a small model is unknown before it runs
NEW_TOKEN_S = 0.02  # a guess: one new token of a small model on a CPU
QUALITY_PROMPTS = 8  # generations the quality of a generate run compares (reference and variant)


def estimate_duration_s(specs: list[RunSpec], idle_seconds: float) -> float:
    """A rough session length from the protocol: the session's start and idle baselines (again
    every idle_refresh_s), per variant its worker, loading, compression and cool-down, per run
    its warm-up, timed windows and quality; a generate run's iteration makes max_new_tokens
    tokens, so its windows and quality take longer. Off by up to half or twice: the live ETA
    learns from the runs as they are timed. With protocol.target_ci_pct a run may take its whole
    budget (max_run_s): the estimate plans for all of it."""
    total = SESSION_START_S + idle_seconds
    variants = {(spec.model.ref, spec.technique.slug, spec.workload) for spec in specs}
    for spec in specs:
        p = spec.protocol
        iteration_s = WARMUP_ITERATION_S + NEW_TOKEN_S * (spec.max_new_tokens or 0)
        window_s = max(p.min_window_s, iteration_s) if p.iterations is None \
            else p.iterations * iteration_s
        quality_s = RUN_QUALITY_S + 2 * QUALITY_PROMPTS * NEW_TOKEN_S * (spec.max_new_tokens or 0)
        windows_s = p.repeats * window_s * 1.2
        if p.target_ci_pct is not None:  # windows are added up to the budget: plan for all of it
            windows_s = max(windows_s, p.max_run_s)
        total += p.warmup * iteration_s + windows_s + quality_s
    if specs:
        p = specs[0].protocol
        total += len(variants) * (VARIANT_START_S + p.cooldown_s)
        if p.idle_refresh_s > 0:
            total += idle_seconds * int(total // p.idle_refresh_s)
    return total
