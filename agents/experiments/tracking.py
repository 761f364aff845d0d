"""Experiment tracking with MLflow: ``--mlflow [URI]`` and ``tracking_uri=`` in Python.

A run logs its parameters (flattened: ``plan.method``, ``config.budget`` ...), curves as
metrics by step (the best dev score found so far against the LLM calls spent), the final
results table (each policy's test score and calls as metrics, the rows as a JSON table) and
its output files as artifacts. TensorBoard event files (:mod:`~agents.experiments.tensorboard`)
stay as they are; this module is the other tracker beside them.

The default store is a local MLflow file store, ``./mlruns`` (``file:`` URIs; MLflow keeps
that backend in maintenance mode and asks for ``MLFLOW_ALLOW_FILE_STORE=true``, which this
module sets for ``file:`` URIs only). Any other URI (an MLflow server ``http://...``, or
``sqlite:///mlflow.db`` with the full ``mlflow`` package) is passed on as it is. Needs
``pip install 'prompt-env[tracking]'`` (``mlflow-skinny``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

DEFAULT_STORE = "mlruns"
EXPERIMENT = "prompt-env"
MAX_PARAM_LENGTH = 500


def tracking_uri(value: str | os.PathLike[str] | None) -> str:
    """The MLflow tracking URI of ``--mlflow [URI]``: a URI as given, a path as a file store,
    None or "" as ``./mlruns``."""
    text = os.fspath(value) if value else DEFAULT_STORE
    if "://" in text or text.startswith("file:"):
        return text
    return Path(text).expanduser().resolve().as_uri()


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"plan": {"budget": 500}}`` -> ``{"plan.budget": "500"}`` (MLflow params are strings)."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            out[name] = text[:MAX_PARAM_LENGTH]
    return out


def _mlflow(uri: str) -> Any:
    try:
        import mlflow
    except ImportError as error:
        raise ImportError(f"MLflow tracking needs the 'mlflow-skinny' package ({error}); "
                          "pip install 'prompt-env[tracking]'") from None
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return mlflow


class MLflowRun:
    """One MLflow run: ``with MLflowRun(uri, name) as run: run.params(...); run.curve(...)``."""

    def __init__(self, uri: str | os.PathLike[str] | None, name: str,
                 experiment: str = EXPERIMENT) -> None:
        self.uri = tracking_uri(uri)
        self.name = name
        self.experiment = experiment
        self.run_id: str | None = None
        self._client: Any = None

    def __enter__(self) -> MLflowRun:
        mlflow = _mlflow(self.uri)
        self._client = mlflow.tracking.MlflowClient(tracking_uri=self.uri)
        found = self._client.get_experiment_by_name(self.experiment)
        experiment_id = (found.experiment_id if found is not None
                         else self._client.create_experiment(self.experiment))
        self.run_id = self._client.create_run(experiment_id, run_name=self.name).info.run_id
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        self._client.set_terminated(self.run_id, "FINISHED" if kind is None else "FAILED")

    def params(self, data: Mapping[str, Any]) -> None:
        for key, value in flatten(data).items():
            self._client.log_param(self.run_id, key, value)

    def metric(self, name: str, value: float, step: int = 0) -> None:
        self._client.log_metric(self.run_id, name, float(value), step=int(step))

    def curve(self, name: str, points: Iterable[tuple[float, float]]) -> None:
        """A curve as one metric by step: ``(step, value)`` pairs (steps: LLM calls spent)."""
        for step, value in points:
            self.metric(name, value, int(step))

    def table(self, rows: Sequence[Mapping[str, Any]], file: str = "results_table.json",
              keys: Sequence[str] = ("policy", "test_score", "llm_calls", "distinct_pairs",
                                     "wall_s")) -> None:
        """The results table as an MLflow table artifact, and each row's score and calls as
        metrics (``test_score/<policy>``, ``llm_calls/<policy>``)."""
        self._client.log_table(self.run_id, {k: [r.get(k) for r in rows] for k in keys}, file)
        for row in rows:
            self.metric(f"test_score/{row['policy']}", row["test_score"])
            self.metric(f"llm_calls/{row['policy']}", row["llm_calls"])

    def artifacts(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        for path in paths:
            if Path(path).is_file():
                self._client.log_artifact(self.run_id, str(path))


def read_run(uri: str | os.PathLike[str] | None, run_id: str) -> dict[str, Any]:
    """What a run holds (params, latest metrics, the history of each metric, artifact names):
    for tests and for reading a run back without the MLflow UI."""
    mlflow = _mlflow(tracking_uri(uri))
    client = mlflow.tracking.MlflowClient(tracking_uri=tracking_uri(uri))
    run = client.get_run(run_id)
    return {"params": dict(run.data.params), "metrics": dict(run.data.metrics),
            "history": {name: [(m.step, m.value) for m in client.get_metric_history(run_id, name)]
                        for name in run.data.metrics},
            "artifacts": sorted(a.path for a in client.list_artifacts(run_id)),
            "status": run.info.status, "name": run.info.run_name}
