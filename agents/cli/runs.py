"""`prompt-env demo`, `train` and `eval`: thin callers of the experiment layer."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path
from typing import Any

from agents.cli.checks import (
    UsageError,
    check_agent,
    check_env_id,
    check_env_kwargs,
    check_llm_spec,
    check_reward,
    parse_json_object,
)

RUN_FILE = "run.json"
AGENT_FILE = "agent.safetensors"
METRICS_FILE = "metrics.csv"
CURVE_FIELDS = ("step", "reward", "llm_calls", "distinct", "cache_hits")

# --------------------------------------------------------------------------- demo


def command_demo(args: argparse.Namespace) -> int:
    from agents.experiments import demo

    options: dict[str, Any] = {}
    for name in ("out", "steps", "n_test", "seed"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.llm is not None:
        options["llm"] = check_llm_spec(args.llm)
    demo.run_demo(**options)
    return 0


# --------------------------------------------------------------------------- train


def command_train(args: argparse.Namespace) -> int:
    import gymnasium as gym
    from rich.console import Console

    from agents import make_agent
    from agents.checkpoint import package_version
    from agents.experiments.files import redact, save_csv, save_json
    from agents.experiments.train import agent_defaults, env_kind, train

    console = Console()
    env_id = check_env_id(args.env)
    agent_name = check_agent(args.policy)
    env_kwargs = parse_json_object(args.env_kwargs, "--env-kwargs")
    agent_kwargs = parse_json_object(args.agent_kwargs, "--agent-kwargs")
    llm = check_llm_spec(args.llm if args.llm is not None else env_kwargs.pop("llm", "default"))
    env_kwargs.pop("llm", None)
    # Envs that are not prompt envs (CartPole-v1, ...) take no task LLM.
    prompt_env_entry = str(gym.spec(env_id).entry_point).startswith("prompt_env.")
    llm_kwargs = {"llm": llm} if prompt_env_entry else {}
    check_env_kwargs(env_id, {**env_kwargs, **llm_kwargs})
    out = args.out or Path("runs") / f"{env_id.split('/')[-1]}-{agent_name}-seed{args.seed}"

    # Build the env and the agent once before training: a missing data dir, an
    # agent that does not fit the env's spaces or a bad agent option is a one-line
    # error here rather than a traceback in the middle of the progress bar.
    try:
        # without its reward: check_reward below says what rewards fit the task
        probe = gym.make(env_id, **{k: v for k, v in env_kwargs.items() if k != "reward"}, **llm_kwargs)
    except TypeError as error:
        raise UsageError(f"--env-kwargs: {env_id}: {error}", "check --env-kwargs") from None
    try:
        make_agent(agent_name, probe,
                   **{**agent_defaults(probe, agent_name), "seed": args.seed, **agent_kwargs})
    except TypeError as error:
        raise UsageError(f"--agent-kwargs: {agent_name}: {error}", "check --agent-kwargs") from None
    except ValueError as error:
        raise UsageError(f"{agent_name} cannot run on {env_id}: {error}",
                         "tabular-q needs a -Tabular env id; `prompt-env list` shows the env kinds") from None
    else:
        if env_kind(probe) != "other":
            check_reward(probe, env_kwargs.get("reward"))
    finally:
        probe.close()

    record: dict[str, Any] = {
        "status": "running",
        "env_id": env_id,
        "agent": agent_name,
        "steps": args.steps,
        "seed": args.seed,
        "llm": redact(llm) if llm_kwargs else None,
        "env_kwargs": redact(env_kwargs),
        "agent_kwargs": redact(agent_kwargs),
        "checkpoint_every": args.checkpoint_every,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "package_version": package_version(),
        "files": {"agent": AGENT_FILE, "metrics": METRICS_FILE},
    }
    out.mkdir(parents=True, exist_ok=True, mode=0o700)  # run files are private to the user
    replace_previous_run(out, console)
    save_json(record, out / RUN_FILE)
    llm_note = f"task LLM {redact(llm)!r}, " if llm_kwargs else ""
    console.print(f"Training [bold]{agent_name}[/] on [bold]{env_id}[/] for {args.steps} steps "
                  f"({llm_note}seed {args.seed}) -> {out}", highlight=False)
    start = time.perf_counter()
    try:
        result = train(
            env_id, agent_name, args.steps, seed=args.seed, env_kwargs={**env_kwargs, **llm_kwargs},
            agent_kwargs=agent_kwargs, checkpoint=out / AGENT_FILE if args.checkpoint_every else None,
            checkpoint_every=args.checkpoint_every or 0, tensorboard_log=args.tensorboard,
        )
    except KeyboardInterrupt:
        record.update(status="interrupted", wall_s=round(time.perf_counter() - start, 2))
        save_json(record, out / RUN_FILE)
        if args.checkpoint_every and (out / AGENT_FILE).exists():
            print(f"prompt-env train: interrupted; the last checkpoint is {out / AGENT_FILE}", file=sys.stderr)
        raise
    result.agent.save(out / AGENT_FILE, env_id=env_id)
    save_csv(result.curve, out / METRICS_FILE, CURVE_FIELDS)
    rewards = [c["reward"] for c in result.curve]
    record.update(
        status="finished",
        steps_done=result.log.steps if result.log else result.steps,
        episodes=result.log.episodes if result.log else None,
        mean_reward=round(sum(rewards) / len(rewards), 4) if rewards else None,
        mean_reward_last_50=round(sum(rewards[-50:]) / len(rewards[-50:]), 4) if rewards else None,
        wall_s=round(result.usage.wall_s, 2),
        llm_calls=result.usage.calls,
        distinct_pairs=result.usage.distinct,
        cache_hits=result.usage.cache_hits,
        model_calls=result.usage.model_calls,
    )
    if result.tensorboard_dir is not None:
        record["files"]["tensorboard"] = str(result.tensorboard_dir)
    save_json(record, out / RUN_FILE)
    console.print(train_summary(record, out))
    if llm_kwargs:
        console.print(f"Evaluate it with: prompt-env eval --run {out} --split test", highlight=False)
    return 0


def replace_previous_run(out: Path, console: Any) -> None:
    """A new run in a run directory replaces the old one: say so, and remove the old run's
    agent, metrics and evaluations (``eval_*.json`` describe the old agent, perhaps of another
    env), so a killed new run never leaves them to pass for its own. Training starts afresh;
    it does not resume from the old checkpoint."""
    old = out / RUN_FILE
    if not old.exists():
        return
    try:
        previous = json.loads(old.read_text(encoding="utf-8"))
        what = f"a {previous.get('agent')} run on {previous.get('env_id')}, status {previous.get('status')!r}"
    except (OSError, ValueError, AttributeError):
        what = "an unreadable run.json"
    stale = sorted(out.glob("eval_*.json")) + [p for p in (out / METRICS_FILE, out / AGENT_FILE) if p.exists()]
    for path in stale:
        path.unlink()
    removed = f"; removed its {', '.join(p.name for p in stale)}" if stale else ""
    console.print(f"note: {out} held {what}; this run replaces it, from step 0{removed}",
                  highlight=False, markup=False)


def train_summary(record: dict[str, Any], out: Path) -> Any:
    from rich.table import Table

    table = Table(title=f"{record['agent']} on {record['env_id']}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("steps / episodes", f"{record['steps_done']} / {record['episodes']}"),
        ("mean training reward (all / last 50)",
         f"{_fmt(record['mean_reward'])} / {_fmt(record['mean_reward_last_50'])}"),
        ("LLM calls (env) / distinct pairs / cache hits",
         f"{record['llm_calls']} / {record['distinct_pairs']} / {record['cache_hits']}"),
        ("model calls (not cached)", str(record["model_calls"])),
        ("wall time", f"{record['wall_s']:.1f} s"),
        ("files", f"{out / AGENT_FILE}, {out / METRICS_FILE}, {out / RUN_FILE}"),
    ]
    for what, value in rows:
        table.add_row(what, value)
    return table


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"

# --------------------------------------------------------------------------- eval


def read_run(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RUN_FILE
    if not run_dir.is_dir():
        raise UsageError(f"run directory {run_dir} does not exist",
                         "make one with `prompt-env train --env ID --policy NAME --steps N --out DIR`")
    if not path.is_file():
        raise UsageError(f"{run_dir} has no {RUN_FILE}: it is not a run directory made by `prompt-env train`",
                         "make one with `prompt-env train --env ID --policy NAME --steps N --out DIR`")
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UsageError(f"{path} is not readable JSON ({error})", "train the agent again") from None
    missing = [key for key in ("env_id", "agent") if not isinstance(record, dict) or key not in record]
    if missing:
        raise UsageError(f"{path} lacks {', '.join(missing)}", "train the agent again with `prompt-env train`")
    return record


def command_eval(args: argparse.Namespace) -> int:
    import gymnasium as gym
    from rich.console import Console

    from agents import load_agent
    from agents.experiments.files import redact, save_json
    from agents.experiments.report import policy_table
    from agents.experiments.train import env_kind

    console = Console()
    record = read_run(args.run)
    env_id = check_env_id(record["env_id"])
    if not str(gym.spec(env_id).entry_point).startswith("prompt_env."):
        raise UsageError(f"eval works on PromptEnv Select and Edit envs, not {env_id}",
                         "evaluate other envs with agents.sb3.evaluate_sb3 or your own loop")
    llm = check_llm_spec(args.llm if args.llm is not None else record.get("llm", "default"))
    if "<redacted>" in json.dumps(llm):
        raise UsageError("the run's LLM spec had secrets, which run.json does not keep",
                         "pass the full spec again with --llm")
    agent = load_agent(args.run / record.get("files", {}).get("agent", AGENT_FILE), env_id=env_id)
    if record.get("status", "finished") != "finished":
        console.print(f"[yellow]note:[/] run status is {record.get('status')!r}; evaluating its last checkpoint")
    env_kwargs = {k: v for k, v in record.get("env_kwargs", {}).items() if k != "reward"}
    probe = gym.make(env_id, **env_kwargs, llm=llm)  # reads the task: a missing data dir fails here
    try:
        check_reward(probe, args.reward)
        kind = env_kind(probe)
    finally:
        probe.close()
    start = time.perf_counter()
    if kind == "select":
        rows = evaluate_select_run(env_id, agent, record, {**env_kwargs, "llm": llm}, args)
        extra: dict[str, Any] = {}
    elif kind == "compose":
        rows, extra = evaluate_compose_run(env_id, agent, record, {**env_kwargs, "llm": llm}, args)
    else:
        rows, extra = evaluate_edit_run(env_id, agent, record, {**env_kwargs, "llm": llm}, args)
    report = {
        "run": str(args.run),
        "env_id": env_id,
        "agent": record["agent"],
        "split": args.split,
        "limit": args.limit,
        "dev_limit": args.dev_limit if kind == "select" else None,
        "reward": args.reward or "task metric",
        "llm": redact(llm),
        "wall_s": round(time.perf_counter() - start, 2),
        "rows": rows,
        **extra,
    }
    path = args.run / f"eval_{args.split}.json"
    save_json(report, path)
    title = f"{env_id}, {args.split} split ({rows[0]['n_test']} inputs), {args.reward or 'task metric'}"
    console.print(policy_table(rows, title, notes=True).to_rich())
    console.print(f"Wrote {path}", highlight=False)
    return 0


def evaluate_select_run(env_id: str, agent: Any, record: dict[str, Any], env_kwargs: dict[str, Any],
                        args: argparse.Namespace) -> list[dict[str, Any]]:
    """The agent's greedy prompt per input next to the baselines, from score tables."""
    from agents.experiments import PolicyResult, run_policy
    from agents.experiments.evaluate import evaluate_result
    from agents.experiments.policies import choices_of_agent

    setting = setting_of_run(env_id, env_kwargs, seed=args.seed, metric=args.reward,
                             split=args.split, test_limit=args.limit, dev_limit=args.dev_limit)
    rows = [run_policy(setting, name, 0)
            for name in ("random", "manual", "best-fixed-on-dev", "per-query-oracle")]
    steps = int(record.get("steps_done", record.get("steps", 0)))
    result = PolicyResult(choices=choices_of_agent(setting, agent), train=training_usage(record),
                          notes=f"trained {steps} steps")
    rows.append(evaluate_result(setting, record["agent"], result))
    return rows


