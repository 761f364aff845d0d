"""``python -m agents.cli``: the `prompt-env` command."""

import sys

from agents.cli import main

sys.exit(main())
