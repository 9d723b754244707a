"""A hub id that is not in the local cache fails at pre-flight, within seconds and with the
command that downloads it, where the hub cannot serve it: offline, or its endpoint not answering
(no client retries in between)."""

from __future__ import annotations

import socket
import time

import pytest
from energy_console.core.models import hub
from energy_console.core.session.profile_check import parse_profile
from huggingface_hub import constants

FAIL_WITHIN_S = 10.0
UNCACHED = "nobody-here/not-cached-model"


@pytest.fixture
def entry(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    profile = parse_profile(f"name: t\nmodels: [{{hf: {UNCACHED}, task: text-classification}}]\n")
    return profile.models[0]


def timed_preflight(entry) -> tuple[str | None, float]:
    start = time.monotonic()
    problem = hub.SOURCE.preflight(entry)
    return problem, time.monotonic() - start


def test_offline_an_uncached_hub_id_fails_at_once_with_the_download_command(entry, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    problem, took_s = timed_preflight(entry)
    assert problem is not None and f"`hf download {UNCACHED}`" in problem
    assert "offline (HF_HUB_OFFLINE=1)" in problem and took_s < FAIL_WITHIN_S


def a_closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends: connections refused


def test_not_offline_but_the_hub_unreachable_fails_at_once_with_the_download_command(
        entry, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{a_closed_port()}")
    problem, took_s = timed_preflight(entry)
    assert problem is not None and f"`hf download {UNCACHED}`" in problem
    assert "the hub cannot be reached (127.0.0.1:" in problem and took_s < FAIL_WITHIN_S


def test_a_hub_that_does_not_answer_is_given_up_on_after_one_bounded_wait(monkeypatch):
    def silent(*args, **kwargs):
        time.sleep(1)  # a name lookup or SYN that is not answered in time
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", silent)
    start = time.monotonic()
    why = hub.hub_unreachable(timeout_s=0.2)
    assert why is not None and "did not answer within" in why
    assert time.monotonic() - start < FAIL_WITHIN_S


def test_the_live_view_says_what_loading_does(tmp_path, entry):
    """While a worker loads, the live view's phase says whether it downloads or reads the cache."""
    from energy_console.core.store import events as ev
    from energy_console.core.store.session_model import SessionModel

    detail = hub.SOURCE.loading_from(entry)
    assert detail.startswith("downloading from the hub")
    model = SessionModel(tmp_path)
    model.add_event(ev.RunStarted(run_id="r", index=0, total=1, model=UNCACHED,
                                  technique="baseline", batch_size=1, seq_len=8, resolution=None,
                                  worker_pid=5))
    model.add_event(ev.PhaseChanged(run_id="r", phase="loading", detail=detail))
    assert model.current is not None and model.current.phase == f"loading: {detail}"
