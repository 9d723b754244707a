"""Plots of one run in its study: energy against quality and against size for every variant of
its model and input (the run highlighted, 95 % intervals as error bars), and the run's power
over time per sensor. Drawn in the terminal with plotext (textual-plotext)."""

from __future__ import annotations

from pathlib import Path

from energy_console.core.analysis.compare import baseline_key
from energy_console.core.analysis.findings import quality_score
from energy_console.core.analysis.traces import power_traces, run_span
from energy_console.core.spec.text import printable
from energy_console.core.store.follow import read_session
from energy_console.core.store.records import RunRecord
from energy_console.tui.widgets.key_footer import KeyFooter
from energy_console.tui.widgets.title import Title
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import TabbedContent, TabPane


class PlotsScreen(Screen):
    DEFAULT_CSS = """
    PlotsScreen TabbedContent { height: 1fr; }
    PlotsScreen PlotextPlot { height: 1fr; }
    """
    BINDINGS = [Binding("escape,b", "app.pop_screen", "Back", id="back")]
    HELP = "tab / shift+tab or the tab titles switch plots; error bars are 95 % intervals"

    def __init__(self, session_dir: Path, run_id: str):
        super().__init__()
        self.session_dir = Path(session_dir)
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot

        yield Title(f"plots · {self.run_id}")  # the model's label once the session is read
        with TabbedContent():
            with TabPane("energy vs quality", id="quality"):
                yield PlotextPlot(id="plot-quality")
            with TabPane("energy vs size", id="size"):
                yield PlotextPlot(id="plot-size")
            with TabPane("power of this run", id="power"):
                yield PlotextPlot(id="plot-power")
        yield KeyFooter()

    def on_mount(self) -> None:
        from textual_plotext import PlotextPlot

        records = list(read_session(self.session_dir).runs)
        run = next((r for r in records if r.run_id == self.run_id), None)
        if run is None:
            self.notify(f"{printable(self.run_id)} is not in this session", severity="error",
                        markup=False)
            return
        self.query_one(Title).show(
            f"plots · {run.model_label} · {run.technique} · {run.input_size} {run.workload}",
            f"{run.model_label} · {run.technique} · {run.input_size}")
        group = [r for r in records if r.finished and baseline_key(r) == baseline_key(run)]
        self._scatter(self.query_one("#plot-quality", PlotextPlot).plt, group, run,
                      quality_score,
                      f"quality ({printable(run.quality_metric or '—')}, higher is better)")
        self._scatter(self.query_one("#plot-size", PlotextPlot).plt, group, run,
                      lambda r: None if r.size_bytes is None else r.size_bytes / 1e6, "size (MB)")
        self._power(self.query_one("#plot-power", PlotextPlot).plt)

    @staticmethod
    def _scatter(plt, group: list[RunRecord], run: RunRecord, y_of, y_label: str) -> None:
        points = [(r, y_of(r)) for r in group
                  if y_of(r) is not None and r.energy_j_per_inference is not None]
        for r, y in points:
            x = (r.energy_j_per_inference or 0.0) * 1e3
            ci = (r.energy_j_per_inference_ci95 or 0.0) * 1e3
            plt.plot([x - ci, x + ci], [y, y], color="gray")  # the 95 % interval
            # a legend names the points: labels written beside them collide at 80 columns
            plt.scatter([x], [y], marker="●" if r is run else "o",
                        color="red" if r is run else None,
                        label=printable(r.technique + (" (this run)" if r is run else "")))
        plt.title(f"energy per inference vs {y_label}")
        plt.xlabel("mJ per inference")

    def _power(self, plt) -> None:
        span = run_span(self.session_dir, self.run_id)
        traces = power_traces(self.session_dir, *span) if span else {}
        if span is None or not traces:
            plt.title("no power samples for this run")
            return
        for trace in traces.values():
            plt.plot([t - span[0] for t in trace.t], trace.watts, label=printable(trace.sensor))
        plt.title("power during this run")
        plt.xlabel("seconds since the run started")
        plt.ylabel("W")
