"""The live view of one session directory: power, progress, the current run, ended runs, a log."""

from __future__ import annotations

from pathlib import Path

from energy_console.core.spec.text import printable
from energy_console.core.store.control import send_control
from energy_console.core.store.records import model_label
from energy_console.core.store.snapshot import LiveSnapshot
from energy_console.tui import format as fmt
from energy_console.tui.follower import SessionFollower
from energy_console.tui.widgets.key_footer import KeyFooter
from energy_console.tui.widgets.notice_log import NoticeLog
from energy_console.tui.widgets.power_panel import PowerPanel
from energy_console.tui.widgets.runs_table import RunsTable
from energy_console.tui.widgets.title import Title
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

BAR_WIDTH = 20


class SnapshotReady(Message):
    def __init__(self, snapshot: LiveSnapshot):
        super().__init__()
        self.snapshot = snapshot


def progress_line(s: LiveSnapshot) -> str:
    total = max(s.total_runs, s.ended_runs)
    filled = round(BAR_WIDTH * s.ended_runs / total) if total else 0
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    extra = []
    if s.skipped:
        extra.append(f"{s.skipped} skipped")
    if s.failed:
        extra.append(f"{s.failed} failed")
    counts = f" ({', '.join(extra)})" if extra else ""
    eta = f"  ETA {fmt.eta(s.eta_s, s.eta_rough_pct)}" if s.is_running else ""
    return (f"[{bar}] {s.ended_runs}/{total or '?'} runs{counts}  {s.status}  "
            f"elapsed {fmt.duration(s.elapsed_s)}{eta}")


ESTIMATE_NOTE = "energy estimated at constant W: ΔE only tracks latency"
ESTIMATE_NOTE_SHORT = "energy estimated: ΔE only tracks latency"


def title_lines(session_dir: Path, s: LiveSnapshot | None = None) -> tuple[str, ...]:
    """The session's name, and a warning when any figure shown is an estimate; longest first
    (a narrow terminal shows the first that fits)."""
    name = session_dir.name
    if s is None or not any(r.energy_source in ("estimated", "mixed") for r in s.runs):
        return f"energy-console · {name}", name
    return (f"energy-console · {name} · {ESTIMATE_NOTE}", f"{name} · {ESTIMATE_NOTE_SHORT}",
            f"{name} · estimated energy")


def current_line(s: LiveSnapshot) -> str:
    run = s.current
    if run is None:
        if s.is_running:
            return "between runs (idle baseline or starting the next worker)"
        if s.status == "runner gone":
            return f"the runner ended without finishing the session; see {s.path}/runner.log"
        return f"session {s.status}" + (f": {s.message}" if s.message else "")
    where = f"  on {run.where}" if run.where else ""
    others = len(s.running) - 1
    more = f"  (+{others} more in progress)" if others > 0 else ""
    return (f"run {run.index + 1}/{run.total}  {model_label(run.model)}  "
            f"{run.technique}  {run.input_size}  ▸ {run.phase}{where}{more}")


class LiveScreen(Screen):
    BINDINGS = [
        Binding("x", "stop_session", "Stop session", id="stop_session"),
        Binding("c", "cancel_run", "Cancel run", id="cancel_run"),
        Binding("r", "results", "Results", id="results"),
        Binding("t", "trade_offs", "Trade-offs", id="trade_offs"),
        Binding("o", "app.open_session", "Open session", id="open_session"),
    ]

    def __init__(self, session_dir: Path, runner_pid: int | None = None):
        super().__init__()
        self.session_dir = Path(session_dir)
        self.runner_pid = runner_pid
        self.snapshot: LiveSnapshot | None = None
        self._follower: SessionFollower | None = None
        self._log_shown = 0

    def compose(self) -> ComposeResult:
        yield Title(*title_lines(self.session_dir))
        yield Static("reading the session…", id="progress")
        yield Static("", id="current")
        yield PowerPanel(id="power")
        yield RunsTable(id="runs")
        yield NoticeLog(id="log", max_lines=200)
        yield KeyFooter()

    def on_mount(self) -> None:
        self._follower = SessionFollower(self.session_dir,
                                         lambda snap: self.post_message(SnapshotReady(snap)),
                                         runner_pid=self.runner_pid)
        self._follower.start()

    def on_unmount(self) -> None:
        if self._follower is not None:
            self._follower.stop()

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        s = message.snapshot
        self.snapshot = s
        with self.app.batch_update():
            self.query_one(Title).show(*title_lines(self.session_dir, s))
            self.query_one("#progress", Static).update(fmt.shown(progress_line(s)))
            self.query_one("#current", Static).update(fmt.shown(current_line(s)))
            self.query_one(PowerPanel).show(s.sensors)
            self.query_one(RunsTable).show(s.runs)
            log = self.query_one(NoticeLog)
            for line in s.new_log_lines(self._log_shown):
                log.write(fmt.shown(line, one_line=False))
            self._log_shown = s.log_total

    @property
    def session_running(self) -> bool:
        return self.snapshot is not None and self.snapshot.is_running

    def action_stop_session(self) -> None:
        if not self.session_running:
            self.notify("the session is not running", severity="warning")
            return
        send_control(self.session_dir, "stop")
        self.notify("asked the runner to stop after cleaning up the current run")

    def action_cancel_run(self) -> None:
        run = self.snapshot.current if self.snapshot else None
        if run is None:
            self.notify("no run is in progress", severity="warning")
            return
        send_control(self.session_dir, f"cancel {run.run_id}")
        name = f"{model_label(run.model)} · {run.technique} · {run.input_size}"
        self.notify(f"asked the runner to cancel {printable(name)}", markup=False)

    def action_trade_offs(self) -> None:
        from energy_console.tui.screens.tradeoff import TradeOffScreen

        self.app.push_screen(TradeOffScreen(self.session_dir))

    def action_results(self) -> None:
        from energy_console.tui.screens.results import ResultsScreen

        self.app.push_screen(ResultsScreen(self.session_dir))
