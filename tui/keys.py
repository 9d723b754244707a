"""What the keys do, as the user reads it: built from the live bindings (each screen's and the
app's BINDINGS are the one declaration), so the help screen and the action line cannot drift."""

from __future__ import annotations

from dataclasses import dataclass

from textual.screen import Screen

# What a footer shows at 80 columns: short labels, so no key is cut (the help screen keeps the long)
SHORT_LABELS = {"Open session": "Open", "Stop session": "Stop", "Cancel run": "Cancel",
                "Sort by column": "Sort", "Trade-offs": "Trade", "Add model": "Add"}


@dataclass(frozen=True)
class KeyHelp:
    keys: str  # as displayed, e.g. "^r" or "esc/b"
    description: str
    action: str  # with its namespace, for a [@click=...] link: "screen.start", "app.quit"
    shown: bool  # in the footer (Textual's own, such as tab, are not)


@dataclass(frozen=True)
class ScreenKeys:
    here: tuple[KeyHelp, ...]  # the screen's own bindings
    focused: tuple[KeyHelp, ...]  # those the focused widget shows in the footer
    anywhere: tuple[KeyHelp, ...]  # the app's


def screen_keys(screen: Screen) -> ScreenKeys:
    """Every described binding active on `screen`, the keys of one action grouped."""
    app = screen.app
    grouped: dict[tuple[str, str, str, bool], list[str]] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        where = "anywhere" if active.node is app else "here" if active.node is screen else "focused"
        if not binding.description or (where == "focused" and not binding.show):
            continue
        action = binding.action
        if where != "focused" and "." not in action:
            action = f"{'app' if where == 'anywhere' else 'screen'}.{action}"
        grouped.setdefault((where, action, binding.description, binding.show), []).append(
            app.get_key_display(binding))
    helps: dict[str, list[KeyHelp]] = {"here": [], "focused": [], "anywhere": []}
    for (where, action, description, shown), keys in grouped.items():
        helps[where].append(KeyHelp("/".join(keys), description, action, shown))
    return ScreenKeys(**{where: tuple(found) for where, found in helps.items()})


def action_links(helps: tuple[KeyHelp, ...]) -> str:
    """The shown ones as a line of links, "Start ^r   Save ^s", in Textual markup (escaped)."""
    return "   ".join(f"[@click={h.action}]{_escape(h.description)} {_escape(h.keys)}[/]"
                       for h in helps if h.shown)


def _escape(text: str) -> str:
    # every "[": textual.markup.escape leaves a lone one, which then swallows the closing "[/]"
    return text.replace("[", "\\[")


def key_lines(helps: tuple[KeyHelp, ...]) -> list[str]:
    """"  ^r          Start" lines, as plain text."""
    return [f"  {h.keys:<12} {h.description}" for h in helps]
