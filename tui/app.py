"""The console: a view and remote control of session directories that runners write.

It never measures and never imports torch or transformers; a session runs in its own runner
process, so quitting the console leaves the measurement going unless the user asks to stop it.
The live and results screens and the dialogs are imported when first shown, and a profile's
reader when a profile is read, which keeps start-up short (bench/bench_tui_startup.py).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard

from energy_console.core.store.session_dir import default_results_root
from energy_console.tui.format import attach_command
from energy_console.tui.screens.setup import SetupScreen
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

DEFAULT_PROFILE = "default.yaml"  # in the profiles folder: what `energy-console` alone shows

if TYPE_CHECKING:
    from energy_console.tui.screens.live import LiveScreen


class EnergyConsoleApp(App):
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "energy-console"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark", "help", "Help", id="help"),
    ]

    def __init__(self, profile=None, attach: Path | None = None,
                 results_root: Path | None = None, profiles_dir: Path | None = None,
                 profile_path: Path | None = None, open_default: bool = False):
        """`profile_path`: the file `profile` was read from; `open_default`: with no profile,
        show profiles_dir/default.yaml where it exists (what `energy-console` alone does), read
        just after the first paint."""
        super().__init__()
        self.initial_profile = profile
        self.profile_path = profile_path
        self.open_default = open_default
        self.attach = attach
        self.results_root = results_root or default_results_root()
        self.profiles_dir = profiles_dir or Path("profiles")
        self.left_running: Path | None = None  # a session the user quit and left running

    def on_load(self) -> None:
        # The modules just imported live as long as the app: until the first paint, collections
        # leave them out (a full one scanned them all in the middle of the first paint).
        gc.freeze()

    def on_ready(self) -> None:
        gc.unfreeze()

    def on_mount(self) -> None:
        if self.attach is not None:
            from energy_console.tui.screens.live import LiveScreen

            self.push_screen(LiveScreen(self.attach))
            return
        default = self.profiles_dir / DEFAULT_PROFILE
        opening = default if self.initial_profile is None and self.open_default and \
            default.is_file() else None
        self.push_screen(SetupScreen(self.profiles_dir, self.results_root, self.initial_profile,
                                     source=self.profile_path, opening=opening))

    def on_resize(self) -> None:
        self.set_class(self.size.width < 100, "narrow")

    # ------------------------------------------------------------------ actions
    async def action_quit(self) -> None:
        live = self.screen if _is_live(self.screen) else None
        if live is None or not live.session_running:
            self.exit()
            return

        from energy_console.core.store.control import send_control
        from energy_console.tui.screens.dialogs import QuitScreen

        def answer(choice: str | None) -> None:
            if choice == "stop":
                send_control(live.session_dir, "stop")
            if choice == "leave":
                self.left_running = live.session_dir
            if choice in ("stop", "leave"):
                self.exit()

        self.push_screen(QuitScreen(), answer)

    def action_help(self) -> None:
        from energy_console.tui.screens.dialogs import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen.of(self.screen))

    def action_open_session(self) -> None:
        from energy_console.core.store.session_dir import list_sessions
        from energy_console.tui.screens.dialogs import PickScreen

        def open_(path: Path | None) -> None:
            if path is not None:
                from energy_console.tui.screens.live import LiveScreen

                self.push_screen(LiveScreen(path))

        sessions = list(reversed(list_sessions(self.results_root)))
        self.push_screen(PickScreen("Open a session", sessions,
                                    f"no sessions in {self.results_root}/ yet"), open_)

    def action_results(self) -> None:
        screen = self.screen
        if _is_live(screen):
            from energy_console.tui.screens.results import ResultsScreen

            self.push_screen(ResultsScreen(screen.session_dir))
        else:
            self.notify("open a session first (o, or ctrl+e on the setup screen)")

    def action_new_session(self) -> None:
        self.push_screen(SetupScreen(self.profiles_dir, self.results_root))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Open session", "Follow a session from results/",
                            self.action_open_session)
        yield SystemCommand("New session", "Choose models and techniques to measure",
                            self.action_new_session)
        if _is_live(screen):
            yield SystemCommand("Results table", "Every run of this session, sortable",
                                self.action_results)
            yield SystemCommand("Stop session", "Ask the runner to stop",
                                screen.action_stop_session)
            yield SystemCommand("Cancel current run", "Ask the runner to cancel this run",
                                screen.action_cancel_run)


def _is_live(screen: Screen) -> TypeGuard[LiveScreen]:
    from energy_console.tui.screens.live import LiveScreen

    return isinstance(screen, LiveScreen)


def launch(profile_path: str | None = None, attach: Path | None = None,
           results_root: Path | None = None) -> int:
    """Open the setup screen (with a profile loaded; without one, profiles/default.yaml where it
    exists) or the live view of a session directory."""
    from energy_console.core.session.profile_check import load_profile
    from energy_console.core.spec.profile import ProfileError

    profile = None
    if profile_path is not None:
        try:
            profile = load_profile(profile_path)
        except ProfileError as exc:
            print(f"energy-console: {exc}", file=sys.stderr)
            return 2
    if attach is not None and not (Path(attach) / "events.jsonl").exists():
        print(f"energy-console: {attach} is not a session directory (no events.jsonl); "
              "list sessions with `energy-console list sessions`", file=sys.stderr)
        return 2
    app = EnergyConsoleApp(profile, Path(attach) if attach else None, results_root,
                           profile_path=Path(profile_path) if profile_path else None,
                           open_default=profile_path is None)
    app.run()
    if app.left_running is not None:
        print(f"The session goes on; reopen its live view with:\n  "
              f"{attach_command(app.left_running)}")
    return app.return_code or 0