def training_usage(record: dict[str, Any]) -> Any:
    """What training the run cost, from its run.json (zeros for a run killed before the end):
    the trained agent's row counts it, whatever the env kind."""
    from agents.experiments import Usage

    return Usage(calls=int(record.get("llm_calls", 0)), distinct=int(record.get("distinct_pairs", 0)),
                 cache_hits=int(record.get("cache_hits", 0)), model_calls=int(record.get("model_calls", 0)),
                 wall_s=float(record.get("wall_s", 0.0)))


SHARED_KWARGS = ("task", "llm", "data_dir", "task_options", "calibration", "max_new_tokens")
"""Env kwargs every prompt env kind takes (the task, the LLM and how to score)."""


def setting_of_run(env_id: str, env_kwargs: dict[str, Any], **fields: Any) -> Any:
    """The experiment setting of a trained run's task: its env's ``task``, LLM and the run's
    other env kwargs (what the agent observes) shared by every env of the setting."""
    import gymnasium as gym

    from agents.experiments import Setting

    kwargs = dict(env_kwargs)
    kwargs.pop("tabular", None)  # the setting makes context-id observations where an agent needs them
    task = kwargs.pop("task", None) or gym.spec(env_id).kwargs["task"]
    # the run's own task options, as trained: the evaluation seed does not pick a 16-shot split
    return Setting.for_task(task, llm=kwargs.pop("llm", "default"),
                            data_dir=kwargs.pop("data_dir", None),
                            task_options=kwargs.pop("task_options", None), env_kwargs=kwargs,
                            seed_picks_split=False, **fields)


