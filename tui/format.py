"""Numbers as the console shows them: short, with units, and a dash where a figure is missing."""

from __future__ import annotations

DASH = "—"


def to_float(value: object) -> float | None:
    """A runs.csv cell as a number, or None when it is empty or not a number."""
    if value is None or value == "":
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def watts(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f} W"


def number(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}"


def joules(value: float | None) -> str:
    if value is None:
        return DASH
    for unit, scale in (("J", 1.0), ("mJ", 1e-3), ("µJ", 1e-6)):
        if abs(value) >= scale or unit == "µJ":
            return f"{value / scale:.3g} {unit}"
    return DASH


def milliseconds(value: float | None) -> str:
    return DASH if value is None else f"{value:.3g} ms"


def size(value: float | None) -> str:
    if value is None:
        return DASH
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return DASH


def percent_change(value: float | None) -> str:
    return DASH if value is None else f"{value:+.1f} %"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


METRIC_SHORT = {"accuracy": "acc", "perplexity": "ppl", "top1_agreement": "top1",
                "next_token_agreement": "next-tok", "cosine_similarity": "cos"}


def quality(row: dict[str, str]) -> str:
    """The task metric, short enough for a table cell, with top-1 fidelity beside it."""
    value = to_float(row.get("quality_value"))
    top1 = to_float(row.get("fidelity_top1"))
    fidelity = "" if top1 is None else f"top1 {top1:.2f}"
    if value is None:
        return fidelity or DASH
    metric = row.get("quality_metric") or ""
    if metric in ("top1_agreement", "next_token_agreement"):  # the metric is the fidelity
        return f"{METRIC_SHORT[metric]} {value:.2f}"
    shown = f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{METRIC_SHORT.get(metric, metric)} {shown} {fidelity}".strip()
