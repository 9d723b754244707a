"""The footer of every screen: Quit and Help first, so they are the last keys a narrow terminal
cuts; where its keys with their full labels do not fit, it is compact and its labels short
(keys.SHORT_LABELS, the command palette's key without its word: the help screen has it) before
any key is cut."""

from __future__ import annotations

from energy_console.tui.keys import SHORT_LABELS
from textual.app import ComposeResult
from textual.events import Resize
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

PALETTE_COLUMNS = 12  # "▏^p palette", docked right
FIRST_ACTIONS = ("quit", "help")  # the app's: a newcomer needs them on every screen


class KeyFooter(Footer):
    def on_resize(self, event: Resize) -> None:
        if self._fit(event.size.width):
            self.call_after_refresh(self.recompose)

    def _fit(self, width: int) -> bool:
        """Compact where the keys with their full labels do not fit `width`; whether it changed."""
        compact = self._full_width() > width
        changed, self.compact = compact != self.compact, compact
        return changed

    def _full_width(self) -> int:
        """Columns the keys take with their full labels (a key and its label padded by one)."""
        shown = {b.action: b for _, b, _, _ in self.screen.active_bindings.values() if b.show}
        return PALETTE_COLUMNS + sum(len(self.app.get_key_display(b)) + len(b.description) + 3
                                     for b in shown.values())

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        if self.size.width:  # keys born compact: each key restyled, then all composed again, cost
            self._fit(self.size.width)  # the first paint 20-50 ms at 80 columns
        active = self.screen.active_bindings
        by_action: dict[str, tuple] = {}
        for _, binding, enabled, tooltip in active.values():
            if binding.show:
                by_action.setdefault(binding.action, (binding, enabled, tooltip))
        order = [a for a in FIRST_ACTIONS if a in by_action] + [
            a for a in by_action if a not in FIRST_ACTIONS]
        self.styles.grid_size_columns = len(order)
        compact = "-compact" if self.compact else ""
        for action in order:
            binding, enabled, tooltip = by_action[action]
            label = SHORT_LABELS.get(binding.description, binding.description) \
                if self.compact else binding.description
            yield FooterKey(binding.key, self.app.get_key_display(binding), label, binding.action,
                            disabled=not enabled, tooltip=tooltip or binding.description,
                            classes=compact).data_bind(compact=Footer.compact)
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            palette = active.get(self.app.COMMAND_PALETTE_BINDING)
            if palette is not None:
                _, binding, enabled, _ = palette
                yield FooterKey(binding.key, self.app.get_key_display(binding),
                                "" if self.compact else binding.description, binding.action,
                                classes=f"-command-palette {compact}",
                                disabled=not enabled,
                                tooltip=binding.tooltip or binding.description)