def evaluate_compose_run(env_id: str, agent: Any, record: dict[str, Any], env_kwargs: dict[str, Any],
                         args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The prompt the agent writes greedily on the Compose env, and the empty prompt, scored on
    the evaluated slice of the split through the task's Select env (one score table)."""
    import gymnasium as gym

    from agents.experiments import Usage, run_policy
    from agents.experiments.compose_policies import words_of
    from agents.experiments.rows import ResultRow
    from agents.rollout import run_episode

    env = gym.make(env_id, **{**env_kwargs, "minibatch_size": 1})
    compose = env.unwrapped
    episode = run_episode(env, lambda obs, mask: int(agent.act(obs, greedy=True, action_mask=mask)),
                          seed=args.seed)
    written = compose.prompt_of(episode.final_info["prompt_ids"])
    empty = compose.prompt_of([])
    env.close()
    shared = {k: v for k, v in env_kwargs.items() if k in SHARED_KWARGS}
    setting = setting_of_run(env_id, {**shared, "task": compose.task_name}, seed=args.seed,
                             metric=args.reward, split=args.split, test_limit=args.limit)
    rows = [run_policy(setting, "compose-manual", 0)]
    for name, prompt in (("empty prompt", empty), (agent.agent_name, written)):
        score, usage = setting.score_prompt(prompt)
        trained = training_usage(record) if name == agent.agent_name else Usage()
        rows.append(ResultRow(name, score, setting.n_eval, train=trained, evaluation=usage,
                              notes=f"prompt words {words_of(prompt)!r}").as_dict())
    return rows, {"final_prompt": written.describe(), "prompt_words": words_of(written)}


def evaluate_edit_run(env_id: str, agent: Any, record: dict[str, Any], env_kwargs: dict[str, Any],
                      args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One greedy edit episode whose minibatch is the whole evaluated slice of the split.

    The initial prompt (the task's manual prompt unless the run gave
    ``initial_prompt``) is the baseline; the agent's score is that of the
    prompt it ends the episode with.
    """
    import gymnasium as gym

    from agents.experiments.evaluate import greedy_edit_episode
    from agents.experiments.rows import ResultRow
    from agents.experiments.usage import Usage

    kwargs = {k: v for k, v in env_kwargs.items() if k not in ("split", "max_examples", "minibatch_size")}
    kwargs.update(split=args.split, max_examples=args.limit)
    if args.reward:
        kwargs["reward"] = args.reward
    sizing = gym.make(env_id, **kwargs, minibatch_size=1)  # reads the task, calls no LLM
    n = len(sizing.unwrapped.examples)
    sizing.close()
    env = gym.make(env_id, **kwargs, minibatch_size=n)
    start = time.perf_counter()
    episode = greedy_edit_episode(
        env, lambda obs, mask: int(agent.act(obs, greedy=True, action_mask=mask)), seed=args.seed)
    wall = time.perf_counter() - start
    used = episode.usage
    spent = Usage(calls=int(used.get("env_calls", 0)), distinct=int(used.get("distinct", 0)),
                  cache_hits=int(used.get("cache_hits", 0)),
                  model_calls=int(used.get("model_calls", 0)), wall_s=wall)
    env.close()
    gain = episode.final_score - episode.initial_score
    rows = [
        # the initial prompt was scored at the episode's reset, inside the agent's measured work
        ResultRow("manual", episode.initial_score, n, evaluation=Usage(calls=n, distinct=n),
                  hit_rate=spent.hit_rate, notes="the initial prompt, unedited").as_dict(),
        ResultRow(agent.agent_name, episode.final_score, n, train=training_usage(record), evaluation=spent,
                  notes=f"{len(episode.edits)} greedy edits, {gain:+.3f} vs the initial prompt"
                  ).as_dict(),
    ]
    extra = {"initial_prompt": episode.initial_parts, "final_prompt": episode.final_parts,
             "edits": episode.edits, "improvement": round(gain, 4)}
    return rows, extra
