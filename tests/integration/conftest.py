"""Fixtures for integration tests: a real llama.cpp server on the embedded model.

Run them with ``make test-integration`` (installs the ``server`` and ``ray``
extras). Outside that target they skip when ``xllamacpp`` is missing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def local_server() -> Iterator[object]:
    """One llama.cpp server (2 slots) shared by the whole session."""
    pytest.importorskip("xllamacpp", reason="needs the server extra: pip install -e '.[server]'")
    from prompt_env.llm.server import start_local_server

    with start_local_server(n_parallel=2) as server:
        print(f"\nlocal server {server.base_url} healthy after {server.started_in_s:.2f} s")
        yield server


@pytest.fixture()
def server_spec(local_server) -> dict[str, object]:
    """An ``openai`` backend spec for the shared server."""
    return {"backend": "openai", "base_url": local_server.base_url, "model": local_server.model}
