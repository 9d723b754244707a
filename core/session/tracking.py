"""MLflow tracking (the `mlflow` extra): each ended run of a session logged as an MLflow run.

The runner logs a run after it ended and its files are written — never inside a timed window,
never in the worker. A session is one parent run named by the session id, in the experiment
`energy-console/<profile name>`; each measurement run is a child of it (tag mlflow.parentRunId)
with params (model, technique, workload, input size, device, sensors, status), every numeric
runs.csv column as a metric, and its result.json and latency.csv as artifacts; the session's
plots (with matplotlib) go to the parent at the end.

Where: MLFLOW_TRACKING_URI when set (credentials from MLflow's own variables, e.g.
MLFLOW_TRACKING_TOKEN; never from the profile), else a local file store in the session's
`mlruns/` folder (read it with `mlflow ui --backend-store-uri SESSION/mlruns`). Anything that
goes wrong is a notice, and the measurement goes on without tracking.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from energy_console.core.spec.text import without_secrets
from energy_console.core.store.records import NUMERIC_COLUMNS, RunRecord

LOCAL_STORE = "mlruns"
PARAM_COLUMNS = ("model", "task", "technique", "workload", "device", "batch_size", "seq_len",
                 "resolution", "max_new_tokens", "status", "energy_source", "sensors")
STATUS = {"finished": "FINISHED", "failed": "FAILED", "skipped": "KILLED"}
# a remote server that does not answer fails fast instead of retrying for minutes
QUICK_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def tracking_uri(session_dir: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or (session_dir / LOCAL_STORE).resolve().as_uri()


def experiment_name(profile_name: str) -> str:
    return f"energy-console/{profile_name}"


def run_params(record: RunRecord) -> dict[str, str]:
    """The params of a run: its identity as runs.csv writes it (empty cells left out)."""
    from energy_console.core.store.records import csv_cell

    cells = {name: csv_cell(getattr(record, name)) for name in PARAM_COLUMNS}
    return {name: value for name, value in cells.items() if value != ""}


def run_metrics(record: RunRecord) -> dict[str, float]:
    """Every numeric column that holds a value."""
    return {name: float(getattr(record, name)) for name in NUMERIC_COLUMNS
            if getattr(record, name) is not None}


class MlflowTracker:
    """Logs a session to MLflow; after the first failure it only says why, once."""

    def __init__(self, session_dir: Path, profile_name: str, notice: Callable[[str], None]):
        self.session_dir, self.profile_name, self.notice = session_dir, profile_name, notice
        self.client: Any = None
        self.parent_id: str | None = None
        self.experiment_id: str | None = None

    def start(self) -> None:
        try:
            import mlflow  # noqa: F401 - the extra's presence
        except ImportError:
            self.notice("MLflow tracking asked for, but mlflow is not installed: pip install "
                        "'energy-console[mlflow]'; the session goes on without it")
            return
        uri = tracking_uri(self.session_dir)
        for name, value in QUICK_HTTP.items():
            os.environ.setdefault(name, value)
        if uri.startswith("file:"):  # MLflow 3 keeps the file store behind this switch
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self._guard(lambda: self._open(uri), f"MLflow at {uri}")

    def _open(self, uri: str) -> None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        name = experiment_name(self.profile_name)
        found = client.get_experiment_by_name(name)
        self.experiment_id = found.experiment_id if found else client.create_experiment(name)
        parent = client.create_run(self.experiment_id, run_name=self.session_dir.name,
                                   tags={"energy_console.session": self.session_dir.name})
        self.parent_id = parent.info.run_id
        self.client = client

    def log(self, record: RunRecord, run_dir: Path) -> None:
        if self.client is None:
            return
        self._guard(lambda: self._log(record, run_dir), f"MLflow logging {record.run_id}")

    def _log(self, record: RunRecord, run_dir: Path) -> None:
        from mlflow.entities import Metric, Param

        client = self.client
        run = client.create_run(self.experiment_id, run_name=record.run_id, tags={
            "mlflow.parentRunId": self.parent_id, "energy_console.session":
            self.session_dir.name, "energy_console.run_id": record.run_id})
        run_id = run.info.run_id
        now_ms = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, now_ms, 0) for k, v in run_metrics(record).items()],
            params=[Param(k, v[:6000]) for k, v in run_params(record).items()],
        )
        for name in ("result.json", "latency.csv"):
            if (run_dir / name).exists():
                client.log_artifact(run_id, str(run_dir / name))
        client.set_terminated(run_id, STATUS.get(record.status, "FINISHED"))

    def finish(self, status: str) -> None:
        """The session's plots to the parent run, and the parent closed."""
        if self.client is None or self.parent_id is None:
            return
        self._guard(self._plots, "MLflow plots")
        if self.client is not None:
            self._guard(lambda: self.client.set_terminated(
                self.parent_id, "FINISHED" if status == "completed" else "KILLED"),
                "MLflow closing the session's run")

    def _plots(self) -> None:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            return
        from energy_console.core.analysis.export import write_plots
        from energy_console.core.store.follow import read_session

        with tempfile.TemporaryDirectory() as folder:
            write_plots(read_session(self.session_dir), Path(folder))
            self.client.log_artifacts(self.parent_id, folder, "plots")

    def _guard(self, action: Callable[[], None], what: str) -> None:
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - tracking never stops a measurement
            self.client = None
            # the URI and the client's error text may hold a password or a token
            self.notice(without_secrets(f"{what} failed ({type(exc).__name__}: "
                                        f"{str(exc)[:300]}); the session goes on without "
                                        "MLflow tracking"))
