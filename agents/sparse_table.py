"""A table of per-state rows that stores only the states it has seen.

:class:`~agents.tabular_q.TabularQAgent` keeps ``Q[state, action]`` (and the visit
counts) dense while ``n_states x n_actions`` is small; beyond that, for example the
Edit-Tabular env of a large prompt space (instruction x exemplar slots filled from the
whole train split x template x verbalizer: billions of configurations of which a run
visits a few hundred), a :class:`SparseRows` holds a row for each state it has been
asked about and answers every other state with the fill value. Indexing works like the
dense array's: ``table[state]`` (a row), ``table[state, action]``, assignment to both.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class SparseRows:
    """Rows of ``n_actions`` values for the states seen so far; unseen states read ``fill``."""

    def __init__(self, n_states: int, n_actions: int, fill: Any, dtype: Any) -> None:
        """``fill``: the value of every entry of an unseen state (a number, or a row of
        ``n_actions`` values)."""
        self.n_states, self.n_actions = int(n_states), int(n_actions)
        self.fill, self.dtype = fill, np.dtype(dtype)
        self.rows: dict[int, np.ndarray] = {}

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_states, self.n_actions)

    def _row(self, state: Any) -> np.ndarray:
        key = int(state)
        if not 0 <= key < self.n_states:
            raise IndexError(f"state {key} is outside [0, {self.n_states})")
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = np.array(np.broadcast_to(self.fill, (self.n_actions,)), dtype=self.dtype)
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple):
            state, action = key
            return self._row(state)[action]
        return self._row(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        if isinstance(key, tuple):
            state, action = key
            self._row(state)[action] = value
        else:
            self._row(key)[:] = value

    def sum(self) -> Any:
        """Sum over the stored rows (unseen states are not counted; for visit counts they hold 0)."""
        return sum((row.sum() for row in self.rows.values()), self.dtype.type(0))

    def to_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(state ids, their rows), states in increasing order, for saving."""
        states = np.array(sorted(self.rows), dtype=np.int64)
        rows = np.stack([self.rows[s] for s in states]) if len(states) else np.zeros((0, self.n_actions), self.dtype)
        return states, rows

    def load(self, states: np.ndarray, rows: np.ndarray) -> None:
        """Replace the stored rows by saved ones (see :meth:`to_arrays`)."""
        self.rows = {int(s): np.asarray(r, dtype=self.dtype).copy() for s, r in zip(states, rows, strict=True)}
