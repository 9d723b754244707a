"""Models that lie: a config.json naming one architecture over the weights of another loads
"fine" in transformers (random weights where names do not match) and would give a finished
measurement of noise. Such a model fails with the count of keys and the fix, and a model that
cannot load is tried once: its other runs are skipped naming that failure."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.session_helpers import ROOT, run_cli_here, write_profile

pytestmark = pytest.mark.session  # slow tier: real runner sessions, CLI processes, end-to-end UI

TECHNIQUES = "techniques: [baseline, dynamic-int8, bf16]\n"
TINY = "inputs: {batch_sizes: [1], sequence_lengths: [16]}\n"


def tiny_bert(folder: Path, layers: int = 1) -> Path:
    from transformers import BertConfig, BertForSequenceClassification

    BertForSequenceClassification(BertConfig(
        vocab_size=1024, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )).save_pretrained(folder)
    return folder


def bert_weights_under_a_gpt2_config(folder: Path) -> Path:
    from transformers import GPT2Config

    tiny_bert(folder)
    config = GPT2Config(vocab_size=1024, n_embd=32, n_layer=1, n_head=2, n_positions=64).to_dict()
    config["architectures"] = ["GPT2LMHeadModel"]
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def rows_of(session: Path) -> dict[str, dict]:
    with (session / "runs.csv").open() as f:
        return {r["run_id"]: r for r in csv.DictReader(f)}


def run_session(tmp_path: Path, models: str, hub_env: dict | None = None):
    """`run --quiet` of the models with three techniques. With `hub_env` (the hub settings its
    workers must read: a forkserver's workers keep the environment it started with) in a process
    of its own; else in this process."""
    profile = write_profile(tmp_path, models + TECHNIQUES + TINY)
    session = tmp_path / "session"
    args = (str(profile), "--quiet", "--session-dir", str(session))
    lock = {"ENERGY_CONSOLE_LOCK": str(tmp_path / "lock")}
    if hub_env is None:
        return run_cli_here(*args, env=lock), session
    done = subprocess.run(
        [sys.executable, "-m", "energy_console.core.cli", "run", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=dict(os.environ, **lock, **hub_env))
    return done, session


def test_a_config_naming_another_architecture_fails_once_and_its_variants_are_skipped(tmp_path):
    model = bert_weights_under_a_gpt2_config(tmp_path / "liar")
    done, session = run_session(tmp_path, f"models:\n  - path: {model}\n")
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    rows = rows_of(session)
    assert [r["status"] for r in rows.values()] == ["failed", "skipped", "skipped"]
    failed = next(r for r in rows.values() if r["status"] == "failed")
    reason = failed["reason"]
    assert "do not fit the architecture its config.json names (GPT2LMHeadModel)" in reason
    assert "17 weight(s) the GPT2LMHeadModel needs are not in the checkpoint" in reason
    assert "25 weight(s) in the checkpoint do not belong to it" in reason
    assert "randomly initialised" in reason and "save_pretrained" in reason
    for row in rows.values():
        if row["status"] == "skipped":
            assert failed["run_id"] in row["reason"] and "could not be loaded" in row["reason"]
            assert "17 weight(s)" in row["reason"]
    events = [json.loads(line) for line in (session / "events.jsonl").read_text().splitlines()]
    started = [e for e in events if e["kind"] == "run_started"]
    assert len(started) == 1  # the skipped runs never started a worker


@pytest.fixture
def hub_that_knows_nothing():
    """A hub endpoint that answers every request with 404: reachable (pre-flight lets the id
    through), but it cannot serve the model, so loading fails in the worker."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_hub_id_the_hub_cannot_serve_is_tried_once(tmp_path, hub_that_knows_nothing):
    """Online, the hub answers but has no such model: one failure, not one per variant. (A hub
    that cannot be reached at all is refused at pre-flight: tests/test_hub_fail_fast.py.)"""
    env = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub_that_knows_nothing,
           "HF_HOME": str(tmp_path / "hf-home")}
    started = time.monotonic()
    done, session = run_session(
        tmp_path, "models:\n  - hf: nobody-here/tiny-model\n    task: text-classification\n", env)
    assert done.returncode == 1, done.stderr
    rows = rows_of(session)
    assert [r["status"] for r in rows.values()] == ["failed", "skipped", "skipped"]
    assert all("could not be loaded" in r["reason"] for r in list(rows.values())[1:])
    assert time.monotonic() - started < 300


def test_a_base_checkpoint_under_a_task_head_loads_with_a_note(tmp_path):
    """bert-base style: the body is all there, the classifier head is new. That is expected
    (fidelity-only quality) and said, not refused."""
    from energy_console.core.models.pretrained import load_pretrained
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(vocab_size=1024, hidden_size=32, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=64)).save_pretrained(tmp_path / "base")
    loaded = load_pretrained(str(tmp_path / "base"), "text-classification", "cpu", False, "m")
    assert any("2 weight(s) of the task head" in n and "classifier" in n for n in loaded.notes)


def test_a_checkpoint_with_more_layers_than_its_config_is_refused(tmp_path):
    """A config that says 1 layer over a 3-layer checkpoint would measure a truncated model."""
    from energy_console.core.models import ModelLoadError
    from energy_console.core.models.pretrained import load_pretrained

    folder = tiny_bert(tmp_path / "big", layers=3)
    config = json.loads((folder / "config.json").read_text())
    config["num_hidden_layers"] = 1
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=r"32 weight\(s\) in the checkpoint do not belong"):
        load_pretrained(str(folder), None, "cpu", False, "m")
    config["num_hidden_layers"], config["hidden_size"] = 3, 64
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="other shapes than its config.json describes"):
        load_pretrained(str(folder), None, "cpu", False, "m")


def test_an_honest_local_model_loads_without_notes(tmp_path):
    from energy_console.core.models.pretrained import load_pretrained

    loaded = load_pretrained(str(tiny_bert(tmp_path / "ok")), None, "cpu", False, "m")
    assert loaded.notes == [] and loaded.task == "text-classification"
