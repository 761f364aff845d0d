"""How many CPU threads torch uses for the in-process backends."""

from __future__ import annotations

import os


def set_threads() -> None:
    """Use ``$PROMPT_ENV_THREADS`` torch threads (all cores when unset or 0)."""
    import torch

    wanted = int(os.environ.get("PROMPT_ENV_THREADS", "0")) or (os.cpu_count() or 1)
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
