"""What ``prompt-env optimize`` will do, before it does it: the method for the budget, the
presets, and the LLM calls the run will request at most (``--dry-run`` prints it).

Budgets are counted in task-LLM calls requested (cached or not). A task's **pool cost** is
what scoring every prompt of its pool once on the search's dev inputs costs: K pool prompts
x d dev inputs (d = all of dev up to 32). The presets and the method rule are multiples of it:

========  ==================  ===============================================
preset    budget              method (no ``--policy``)
========  ==================  ===============================================
light     1 x pool cost       best-fixed-on-dev
medium    3 x pool cost       best-fixed-on-dev (below the rule's threshold)
heavy     5 x pool cost       edit-tabular-q
========  ==================  ===============================================

The rule (:data:`BUDGET_RULE`) rests on committed benchmark rows (:data:`RULE_EVIDENCE`):
at or above the threshold tabular Q-learning over the shared search space (dev ties broken
on held-out inputs), below it best-fixed-on-dev. The threshold is the smallest budget at which
the rows show tabular Q ahead on every task measured (AG News at 1600 calls = 4.5 pool costs;
SST-2 at 2000 = 5.7); below it no committed row shows tabular Q ahead, so the cheaper,
predictable reference is kept. ``benchmarks/budget_rule.py`` sweeps 1-5 pool costs to move it.
``heavy`` stays at 5: at 6.5 pool costs (the search itself then gets SST-2's 2000 calls after
the tie-break's reserve) the 5 SST-2 runs ship the same prompts at 30% more calls
(``benchmarks/results/optimize/budget-2288``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from agents.experiments.registry import POLICIES, get_policy
from agents.experiments.search_space import SEARCH_SPACE, describe_search_space
from agents.experiments.tie_break import TieBreak

DEFAULT_POLICY = "best-fixed-on-dev"
SEARCH_POLICY = "edit-tabular-q"
PER_INPUT_POLICIES = frozenset({"random", "manual", "per-query-oracle", "tabular-q", "dqn", "sb3-ppo"})
"""Policies that choose a prompt per input (or none): they cannot give one prompt to ship."""
TEXTLESS_KINDS = frozenset({"white-box"})
"""Policy kinds whose result is not a text prompt (soft prompts: trained virtual tokens)."""
DEFAULT_TEST_LIMIT = 200

DEFAULT_TIE_BREAK = TieBreak()
"""Edit-env methods of ``optimize`` break dev ties on held-out inputs by default."""

PRESETS: dict[str, float] = {"light": 1.0, "medium": 3.0, "heavy": 5.0}
"""Budget presets as multiples of the task's pool cost (K pool prompts x d dev inputs)."""


@dataclasses.dataclass(frozen=True)
class RuleEvidence:
    """One committed result the method rule rests on (mean over seeds, test accuracy %)."""

    task: str
    budget: int
    """The LLM calls of the search's budget in the rows."""
    search: float
    """edit-tabular-q over the shared search space."""
    best_fixed: float
    """best-fixed-on-dev on the same seeds and test inputs."""
    seeds: int
    rows: str
    """Where the rows are (``benchmarks/results/...``)."""
    pool_cost: int = 352
    """The task's pool cost (K pool prompts x its search dev inputs; 11 x 32 for SST-2 and AG News)."""

    @property
    def budget_pool_costs(self) -> float:
        """The budget as a multiple of the pool cost."""
        return self.budget / self.pool_cost


RULE_EVIDENCE: tuple[RuleEvidence, ...] = (
    RuleEvidence("sst2", 2000, 85.16, 80.84, 5, "benchmarks/results/edit_search"),
    RuleEvidence("agnews", 1600, 75.40, 64.90, 5, "benchmarks/results/edit_search"),
)
"""Means over seeds of the committed edit-search rows (a test checks them against the rows)."""

