"""What a phase of an experiment cost, measured from the env's LLM usage meter."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@dataclasses.dataclass
class Usage:
    """LLM spend and wall time of one phase (training, a dev search, a test evaluation).

    Every field is measured: ``calls`` are the (prompt, input) requests made
    through the env's LLM (answered by the cache or not), ``distinct`` the distinct ones among
    them, ``cache_hits`` / ``model_calls`` what the cache and the model did,
    ``wall_s`` the phase's own wall-clock time. ``proposer_calls`` / ``proposer_tokens``: what
    an instruction-writing LLM (``prompt_env.proposer``) was asked, metered apart from the
    task LLM (0 for policies without one); they never count in ``calls`` or a budget.
    """

    calls: int = 0
    distinct: int = 0
    cache_hits: int = 0
    model_calls: int = 0
    wall_s: float = 0.0
    proposer_calls: int = 0
    proposer_tokens: int = 0

    @property
    def hit_rate(self) -> float:
        return self.cache_hits / self.calls if self.calls else 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, f.name) + getattr(other, f.name)
                       for f in dataclasses.fields(self)))

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "wall_s": round(self.wall_s, 2)}


def read_usage(env: Any) -> dict[str, int]:
    """``llm_usage()`` of a prompt env (through any wrappers); empty for other envs."""
    try:
        return dict(env.get_wrapper_attr("llm_usage")())
    except AttributeError:
        return {}


def usage_between(before: dict[str, int], after: dict[str, int], wall_s: float) -> Usage:
    """The :class:`Usage` between two ``llm_usage()`` readings of one env."""

    def delta(key: str) -> int:
        return int(after.get(key, 0)) - int(before.get(key, 0))

    # the LLM meter sees every request (env steps and score tables alike)
    return Usage(calls=delta("calls"), distinct=delta("distinct"),
                 cache_hits=delta("cache_hits"), model_calls=delta("model_calls"), wall_s=wall_s,
                 proposer_calls=delta("proposer_calls"), proposer_tokens=delta("proposer_tokens"))


@contextmanager
def measured(env: Any) -> Iterator[Callable[[], Usage]]:
    """``with measured(env) as usage: ...`` then ``usage()`` is what the block cost."""
    before, start = read_usage(env), time.perf_counter()
    result: list[Usage] = []

    def usage() -> Usage:
        if not result:
            raise RuntimeError("measured(): usage() is known only after the with-block")
        return result[0]

    try:
        yield usage
    finally:
        result.append(usage_between(before, read_usage(env), time.perf_counter() - start))
