"""Security: no code runs from loaded files, user-only permissions, API keys never leak.

* A static scan (Python's AST, so comments and strings do not count) of
  ``prompt_env/`` and ``agents/`` finds no call that can execute code from
  data: ``pickle``/``marshal``/``shelve`` loads, ``eval``/``exec``,
  ``yaml.load`` without a safe loader, ``numpy.load(allow_pickle=True)``,
  ``torch.load`` without ``weights_only=True``.
* The response cache (and its WAL files), its directory, agent checkpoints
  and ``prompt-env train`` run directories are user-only, whatever the umask.
* An API key in ``OPENAI_API_KEY`` reaches the server (checked on a stub
  server) but never the cache file, logs, stdout, run files, ``info``,
  ``describe()``/``repr``, the env spec or any exception text, on success,
  on a closed port and on a server that echoes the key back in its errors.
  The same against the real llama.cpp server is in
  ``tests/integration/test_faults.py``.
"""

from __future__ import annotations

import ast
import contextlib
import http.server
import json
import logging
import os
import socket
import stat
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import prompt_env  # noqa: F401  (registers the env ids)
from prompt_env.errors import LLMError, PromptEnvError

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted([*REPO.joinpath("prompt_env").rglob("*.py"), *REPO.joinpath("agents").rglob("*.py")])
SECRET = "sk-test-SECRET123"

# --------------------------------------------------------------------------- no code from data


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def dangerous_calls(source: str, filename: str) -> list[str]:
    """``file:line: call`` for every call that could run code taken from a file."""
    found = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                if module.split(".")[0] in {"pickle", "cPickle", "dill", "marshal", "shelve", "cloudpickle"}:
                    found.append(f"{filename}:{node.lineno}: import {module}")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        last = name.rsplit(".", 1)[-1]
        where = f"{filename}:{node.lineno}: {name}(...)"
        if name in {"eval", "exec", "compile", "__import__", "builtins.eval", "builtins.exec"}:
            found.append(where)
        elif name.split(".")[0] in {"pickle", "dill", "marshal", "cloudpickle"} and last.startswith("load"):
            found.append(where)
        elif name == "shelve.open" or last == "Unpickler":
            found.append(where)
        elif name.endswith("yaml.load"):
            loader = _keyword(node, "Loader")
            if loader is None or "Safe" not in _dotted(loader):
                found.append(where)
        elif name.endswith("yaml.unsafe_load") or name.endswith("yaml.full_load"):
            found.append(where)
        elif name in {"np.load", "numpy.load"}:
            allow = _keyword(node, "allow_pickle")
            if isinstance(allow, ast.Constant) and allow.value is not False or (
                allow is not None and not isinstance(allow, ast.Constant)
            ):
                found.append(where + " with allow_pickle")
        elif name == "torch.load":
            weights_only = _keyword(node, "weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                found.append(where + " without weights_only=True")
        elif last in {"from_pretrained"} and _keyword(node, "trust_remote_code") is not None:
            value = _keyword(node, "trust_remote_code")
            if not (isinstance(value, ast.Constant) and value.value is False):
                found.append(where + " with trust_remote_code")
    return found


def test_the_scanner_catches_what_it_should():
    bad = """
import pickle
from marshal import loads
import numpy as np, torch, yaml
pickle.load(f)
eval("1")
exec("x=1")
yaml.load(text)
yaml.load(text, Loader=yaml.Loader)
np.load(p, allow_pickle=True)
torch.load(p)
torch.load(p, weights_only=False)
AutoModel.from_pretrained(x, trust_remote_code=True)
"""
    good = """
import json, numpy as np, torch, yaml
# pickle.load(f) and eval( in a comment do not count
text = "exec( in a string does not count"
yaml.load(text, Loader=yaml.SafeLoader)
yaml.safe_load(text)
np.load(p)
np.load(p, allow_pickle=False)
torch.load(p, weights_only=True)
model.eval()
"""
    assert len(dangerous_calls(bad, "bad.py")) == 11
    assert dangerous_calls(good, "good.py") == []


def test_no_code_execution_from_loaded_files_in_the_sources():
    assert len(SOURCES) > 20
    found = [hit for path in SOURCES for hit in dangerous_calls(path.read_text(), str(path.relative_to(REPO)))]
    assert found == [], "calls that can run code from data:\n" + "\n".join(found)


# --------------------------------------------------------------------------- permissions


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o000])
def test_cache_files_are_user_only(tmp_path, mask):
    from prompt_env.llm import CachedLLM
    from prompt_env.llm.fake import FakeLLM

    path = tmp_path / "new-dir" / "responses.sqlite"
    with umask(mask):
        llm = CachedLLM(FakeLLM(), path)
        llm.score(["a prompt"], [" yes", " no"])
        llm.generate(["another"])
        # the WAL and shared-memory files exist while the connection is open
        files = [p for p in path.parent.iterdir()]
        assert {p.name for p in files} >= {"responses.sqlite", "responses.sqlite-wal"}
        for file in files:
            assert mode(file) == 0o600, f"{file.name} has mode {oct(mode(file))}"
        assert mode(path.parent) == 0o700
        llm.close()


