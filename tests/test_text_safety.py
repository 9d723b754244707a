"""Text from outside is text: control sequences, bidi overrides and markup never act, and
credentials never leave in a URI (core/spec/text.py)."""

from __future__ import annotations

import re

import pytest
from energy_console.core.spec.text import printable, without_secrets
from hypothesis import given
from hypothesis import strategies as st
from rich.text import Text

# What a terminal acts on: ESC (so CSI and OSC), BEL, every other C0 but tab/newline, DEL, C1,
# and the bidi controls that reorder what is read.
ACTIVE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
PIECES = st.one_of(st.characters(), st.sampled_from(
    ["\x1b", "\x07", "\x9b", "\x9d", "\u202e", "\u2066", "[", "]", "/", "\\", "[bold]", "[/]",
     "[@click=app.quit]", "[link=https://x]", "\x1b]8;;https://x\x1b\\", "\x1b[2J"]))
HOSTILE = st.lists(PIECES, max_size=40).map("".join)


def test_an_osc_title_and_a_csi_clear_are_shown_not_run():
    shown = printable("bert\x1b]0;FAKE: all runs passed\x07\x1b[2J")
    assert "\x1b" not in shown and "\x07" not in shown
    assert shown == "bert\\x1b]0;FAKE: all runs passed\\x07\\x1b[2J"


def test_c1_controls_and_bidi_overrides_are_escaped():
    assert printable("a\x9b2Jb\u202egpj.exe") == "a\\x9b2Jb\\u202egpj.exe"


def test_one_line_text_keeps_no_newline_but_a_block_does():
    assert printable("two\nlines\tx") == "two\\x0alines\\x09x"
    assert printable("two\nlines", one_line=False) == "two\nlines"


def test_long_text_is_cut_with_a_mark():
    assert printable("x" * 10, max_chars=5) == "xxxx…"


@given(HOSTILE)
def test_no_string_leaves_printable_with_an_active_character(text):
    assert not ACTIVE.search(printable(text))
    assert not ACTIVE.search(printable(text, one_line=False).replace("\n", "").replace("\t", ""))


@given(HOSTILE)
def test_printable_text_shown_by_rich_writes_no_escape_and_no_style(text):
    import io

    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=80, force_terminal=True, color_system="truecolor").print(
        Text(printable(text)), end="")
    assert "\x1b" not in out.getvalue()  # no link, no style, no title: plain characters


def test_rich_markup_in_a_label_is_literal_as_text():
    label = "[link=https://evil.example]click[/link] [bold]x"
    rendered = Text(printable(label))
    assert rendered.plain == label and not rendered.spans


def test_a_password_in_a_tracking_uri_is_removed():
    text = "MLflow at http://alice:s3cr%40t@mlflow.lab:5000/api failed (ConnectionError)"
    assert without_secrets(text) == "MLflow at http://***@mlflow.lab:5000/api failed " \
                                    "(ConnectionError)"


def test_tokens_in_a_query_string_are_removed_and_other_parameters_kept():
    text = "https://hub.example/x?revision=main&access_token=hf_abc123&sig=zz#frag"
    assert without_secrets(text) == "https://hub.example/x?revision=main&access_token=***&sig=***#frag"


def test_a_uri_without_credentials_is_unchanged():
    text = "file:///home/alice/results/mlruns and http://mlflow.lab:5000"
    assert without_secrets(text) == text


@given(st.text(alphabet=st.characters(blacklist_categories=("Z", "C"),
                                      blacklist_characters="@/:?&#;"), min_size=1),
       st.text(alphabet="abcdefghij", min_size=1))
def test_no_password_survives_in_a_uri(password, host):
    secret = f"PW{password}"
    assert secret not in without_secrets(f"see https://bob:{secret}@{host}.org/path")


@pytest.mark.session  # imports MLflow (seconds)
def test_an_unreachable_tracking_server_is_named_without_its_password(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from energy_console.core.session.tracking import MlflowTracker

    # port 9 (discard) on loopback: nothing listens, the client fails at once
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://alice:Hunter2pw@127.0.0.1:9/")
    notices: list[str] = []
    MlflowTracker(tmp_path, "demo", notices.append).start()
    assert notices, "the failure is reported"
    assert all("Hunter2pw" not in n for n in notices)
    assert any("http://***@127.0.0.1:9" in n for n in notices)


HOSTILE_REASON = "\x1b]0;FAKE: all runs passed\x07\x1b[2J[link=https://evil.example]x[/link]"


@pytest.fixture
def hostile_session(tmp_path):
    """The recorded session, its skipped runs' reason replaced by a model config's hostile text
    (as transformers quotes it in a loading error) and its name by one holding escapes."""
    import json
    import shutil
    from pathlib import Path

    recorded = Path(__file__).parent / "data" / "finished-session"
    session = Path(shutil.copytree(recorded, tmp_path / "s\x1b[2Jess"))
    plain = "sparse-2:4 runs on cuda only, not on cpu"
    events = session / "events.jsonl"
    events.write_text(events.read_text().replace(plain, json.dumps(HOSTILE_REASON)[1:-1]))
    runs = session / "runs.csv"
    runs.write_text(runs.read_text().replace(plain, HOSTILE_REASON))  # inside its quotes
    return session


@pytest.mark.parametrize("fmt", ["table", "csv", "markdown", "json"])
def test_a_report_in_every_format_shows_hostile_text_without_acting_on_it(hostile_session, fmt):
    from energy_console.core.analysis.export import render
    from energy_console.core.store.follow import read_session

    text = render(read_session(hostile_session), fmt, 200)
    assert not ACTIVE.search(text.replace("\r\n", "").replace("\n", ""))
    if fmt != "json":  # JSON writes ESC as \\u001b, which is as inert
        assert "\\x1b]0;FAKE: all runs passed\\x07\\x1b[2J" in text
    if fmt == "table":
        assert "[link=https://evil.example]x[/link]" in text  # literal, not a hyperlink
        assert "s\\x1b[2Jess" in text


def test_list_sessions_shows_a_hostile_folder_name_without_acting_on_it(hostile_session):
    from energy_console.core.cli.listing import session_line

    line = session_line(hostile_session)
    assert not ACTIVE.search(line)
    assert "s\\x1b[2Jess" in line and "completed" in line


def test_run_progress_shows_reasons_and_notices_as_text():
    import io

    from energy_console.core.cli.progress import ProgressDisplay
    from energy_console.core.store import events as ev
    from rich.console import Console

    out = io.StringIO()
    display = ProgressDisplay(Console(file=out, force_terminal=True, width=200))
    display.on_event(ev.Notice(level="warning", message="[link=https://evil.example]x[/link]"))
    display.on_event(ev.RunSkipped(run_id="r1", reason=HOSTILE_REASON))
    text = out.getvalue()
    assert "\x1b]8;" not in text  # no OSC 8 hyperlink was written
    assert "\x1b]0;" not in text and "\x07" not in text  # nor a title, nor a bell
    assert "[link=https://evil.example]x[/link]" in text
    assert "\\x1b]0;FAKE: all runs passed\\x07" in text