GENERATION_EVIDENCE: tuple[RuleEvidence, ...] = (
    RuleEvidence("ii-antonyms", 1600, 24.80, 20.00, 5, "benchmarks/results/proposer", 256),
    RuleEvidence("ii-translation_en-de", 1600, 4.00, 4.00, 5, "benchmarks/results/proposer", 256),
    RuleEvidence("ii-informal_to_formal", 224, 35.72, 32.48, 5, "benchmarks/results/proposer", 56),
)
"""Generation tasks (exact match or token F1, %): the instruction-induction proposer rows, with
32 exemplar candidates (15 for informal-to-formal) instead of 64. Shown beside the rule, not
part of it: a user's generation task gets the rule the classification rows set."""

BUDGET_RULE = 4.5
"""edit-tabular-q from this many pool costs of budget on; best-fixed-on-dev below."""


def pool_cost(n_prompts: int, dev_inputs: int) -> int:
    """Calls of scoring every pool prompt once on ``dev_inputs`` dev inputs."""
    return n_prompts * dev_inputs


def search_dev_inputs(n_dev: int) -> int:
    """Dev inputs the search scores each candidate on (the search space's minibatch)."""
    return min(n_dev, int(SEARCH_SPACE["minibatch_size"]))


def pool_dev_inputs(budget: int, n_prompts: int, n_dev: int) -> int:
    """Dev inputs best-fixed-on-dev scores each pool prompt on with ``budget``: the first
    ``budget // K``, at most all of dev."""
    return max(1, min(n_dev, budget // n_prompts))


def resolve_budget(budget: int | str, n_prompts: int, dev_inputs: int) -> tuple[int, str | None]:
    """(calls, preset name or None) of an integer budget or a preset name."""
    if isinstance(budget, str) and not budget.strip().isdigit():
        if budget not in PRESETS:
            raise ValueError(f"budget {budget!r} is neither a number of LLM calls nor a preset "
                             f"({', '.join(PRESETS)})")
        return int(round(PRESETS[budget] * pool_cost(n_prompts, dev_inputs))), budget
    calls = int(budget)
    if calls < 1:
        raise ValueError(f"budget must be a positive number of LLM calls or a preset "
                         f"({', '.join(PRESETS)}), got {budget!r}")
    return calls, None


def single_prompt_methods() -> list[str]:
    """Registered policies that end with one text prompt to ship."""
    return [name for name, policy in POLICIES.items()
            if name not in PER_INPUT_POLICIES and not policy.upper_bound
            and policy.kind not in TEXTLESS_KINDS]


def rule_text() -> str:
    """The method rule and the rows it rests on, for the dry run and the report."""
    def line(e: RuleEvidence, verdict: str) -> str:
        return (f"  {e.task} at {e.budget_pool_costs:.1f} x pool cost: {SEARCH_POLICY} "
                f"{e.search:.1f} vs {DEFAULT_POLICY} {e.best_fixed:.1f} ({e.seeds} seeds; "
                f"{verdict}) [{e.rows}]")

    lines = [f"rule: {SEARCH_POLICY} (tabular Q-learning, gamma 0.9, over the shared search space, "
             f"dev ties broken on held-out inputs) from {BUDGET_RULE:g} x the pool cost on, "
             f"{DEFAULT_POLICY} below"]
    lines += [line(e, "ahead" if e.search > e.best_fixed else "not ahead") for e in RULE_EVIDENCE]
    lines.append("  generation tasks, beside the rule (up to 32 exemplar candidates):")
    lines += [line(e, f"{e.search - e.best_fixed:+.1f} points") for e in GENERATION_EVIDENCE]
    return "\n".join(lines)


def choose_method(budget: int, n_prompts: int, dev_inputs: int,
                  method: str | None = None) -> tuple[str, str]:
    """(method, why) for this budget; a ValueError saying what to change when it cannot run."""
    if budget < n_prompts:
        raise ValueError(f"budget {budget} is below the {n_prompts} LLM calls needed to score each "
                         f"of the task's {n_prompts} pool prompts once; give at least {n_prompts}")
    if method is None:
        cost = pool_cost(n_prompts, dev_inputs)
        if budget >= BUDGET_RULE * cost:
            return SEARCH_POLICY, (f"chosen by the budget rule: {budget} calls >= {BUDGET_RULE:g} x "
                                   f"the pool cost ({cost}); {get_policy(SEARCH_POLICY).description}")
        return DEFAULT_POLICY, (f"chosen by the budget rule: {budget} calls < {BUDGET_RULE:g} x the "
                                f"pool cost ({cost}); every pool prompt on the first budget // K "
                                "dev inputs, the best kept")
    if method == DEFAULT_POLICY:
        return method, "every pool prompt on the first budget // K dev inputs, the best kept"
    get_policy(method)  # unknown: a ValueError with close matches
    if method not in single_prompt_methods():
        why = ("trains no text prompt" if get_policy(method).kind in TEXTLESS_KINDS
               else "chooses a prompt per input")
        raise ValueError(f"policy {method!r} {why}, so it gives no single prompt to ship; "
                         f"choose one of {', '.join(single_prompt_methods())}")
    return method, f"{get_policy(method).description} (chosen with --policy)"


def uses_edit_env(method: str) -> bool:
    """Whether the method searches the Edit env's prompt space (and so the shared search space)."""
    return method.startswith("edit-") or get_policy(method).kind == "search" or method == "maskable-ppo"


@dataclasses.dataclass
class OptimizePlan:
    """What a run will do and how many LLM calls it will request at most (cached or not)."""

    task: str
    method: str
    reason: str
    n_prompts: int
    n_train: int
    n_dev: int
    dev_inputs: int
    """Dev inputs best-of-pool (and best-fixed-on-dev) scores each pool prompt on."""
    n_test: int
    budget: int
    search_calls: int
    reference_calls: int
    """Best-of-pool's dev scores when the method is not best-fixed-on-dev (0 otherwise)."""
    eval_calls: int
    """At most three prompts (winner, manual, best-of-pool) on the held-out inputs."""
    preset: str | None = None
    search_space: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The Edit env's search-space kwargs (empty for best-fixed-on-dev)."""
    train_reward: str | None = None
    tie_break: TieBreak | None = None
    by_rule: bool = False

    @property
    def total_calls(self) -> int:
        return self.search_calls + self.reference_calls + self.eval_calls

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["total_calls"] = self.total_calls
        return data

    def describe(self) -> str:
        preset = f" (preset {self.preset})" if self.preset else ""
        lines = [
            f"task {self.task}: {self.n_prompts} pool prompts; {self.n_train} train, "
            f"{self.n_dev} dev, {self.n_test} held-out test inputs used",
            f"budget {self.budget} LLM calls{preset}; pool cost {pool_cost(self.n_prompts, search_dev_inputs(self.n_dev))} "
            f"({self.n_prompts} prompts x {search_dev_inputs(self.n_dev)} dev inputs)",
            f"method {self.method}: {self.reason}",
        ]
        if self.search_space:
            lines.append(f"search space: {describe_search_space(self.search_space, self.train_reward)}")
            if self.tie_break is not None:
                t = self.tie_break
                lines.append(f"tie-break: up to {t.prompts} prompts within {t.within} dev input(s) "
                             f"of the best rescored on up to {t.inputs} held-out inputs (at most "
                             f"{t.reserve(self.budget)} calls of the budget)")
        lines += [f"projected LLM calls (requested, cached or not; at most): {self.total_calls}",
                  f"  search: {self.search_calls}"]
        if self.reference_calls:
            lines.append(f"  best-of-pool reference on dev: {self.reference_calls}")
        lines.append(f"  held-out evaluation (winner, manual, best-of-pool on {self.n_test} inputs): "
                     f"{self.eval_calls}")
        if self.by_rule:
            lines.append(rule_text())
        lines.append("presets for this task: " + ", ".join(self._preset_texts()))
        return "\n".join(lines)

    def _preset_texts(self) -> list[str]:
        """Each preset's calls and, when the rule picks the method, what it runs: two presets
        that both run best-fixed-on-dev on all of dev are one run (on a dev set of at most 32
        inputs light and medium are)."""
        d = search_dev_inputs(self.n_dev)
        texts, seen = [], {}
        for name, factor in PRESETS.items():
            calls = int(round(factor * pool_cost(self.n_prompts, d)))
            if not self.by_rule:
                texts.append(f"{name} {calls} calls")
                continue
            method, _ = choose_method(calls, self.n_prompts, d)
            run = method
            if method == DEFAULT_POLICY:
                inputs = pool_dev_inputs(calls, self.n_prompts, self.n_dev)
                run = f"{method}, {self.n_prompts} x {inputs} dev inputs"
            same = f"; the same run as {seen[run]}" if run in seen else ""
            seen.setdefault(run, name)
            texts.append(f"{name} {calls} calls ({run}{same})")
        return texts


@dataclasses.dataclass
class OptimizeResult:
    """The winning prompt, its rendering and the comparison rows."""

    prompt: Any
    """The winner, a ``prompt_env.prompts.Prompt``."""
    prompt_text: str
    """``best_prompt.txt``: the text to send, with ``{field}`` placeholders for the input."""
    rows: list[dict[str, Any]]
    plan: OptimizePlan
    out: Path
    usage: Any
    """Everything the run requested from the task LLM (search, reference, evaluation)."""
    resumed: bool = False
    """True when finished phases were read from a killed run's saved state."""
    tracking_run_id: str | None = None
    """The MLflow run, when the run was tracked."""


def plan_run(data: str, *, llm: Any = "default", budget: int | str = 500, method: str | None = None,
             task_options: dict[str, Any] | None = None, test_limit: int | None = DEFAULT_TEST_LIMIT,
             metric: str | None = None, seed: int = 0,
             tie_break: TieBreak | bool | None = None) -> OptimizePlan:
    """The plan of a run (reads the data, calls no LLM): what ``--dry-run`` prints and what
    :func:`~agents.experiments.optimize.optimize` carries out. ``tie_break`` sizes the
    tie-break of Edit-env methods (None: :data:`DEFAULT_TIE_BREAK`; ``False``: none)."""
    from agents.experiments.setting import Setting
    from agents.experiments.task_ids import task_label

    setting = Setting.for_task(str(data), llm=llm, seed=seed, task_options=task_options,
                               metric=metric, split="dev")
    env = setting.select_env()
    task = env.task
    if metric is not None:  # an unknown name or an unimportable module:function fails before any work
        from prompt_env.scoring import resolve_reward

        resolve_reward(task, metric)
    k = len(env.prompts)
    n_dev = len(task.split("dev"))
    calls, preset = resolve_budget(budget, k, search_dev_inputs(n_dev))
    chosen, reason = choose_method(calls, k, search_dev_inputs(n_dev), method)
    dev_inputs = pool_dev_inputs(calls, k, n_dev)
    n_test = len(task.split("test")) if test_limit is None else min(test_limit, len(task.split("test")))
    pooled = chosen == DEFAULT_POLICY
    if pooled:
        reason = reason.replace("the first budget // K dev inputs",
                                f"the first {dev_inputs} dev inputs ({k} x {dev_inputs} calls)")
    # best-of-pool, the reference of any other method, sees as many dev inputs as it would
    # with the whole budget (all of dev when the budget pays for it), so it is not weakened
    dev_inputs_reference = dev_inputs
    edit = uses_edit_env(chosen)
    search = Setting.for_task(str(data), llm=llm, seed=seed, task_options=task_options,
                              metric=metric, split="dev", search_space=True) if edit else setting
    return OptimizePlan(
        task_label(data), chosen, reason, k, len(task.split("train")), n_dev, dev_inputs_reference,
        n_test, calls, k * dev_inputs if pooled else calls,
        0 if pooled else k * dev_inputs_reference, (2 if pooled else 3) * n_test, preset,
        search.edit_options if edit else {}, search.train_reward if edit else None,
        (DEFAULT_TIE_BREAK if tie_break is None else tie_break or None) if edit else None,
        method is None)
