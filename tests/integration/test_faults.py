"""Faults between the openai backend and a real llama.cpp server, through a fault-injecting proxy.

* A tabular-Q training run on a Select-Tabular env through the proxy under
  ~30% transient faults (dropped connections, delays past the client
  timeout, 429/500/503, malformed, truncated and wrong-shape JSON) ends with
  exactly the same step rewards and final Q-table as a fault-free run, and
  its response cache holds exactly the fault-free run's entries (so no
  malformed answer was ever cached).
* 100% failure ends with a clear LLMError within the configured bound
  (``deadline_s`` plus one request timeout) and nothing in the cache.
* The API key (``OPENAI_API_KEY=sk-test-SECRET123``) reaches the server but
  not the cache files, logs, output, info or exceptions.

The proxy and the training run are :mod:`prompt_env.testing`'s, shared with
``benchmarks/reliability.py``. Run with ``make test-integration`` (needs
``xllamacpp`` and the shared data).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import traceback

import numpy as np
import pytest

from agents import make_agent
from prompt_env.errors import LLMError
from prompt_env.testing import (
    CLIENT_TIMEOUT_S,
    TRIAL_ENV_ID,
    TRIAL_STEPS,
    FaultProxy,
    cache_entries,
    client_spec,
    run_trial,
)

pytestmark = pytest.mark.integration

SECRET = "sk-test-SECRET123"


@pytest.fixture(scope="module")
def secret_key():
    old = os.environ.get("OPENAI_API_KEY")
    os.environ["OPENAI_API_KEY"] = SECRET
    yield SECRET
    if old is None:
        os.environ.pop("OPENAI_API_KEY", None)
    else:
        os.environ["OPENAI_API_KEY"] = old


@pytest.fixture(scope="module")
def proxy(local_server, secret_key):
    with FaultProxy(local_server.base_url, fault_rate=0.0, seed=7, delay_s=CLIENT_TIMEOUT_S + 1.0,
                    max_delays=3) as p:
        yield p


@pytest.fixture(scope="module")
def two_runs(proxy, local_server, shared_data_dir, tmp_path_factory):
    """The same tabular-Q run twice through one proxy: fault-free, then under 30% faults.

    One proxy (one base URL) keeps the backend identity, hence the cache keys, the same;
    each run starts with a cold client and its own cache file.
    """
    spec = client_spec(proxy.base_url, local_server.model)
    root = tmp_path_factory.mktemp("faults")
    proxy.fault_rate = 0.0
    clean = run_trial(spec, root / "clean.sqlite", shared_data_dir, make_agent)
    before = proxy.faults_injected
    proxy.fault_rate = 0.3
    faulty = run_trial(spec, root / "faulty.sqlite", shared_data_dir, make_agent)
    proxy.fault_rate = 0.0
    print(f"\nfault-free run {clean.wall_s:.1f} s, faulty run {faulty.wall_s:.1f} s, "
          f"faults injected {dict(proxy.counts)} in {proxy.requests} requests")
    return {"clean": clean, "faulty": faulty, "root": root, "faults": proxy.faults_injected - before}


def test_transient_faults_change_nothing(two_runs, proxy):
    clean, faulty = two_runs["clean"], two_runs["faulty"]
    assert two_runs["faults"] >= 10, "the schedule injected too few faults to mean anything"
    assert len(proxy.counts) >= 6, f"too few fault kinds were exercised: {dict(proxy.counts)}"
    assert clean.log.steps == faulty.log.steps == TRIAL_STEPS
    assert clean.log.step_rewards == faulty.log.step_rewards
    assert np.array_equal(clean.agent.q_table, faulty.agent.q_table)
    assert np.array_equal(clean.agent.visits, faulty.agent.visits)
    assert clean.model_calls > 0 and faulty.model_calls == clean.model_calls


def test_malformed_answers_are_never_cached(two_runs):
    """Same cache keys as the fault-free run, every value a well-formed row of log-probs.

    Values are compared with a tolerance: the llama.cpp server's log-probs are
    not bit-reproducible across runs (they depend on which requests share a
    batch and on its prompt-cache state; measured up to ~0.3 nats apart), so
    only the rankings must agree. A cached malformed answer would show up as
    an extra key or a value that is not two finite log-probs.
    """
    clean = cache_entries(two_runs["root"] / "clean.sqlite")
    faulty = cache_entries(two_runs["root"] / "faulty.sqlite")
    assert clean, "the fault-free run cached nothing"
    assert set(faulty) == set(clean)
    for key, value in faulty.items():
        row, reference = json.loads(value), json.loads(clean[key])
        assert isinstance(row, list) and len(row) == len(reference) == 2, value
        assert all(isinstance(v, float) and np.isfinite(v) and v <= 0 for v in row), value
        assert np.allclose(row, reference, atol=0.5), (row, reference)


@pytest.mark.parametrize("kind", ["drop", "503", "malformed", "truncated", "wrong-shape", "delay"])
def test_total_failure_is_a_clear_error_within_the_bound(local_server, secret_key, tmp_path, kind,
                                                          caplog, capsys):
    from prompt_env.llm import load_llm
    from prompt_env.llm.cache import ResponseCache

    caplog.set_level(logging.DEBUG)
    deadline_s = 15.0
    with FaultProxy(local_server.base_url, fault_rate=1.0, seed=1, kinds=(kind,),
                    delay_s=CLIENT_TIMEOUT_S + 1.0) as proxy:
        spec = client_spec(proxy.base_url, local_server.model, max_retries=4, deadline_s=deadline_s,
                           backoff_s=0.2, max_backoff_s=1.0, score_method="logit_bias")
        cache = tmp_path / "cache.sqlite"
        llm = load_llm(spec, cache_path=str(cache))
        start = time.perf_counter()
        with pytest.raises(LLMError) as raised:
            llm.score(["Review: a fine film .\nSentiment:"], [" positive", " negative"])
        elapsed = time.perf_counter() - start
        llm.close()
    message = str(raised.value)
    assert proxy.base_url in message and "failed after" in message, message
    assert elapsed <= deadline_s + CLIENT_TIMEOUT_S + 2.0, f"took {elapsed:.1f} s"
    assert len(ResponseCache(cache)) == 0
    assert proxy.authorizations and all(a == f"Bearer {SECRET}" for a in proxy.authorizations)
    out, err = capsys.readouterr()
    for text in ("".join(traceback.format_exception(raised.value)), caplog.text, out, err):
        assert SECRET not in text
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())


def test_api_key_reaches_the_server_and_nothing_else(two_runs, proxy, local_server, tmp_path,
                                                     shared_data_dir):
    import gymnasium as gym

    from prompt_env.llm import load_llm

    assert proxy.authorizations and set(proxy.authorizations) == {f"Bearer {SECRET}"}
    for file in two_runs["root"].iterdir():
        assert SECRET.encode() not in file.read_bytes(), file.name
    # infos of a few real steps, the env spec and a checkpoint
    spec = client_spec(proxy.base_url, local_server.model)
    env = gym.make(TRIAL_ENV_ID, llm=spec, max_examples=4, episode_length=3,
                   data_dir=str(shared_data_dir))
    llm = load_llm(spec, cache_path=str(tmp_path / "c.sqlite"))
    env.unwrapped.use_llm(llm)
    obs, info = env.reset(seed=0)
    infos = [info]
    for action in range(3):
        infos.append(env.step(action)[-1])
    two_runs["faulty"].agent.save(tmp_path / "agent.safetensors", env_id=TRIAL_ENV_ID)
    texts = [repr(infos), env.spec.to_json(), env.unwrapped.describe(), repr(env.unwrapped.llm),
             json.dumps(env.unwrapped.llm.describe())]
    env.close()
    llm.close()
    assert all(SECRET not in t for t in texts)
    for file in tmp_path.iterdir():
        assert SECRET.encode() not in file.read_bytes(), file.name


def test_closed_port_is_a_clear_error_without_the_key(secret_key, tmp_path):
    from prompt_env.llm import load_llm

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = client_spec(f"http://127.0.0.1:{port}", "SmolLM2", max_retries=2, deadline_s=5)
    llm = load_llm(spec, cache_path=str(tmp_path / "c.sqlite"))
    with pytest.raises(LLMError) as raised:
        llm.generate(["hello"])
    text = "".join(traceback.format_exception(raised.value))
    assert f"127.0.0.1:{port}" in text and "connection failed" in text
    assert SECRET not in text
    llm.close()
