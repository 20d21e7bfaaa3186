"""Trial columns: what a run keeps of each trial once its record is gone, as numpy columns.

The summary, the plots and the tail causes need, per trial: its index, the plan's shape it ran
(``Trials.shape_of``: trials of one shape run the same calls), its latency, whether it failed and the
six parts of its breakdown (``records.PARTS``). That is 69 bytes a trial in one structured array,
sized for the trials the run expects and doubled should more arrive, so a run of a million trials
keeps 69 MB of them, and its percentiles stay exact.
"""

from __future__ import annotations

import numpy as np

from fabricsim.records import PARTS

ROW = np.dtype([("trial", np.int64), ("shape", np.int32), ("latency_ps", np.int64), ("failed", np.bool_),
                ("parts_ps", np.int64, (len(PARTS),))])


class TrialColumns:
    """Per-trial columns, appended to record by record; each column is a view of the rows so far."""

    def __init__(self, expected_trials: int) -> None:
        self._rows = np.empty(max(1, expected_trials), dtype=ROW)
        self.count = 0

    def append(self, record, shape: int) -> None:
        """Keep a trial record's columns (fields of runner.TrialRecord) and its shape."""
        if self.count == len(self._rows):
            self._rows = np.concatenate([self._rows, np.empty(len(self._rows), dtype=ROW)])
        self._rows[self.count] = (record.trial, shape, record.latency_ps, record.failed, record.breakdown.parts_ps())
        self.count += 1

    def _column(self, name: str) -> np.ndarray:
        return self._rows[name][: self.count]

    @property
    def trial(self) -> np.ndarray:
        return self._column("trial")

    @property
    def shape(self) -> np.ndarray:
        return self._column("shape")

    @property
    def latency_ps(self) -> np.ndarray:
        return self._column("latency_ps")

    @property
    def failed(self) -> np.ndarray:
        return self._column("failed")

    @property
    def parts_ps(self) -> np.ndarray:
        """One row per trial: its breakdown in PARTS order."""
        return self._column("parts_ps")
