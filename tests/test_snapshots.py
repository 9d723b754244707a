"""Snapshots of the live, results and trade-off views on a real finished session, at 80×24 and
120×40 (pytest-textual-snapshot; `pytest --snapshot-update` after a deliberate change)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from energy_console.tui.app import EnergyConsoleApp

# A real session (2 demo models × baseline, dynamic-int8, bf16, sparse-2:4 skipped on CPU),
# recorded once with the CPU estimate at a fixed 20 W.
RECORDED = Path(__file__).parent / "data" / "finished-session"
SIZES = [(80, 24), (120, 40)]


@pytest.fixture
def session(tmp_path) -> Path:
    return Path(shutil.copytree(RECORDED, tmp_path / RECORDED.name))


async def _loaded(pilot) -> None:
    for _ in range(200):
        snapshot = getattr(pilot.app.screen, "snapshot", None)
        if snapshot is not None and snapshot.runs:
            break
        await pilot.pause(0.02)
    await pilot.pause()


def _press(*keys: str):
    async def run_before(pilot) -> None:
        await _loaded(pilot)
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        await pilot.pause()
    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("view,keys", [("live", ()), ("results", ("r",)),
                                       ("trade-offs", ("t",))])
def test_view(snap_compare, session, size, view, keys):
    app = EnergyConsoleApp(attach=session, results_root=session.parent)
    assert snap_compare(app, terminal_size=size, run_before=_press(*keys))
