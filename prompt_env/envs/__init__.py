"""Prompt environments: one class per file on one base class."""

from prompt_env.envs.base import InvalidActionError, PromptEnvBase
from prompt_env.envs.compose import PromptComposeEnv
from prompt_env.envs.edit import PromptEditEnv
from prompt_env.envs.select import PromptSelectEnv

__all__ = ["InvalidActionError", "PromptComposeEnv", "PromptEditEnv", "PromptEnvBase", "PromptSelectEnv"]