@pytest.mark.parametrize("mask", [0o022, 0o000])
def test_agent_checkpoints_are_user_only(tmp_path, mask):
    from agents import TabularQAgent

    path = tmp_path / "agent.safetensors"
    path.write_bytes(b"old world-readable file")
    path.chmod(0o644)
    with umask(mask):
        TabularQAgent(3, 2).save(path, env_id="PromptEnv/BBCTopic-Select-Tabular-v0")
        assert mode(path) == 0o600
        fresh = tmp_path / "sub" / "agent.safetensors"
        TabularQAgent(3, 2).save(fresh, env_id="PromptEnv/BBCTopic-Select-Tabular-v0")
        assert mode(fresh) == 0o600


def test_train_run_directory_is_user_only(tmp_path, monkeypatch, capsys):
    from agents.cli import main

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    out = tmp_path / "runs" / "r1"
    code = main(["train", "--env", "PromptEnv/BBCTopic-Select-Tabular-v0", "--policy", "tabular-q",
                 "--steps", "6", "--llm", "fake", "--out", str(out), "--checkpoint-every", "3",
                 "--env-kwargs", json.dumps({"max_examples": 6, "episode_length": 3})])
    assert code == 0
    assert mode(out) == 0o700
    assert mode(out / "agent.safetensors") == 0o600
    for file in out.iterdir():
        assert SECRET not in file.read_bytes().decode("latin-1")
    assert SECRET not in "".join(capsys.readouterr())


# --------------------------------------------------------------------------- API keys


class StubOpenAIServer(http.server.ThreadingHTTPServer):
    """A minimal OpenAI-compatible server on 127.0.0.1 that records the Authorization headers.

    ``mode``: "ok" answers completions; "echo-401" / "echo-500" answer with an
    error whose message repeats the request's Authorization header, as some
    proxies do.
    """

    daemon_threads = True

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.authorizations: list[str] = []
        super().__init__(("127.0.0.1", 0), _StubHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _StubHandler(http.server.BaseHTTPRequestHandler):
    server: StubOpenAIServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        auth = self.headers.get("Authorization", "")
        self.server.authorizations.append(auth)
        if self.server.mode.startswith("echo-"):
            status = int(self.server.mode.split("-")[1])
            self._send(status, {"error": {"message": f"bad credentials: {auth} (key {auth[7:]})"}})
            return
        prompt = body.get("prompt", "")
        text = " positive" if "good" in str(prompt) else " negative"
        self._send(200, {"choices": [{"text": text, "index": 0}],
                         "usage": {"prompt_tokens": 5, "completion_tokens": 1}})

    def _send(self, status: int, payload: dict) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openai_spec(base_url: str, **options) -> dict:
    return {"backend": "openai", "base_url": base_url, "model": "stub",
            "score_method": "generate-match", "max_retries": 1, "backoff_s": 0.01,
            "max_backoff_s": 0.02, "timeout_s": 5, **options}


def error_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error) + str(error)


def assert_no_secret(*texts: object) -> None:
    for text in texts:
        assert SECRET not in str(text), f"the API key leaked into: {str(text)[:300]}"
        assert SECRET not in repr(text)


