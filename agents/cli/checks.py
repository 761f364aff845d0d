"""Checks of the command's arguments: one-line errors with a hint, before any work starts."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from typing import Any


class UsageError(Exception):
    """A mistake in how the command was called; the message and hint are shown as they are."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


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
    from agents.experiments import POLICIES

    if name in AGENTS:
        return name
    if name in POLICIES:
        raise UsageError(f"{name!r} is a policy, not an agent `train` can train; train takes "
                         f"{', '.join(AGENTS)}",
                         f"run it with `prompt-env optimize --policy {name}` or benchmarks/run.py "
                         f"--policies {name}")
    close = difflib.get_close_matches(name, list(AGENTS), n=2, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UsageError(f"unknown agent {name!r}; known agents: {', '.join(AGENTS)}",
                     hint + "`prompt-env list` describes them")


LLM_SPEC_HELP = ('"default", "hf:<model or path>", "openai:<base_url>#<model>", or JSON; on a GPU: '
                 '\'{"backend":"default","device":"cuda","dtype":"bfloat16"}\' (device: cpu (default), '
                 'cuda, cuda:<n>, mps, auto; dtype: float32 (default), bfloat16, float16); '
                 'see `prompt-env list`')
"""The shared part of every command's ``--llm`` help."""


def check_llm_spec(spec: str | dict[str, Any], *, normalized: bool = False) -> str | dict[str, Any]:
    """The spec (``normalized``: in its checked dict form, which every env takes as it is) when
    valid; LLMSpecError otherwise (nothing is loaded)."""
    from prompt_env.llm import normalize_spec

    checked = normalize_spec(spec)
    return checked if normalized else spec


class DeprecatedAlias(argparse.Action):
    """An old option name kept working: stores into the new option's ``dest`` and says, once
    on stderr, which option replaces it."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.new = new

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"prompt-env: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


JSON_EXAMPLES = {"--task-options": '{"split_seed": 1}', "--env-kwargs": '{"max_examples": 20}',
                 "--agent-kwargs": '{"gamma": 0.9}'}
"""A valid value of each JSON option, for the hint of a malformed one."""


def parse_json_object(text: str | None, option: str) -> dict[str, Any]:
    if text is None:
        return {}
    hint = f"write a JSON object, e.g. {option} '{JSON_EXAMPLES.get(option, '{}')}'"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{option} is not valid JSON ({error.msg} at column {error.colno}): {text!r}",
                         hint) from None
    if not isinstance(value, dict):
        raise UsageError(f"{option} must be a JSON object, got {type(value).__name__}: {text!r}", hint)
    return value


def check_env_kwargs(env_id: str, env_kwargs: dict[str, Any]) -> None:
    """Refuse keyword arguments the env's constructor does not take."""
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    spec = gym.spec(env_id)
    if not isinstance(spec.entry_point, str):
        return
    from prompt_env.envs.base import accepted_kwargs

    parameters = accepted_kwargs(load_env_creator(spec.entry_point))
    if parameters is None:
        return
    unknown = sorted(set(env_kwargs) - set(parameters))
    if unknown:
        accepted = ", ".join(parameters)
        raise UsageError(f"--env-kwargs: {env_id} takes no argument(s) {', '.join(map(repr, unknown))}",
                         f"accepted: {accepted}")


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
