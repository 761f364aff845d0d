"""The results row: one type, built in one place, for every table, plot and results file.

Every producer of results (the policy evaluator behind the demo, ``prompt-env eval``
and the benchmark harness; ``prompt-env optimize``; the CLI's edit and compose
evaluations) builds a :class:`ResultRow` and stores ``as_dict()``. Its costs are
measured :class:`~agents.experiments.usage.Usage` values: ``llm_calls`` = training (or
selection) + evaluation calls requested, cached or not; ``distinct_pairs`` = the distinct
(prompt, input) pairs among them, counted as if the policy ran alone; ``proposer_calls`` /
``proposer_tokens`` = what an instruction-writing LLM was asked, apart from the task LLM's
calls (0 for most policies); ``wall_s`` = the measured time of the work done for this row
alone. :mod:`~agents.experiments.report` and :mod:`~agents.experiments.plots` read the dicts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from agents.experiments.usage import Usage


@dataclasses.dataclass
class ResultRow:
    """One policy's score on a fixed set of evaluation inputs and what it cost."""

    policy: str
    test_score: float
    n_test: int
    """Evaluation inputs scored."""
    train: Usage = dataclasses.field(default_factory=Usage)
    """What choosing the prompt cost (training, a dev search)."""
    evaluation: Usage = dataclasses.field(default_factory=Usage)
    """What scoring the choice on the evaluation inputs cost."""
    hit_rate: float | None = None
    """Cache hit rate to report (None: that of ``train + evaluation``)."""
    prompt_counts: list[int] = dataclasses.field(default_factory=list)
    """How often each pool prompt was chosen (policies that choose per input)."""
    upper_bound: bool = False
    """True for the oracle: it looks at the answers, so it bounds, not competes."""
    notes: str = ""
    context: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The setting and the policy's own fields (task, seed, metric, budget, final prompt ...)."""

    def as_dict(self) -> dict[str, Any]:
        """The row as results files store it (keys in table order, then the context)."""
        own = self.train + self.evaluation
        hit_rate = own.hit_rate if self.hit_rate is None else self.hit_rate
        return {
            "policy": self.policy,
            "test_score": round(float(self.test_score), 4),
            "n_test": int(self.n_test),
            "llm_calls": int(own.calls),
            "distinct_pairs": int(own.distinct),
            "train_calls": int(self.train.calls),
            "eval_calls": int(self.evaluation.calls),
            "cache_hit_rate": round(hit_rate, 3),
            "model_calls": int(own.model_calls),
            "proposer_calls": int(own.proposer_calls),
            "proposer_tokens": int(own.proposer_tokens),
            "wall_s": round(own.wall_s, 2),
            "prompt_counts": list(self.prompt_counts),
            "upper_bound": self.upper_bound,
            "notes": self.notes,
            **self.context,
        }
