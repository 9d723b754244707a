"""One line per sensor: name and whether it is measured, a sparkline, now / 30-s average / peak."""

from __future__ import annotations

from energy_console.core.store.snapshot import SensorView
from energy_console.tui import format as fmt
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline


def sensor_label(view: SensorView) -> str:
    return f"{view.name} {'meas' if view.measured else 'est'}"


def sensor_figures(view: SensorView) -> str:
    figures = (("now", view.current_w), ("30s", view.average_30s_w), ("peak", view.peak_w),
               ("idle", view.idle_w))
    return "  ".join(f"{label} {fmt.number(value)}" for label, value in figures) + " W"


class SensorRow(Horizontal):
    def __init__(self, view: SensorView):
        super().__init__(classes="sensor-row")
        self.sensor_name = view.name
        # Built here, not in compose, so show() works before the row has finished mounting.
        self._name_label = Label(fmt.shown(sensor_label(view)), classes="sensor-name")
        self._spark = Sparkline(list(view.recent_w), classes="sensor-spark")
        self._figures = Label(sensor_figures(view), classes="sensor-figures")

    def compose(self) -> ComposeResult:
        yield self._name_label
        yield self._spark
        yield self._figures

    def show(self, view: SensorView) -> None:
        # Sparkline redraws on assignment of a new sequence, not on in-place change.
        self._spark.data = list(view.recent_w)
        self._name_label.update(fmt.shown(sensor_label(view)))
        self._figures.update(sensor_figures(view))


class PowerPanel(Vertical):
    """Sensor rows, added as sensors first appear in a session."""

    def show(self, sensors: tuple[SensorView, ...]) -> None:
        rows = {row.sensor_name: row for row in self.query(SensorRow)}
        for view in sensors:
            row = rows.get(view.name)
            if row is None:
                self.mount(SensorRow(view))
            else:
                row.show(view)
        if not sensors and not self.query(".no-sensors"):
            self.mount(Label("waiting for the runner's first power samples…",
                             classes="no-sensors"))
        elif sensors:
            self.query(".no-sensors").remove()