@pytest.fixture()
def secret_env(monkeypatch):
    pytest.importorskip("prompt_env.llm.openai_compat")
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def test_spec_normalisation_never_holds_the_key(secret_env):
    from prompt_env.llm import normalize_spec

    for spec in (openai_spec("http://127.0.0.1:9"), "openai:http://127.0.0.1:9#stub",
                 json.dumps(openai_spec("http://127.0.0.1:9"))):
        assert_no_secret(json.dumps(normalize_spec(spec)))
    env = gym.make("PromptEnv/BBCTopic-Select-v0", llm=openai_spec("http://127.0.0.1:9"), max_examples=4)
    assert_no_secret(env.spec.to_json(), env.unwrapped.describe())
    env.close()


def test_key_is_sent_but_never_stored_on_success(secret_env, tmp_path, caplog):
    from prompt_env.llm import load_llm

    caplog.set_level(logging.DEBUG)
    server = StubOpenAIServer("ok")
    try:
        cache = tmp_path / "cache.sqlite"
        llm = load_llm(openai_spec(server.base_url), cache_path=str(cache))
        texts = llm.generate(["a good film", "a bad film"], max_new_tokens=2)
        scores = llm.score(["a good film"], ["positive", "negative"])
        assert texts == [" positive", " negative"] and scores[0, 0] == 0.0
        assert server.authorizations and all(a == f"Bearer {SECRET}" for a in server.authorizations)
        llm.close()
    finally:
        server.close()
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert SECRET.encode() not in blob
    assert_no_secret(llm.describe(), repr(llm), repr(llm.inner), llm.inner.__dict__, caplog.text)


@pytest.mark.parametrize("where", ["closed-port", "echo-401", "echo-500"])
def test_key_never_in_errors_info_or_logs(secret_env, tmp_path, where, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    server = None if where == "closed-port" else StubOpenAIServer(where)
    base_url = f"http://127.0.0.1:{closed_port()}" if server is None else server.base_url
    cache = tmp_path / "cache.sqlite"
    try:
        env = gym.make("PromptEnv/BBCTopic-Select-v0", llm=openai_spec(base_url), max_examples=4,
                       episode_length=2)
        from prompt_env.llm import load_llm

        env.unwrapped.use_llm(load_llm(openai_spec(base_url), cache_path=str(cache)))
        obs, info = env.reset(seed=0)
        with pytest.raises(LLMError) as raised:
            env.step(0)
        assert_no_secret(error_text(raised.value), info, env.unwrapped.describe(), env.spec.to_json())
        if server is not None:  # the key was really sent, and echoed back by the server
            assert any(SECRET in a for a in server.authorizations)
            assert "***" in str(raised.value) or "HTTP" in str(raised.value)
        env.close()
    finally:
        if server is not None:
            server.close()
    out, err = capsys.readouterr()
    assert_no_secret(caplog.text, out, err)
    for file in tmp_path.iterdir():
        assert SECRET.encode() not in file.read_bytes()


def test_a_key_put_in_the_spec_by_mistake_is_not_echoed(secret_env):
    from prompt_env.llm import load_llm

    with pytest.raises((PromptEnvError, TypeError)) as raised:
        load_llm({**openai_spec("http://127.0.0.1:9"), "api_key": SECRET}, cache=False)
    assert_no_secret(error_text(raised.value))


def test_cli_run_record_redacts_keys_in_the_spec():
    from agents.experiments.files import redact

    spec = {**openai_spec("http://user:pw@127.0.0.1:9"), "api_key": SECRET, "headers": {"X": SECRET}}
    assert_no_secret(json.dumps(redact(spec)), redact(json.dumps(spec)))
    assert "pw@" not in json.dumps(redact(spec))


def test_numpy_never_unpickles_our_files(tmp_path):
    """The only array files we read are safetensors: a pickle disguised as one is refused."""
    from agents import load_agent
    from prompt_env.errors import CheckpointError

    path = tmp_path / "agent.safetensors"
    np.save(path.with_suffix(".npy"), np.array([object()], dtype=object), allow_pickle=True)
    path.write_bytes(path.with_suffix(".npy").read_bytes())
    with pytest.raises(CheckpointError):
        load_agent(path)
