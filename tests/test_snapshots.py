"""Snapshots of every screen at 80×24 and 120×40: the live, results, trade-off and plot views and
the help screen on a real finished session, and the setup screen with the default profile
(pytest-textual-snapshot; `pytest --snapshot-update` after a deliberate change)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from energy_console.core.session.profile_check import load_profile
from energy_console.tui import selection
from energy_console.tui.app import EnergyConsoleApp

# A real session (2 demo models × baseline, dynamic-int8, bf16, sparse-2:4 skipped on CPU),
# recorded once with the CPU estimate at a fixed 20 W.
ROOT = Path(__file__).resolve().parent.parent
RECORDED = Path(__file__).parent / "data" / "finished-session"
SIZES = [(80, 24), (120, 40)]


@pytest.fixture
def session(tmp_path, monkeypatch) -> Path:
    """A copy, in the working folder: the help screen names it as `attach` would take it."""
    monkeypatch.chdir(tmp_path)
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
                                       ("trade-offs", ("t",)), ("plots", ("r", "p")),
                                       ("help", ("question_mark",))])
def test_view(snap_compare, session, size, view, keys):
    app = EnergyConsoleApp(attach=session, results_root=session.parent)
    assert snap_compare(app, terminal_size=size, run_before=_press(*keys))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_setup(snap_compare, tmp_path, monkeypatch, size):
    """The default profile as `energy-console` alone opens it (on a machine without a GPU
    driver, whichever machine runs the test)."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(selection, "NVIDIA_DRIVER_FILE", str(tmp_path / "no-driver"))
    path = Path("profiles") / "default.yaml"
    app = EnergyConsoleApp(load_profile(path), results_root=tmp_path / "results",
                           profiles_dir=tmp_path / "profiles", profile_path=path)

    async def counted(pilot) -> None:
        for _ in range(200):
            if app.screen.profile is not None:
                break
            await pilot.pause(0.02)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=counted)
