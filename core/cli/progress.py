"""The headless progress display of `energy-console run`: a rich progress bar and one line per
ended run. Plain enough for SSH and tmux; without a terminal it prints lines only."""

from __future__ import annotations

from collections.abc import Callable

from energy_console.core.analysis.numbers import format_energy, format_latency
from energy_console.core.spec.text import printable
from energy_console.core.store import events as ev
from energy_console.core.store.records import RunRecord
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

SKIP_LINES = 3  # skipped runs in a row with one reason, one line each; the rest: one line



class ProgressDisplay:
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=False)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[phase]}"),
            console=self.console,
            transient=True,
        )
        self.task: TaskID | None = None
        self._skip_reason: str | None = None  # the reason of the skipped runs in a row
        self._skips_in_row = 0

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def on_event(self, event: ev.Event) -> None:
        out = self.progress.console

        def say(label: str, style: str, text: str) -> None:
            """A line whose text (names, reasons, notices: from outside) is never markup."""
            out.print(Text.assemble((label, style), " ", printable(text)))

        if not isinstance(event, ev.RunSkipped) or event.reason != self._skip_reason:
            self._end_skips(say)
        if isinstance(event, ev.SessionStarted):
            say("session", "bold", f"{event.session_id}: {event.total_runs} runs")
            for sensor in event.sensors:
                label = "measured" if sensor["measured"] else "ESTIMATED"
                say("  sensor", "", f"{sensor['name']} ({sensor['kind']}, {label})")
            self.task = self.progress.add_task("runs", total=event.total_runs, phase="")
        elif isinstance(event, ev.Notice):
            say(f"{event.level}:", "yellow", event.message)
        elif isinstance(event, ev.IdleBaseline):
            watts = ", ".join(f"{k} {v:.1f} W" for k, v in event.power_w.items())
            lane = "" if event.gpu_index is None else f"of {event.node}/gpu{event.gpu_index} "
            shared = " (CPU/DRAM shared with other lanes' runs)" if event.cpu_shared else ""
            say("idle baseline", "", f"{lane}over {event.duration_s:.1f} s: {watts}{shared}")
        elif isinstance(event, ev.RunStarted) and self.task is not None:
            self.progress.update(self.task, description=escape(printable(event.run_id)),
                                 phase="starting")
        elif isinstance(event, ev.PhaseChanged) and self.task is not None:
            phase = event.phase
            if event.repeat:
                phase = f"repeat {event.repeat}/{event.repeats} ({event.iterations} it)"
            self.progress.update(self.task, phase=phase)
        elif isinstance(event, ev.RunFinished):
            record = RunRecord.from_dict(event.row)
            say("finished", "green",
                f"{event.run_id}: {format_energy(record.energy_j_per_inference)}/inference "
                f"({record.energy_source}), {record.avg_power_w or 0:.1f} W, "
                f"p50 {format_latency(record.latency_ms_p50)}")
            self._advance()
        elif isinstance(event, ev.RunSkipped):
            self._skip_reason = event.reason
            self._skips_in_row += 1
            if self._skips_in_row <= SKIP_LINES:  # a stop skips thousands: not a line each
                say("skipped", "yellow", f"{event.run_id}: {event.reason}")
            self._advance()
        elif isinstance(event, ev.RunFailed):
            say("failed", "red", f"{event.run_id}: {event.reason}")
            self._advance()

    def _end_skips(self, say: Callable[[str, str, str], None]) -> None:
        """The skipped runs in a row not given a line of their own, in one."""
        more = self._skips_in_row - SKIP_LINES
        if more > 0 and self._skip_reason is not None:
            say("skipped", "yellow", f"{more} more run(s): {self._skip_reason}")
        self._skip_reason, self._skips_in_row = None, 0

    def _advance(self) -> None:
        if self.task is not None:
            self.progress.advance(self.task)
