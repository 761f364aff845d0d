"""prompt-env: prompt optimization as reinforcement learning.

``import prompt_env`` registers every environment id with gymnasium, e.g.
``gym.make("PromptEnv/BBCTopic-Select-v0")``; the one-string form
``gym.make("prompt_env:PromptEnv/SST2-Select-v0")`` works in any library.
"""

from __future__ import annotations

from prompt_env.registration import register_all, registered_ids

__version__ = "0.1.0"

ENV_IDS = register_all()

__all__ = ["ENV_IDS", "__version__", "registered_ids"]
