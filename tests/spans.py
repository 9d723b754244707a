"""Each GPU's busy spans from a session's events: RunStarted to WorkerEnded of pinned runs."""

from __future__ import annotations


def gpu_spans(events: list[dict]) -> dict[tuple[str, int], list[tuple[float, float, str]]]:
    """(node, GPU) -> [(start, end, run id)] of every pinned run whose worker ended."""
    starts = {e["run_id"]: e for e in events if e["kind"] == "run_started" and
              e.get("gpu_index") is not None}
    spans: dict[tuple[str, int], list[tuple[float, float, str]]] = {}
    for end in (e for e in events if e["kind"] == "worker_ended"):
        start = starts[end["run_id"]]
        assert (start["node"], start["gpu_index"]) == (end["node"], end["gpu_index"])
        spans.setdefault((end["node"], end["gpu_index"]), []).append(
            (start["t"], end["t"], end["run_id"]))
    return spans


def overlapping(spans: dict) -> list[tuple]:
    """Pairs of runs on one GPU whose spans overlap."""
    found = []
    for gpu, runs in spans.items():
        ordered = sorted(runs)
        found += [(gpu, a[2], b[2]) for a, b in zip(ordered, ordered[1:], strict=False)
                  if b[0] < a[1]]
    return found


def lanes_variants_and_baselines(events: list[dict]) -> dict[tuple[str, int], tuple[int, int]]:
    """(node, GPU) -> (variants it ran, idle baselines it took) of a pinned session."""
    variants: dict[tuple[str, int], set[tuple[str, str]]] = {}
    for e in events:
        if e["kind"] == "run_started" and e.get("gpu_index") is not None:
            variants.setdefault((e["node"], e["gpu_index"]), set()).add(
                (e["model"], e["technique"]))
    baselines = [(e["node"], e["gpu_index"]) for e in events if e["kind"] == "idle_baseline"]
    return {lane: (len(ran), baselines.count(lane)) for lane, ran in variants.items()}


def baselines_marked_wrongly(events: list[dict]) -> list[dict]:
    """Idle baselines of a lane whose `cpu_shared` flag does not say whether another lane's run
    on the same box overlapped them."""
    spans = gpu_spans(events)
    wrong = []
    for e in (e for e in events if e["kind"] == "idle_baseline"):
        start, end = e["t"] - e["duration_s"], e["t"]
        overlapped = any(s < end and t > start for (node, _), runs in spans.items()
                         if node == e["node"] for s, t, _ in runs)
        if overlapped != e["cpu_shared"]:
            wrong.append(e)
    return wrong
