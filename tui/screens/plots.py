"""Plots of one run in its study: energy against quality and against size for every variant of
its model and input (the run highlighted, 95 % intervals as error bars), and the run's power
over time per sensor. Drawn in the terminal with plotext (textual-plotext)."""

from __future__ import annotations

from pathlib import Path

from energy_console.core.analysis.compare import baseline_key
from energy_console.core.analysis.findings import findings
from energy_console.core.analysis.plot_data import Scatter, scatter
from energy_console.core.analysis.traces import power_traces, run_span
from energy_console.core.spec.text import printable
from energy_console.core.store.follow import read_session
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
        group = next((g for g in findings(records)
                      if baseline_key(g.runs[0]) == baseline_key(run)), None)
        for kind in ("quality", "size"):
            plt = self.query_one(f"#plot-{kind}", PlotextPlot).plt
            data = scatter(group, kind) if group is not None else None
            if data is None:
                plt.title(f"no {kind} figures for this run's study")
            else:
                self._scatter(plt, data, run)
        self._power(self.query_one("#plot-power", PlotextPlot).plt)

    @staticmethod
    def _scatter(plt, data: Scatter, run) -> None:
        """The points with their 95 % intervals as bars (cut at zero); axes from zero."""
        for p in data.points:
            plt.plot([p.x_low, p.x_high], [p.y, p.y], color="gray")
            if p.y_high > p.y_low:
                plt.plot([p.x, p.x], [p.y_low, p.y_high], color="gray")
            this = p.run.run_id == run.run_id
            # a legend names the points: labels written beside them collide at 80 columns
            plt.scatter([p.x], [p.y], marker="●" if this else "o", color="red" if this else None,
                        label=printable(p.run.technique + (" (this run)" if this else "")))
        plt.xlim(data.x_min, max(p.x_high for p in data.points) * 1.1 or 1.0)
        if data.y_min is not None:
            plt.ylim(data.y_min, max(p.y_high for p in data.points) * 1.1 or 1.0)
        plt.title(f"{data.title}: {data.y_label}")
        plt.xlabel(data.x_label)

    def _power(self, plt) -> None:
        span = run_span(self.session_dir, self.run_id)
        traces = power_traces(self.session_dir, *span) if span else {}
        if span is None or not traces:
            plt.title("no power samples for this run")
            return
        for trace in traces.values():
            plt.plot([t - span[0] for t in trace.t], trace.watts, label=printable(trace.sensor))
        plt.title("power during this run")
        plt.ylim(0, max(max(t.watts) for t in traces.values()) * 1.1 or 1.0)
        plt.xlabel("seconds since the run started")
        plt.ylabel("W")
