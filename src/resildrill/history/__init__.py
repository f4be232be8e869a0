"""Run history: a local SQLite store of every run, trends, comparisons, the regression gate.

``run`` reads the history before it writes report.json (:func:`apply_history`: the
``trend`` field and the ``regression.<metric>`` gates) and appends the run after
(:func:`record_run`); ``resildrill history import`` adds reports made elsewhere (CI
artefacts); ``resildrill compare`` puts two runs side by side. The store's location is
``--db``, ``$RESILDRILL_HISTORY`` or the user's data folder (:func:`default_path`).
"""

from __future__ import annotations

from resildrill.history.compare import Comparison, Row, compare_reports
from resildrill.history.figures import RunFigures, run_figures
from resildrill.history.recorder import apply_history, record_run
from resildrill.history.regression import RegressionCheck, check_regression, regression_gates
from resildrill.history.store import ENV_VAR, HistoryStore, StoredRun, default_path

__all__ = [
    "ENV_VAR",
    "Comparison",
    "HistoryStore",
    "RegressionCheck",
    "Row",
    "RunFigures",
    "StoredRun",
    "apply_history",
    "check_regression",
    "compare_reports",
    "default_path",
    "record_run",
    "regression_gates",
    "run_figures",
]
