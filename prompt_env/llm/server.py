"""A local OpenAI-compatible server (llama.cpp through ``xllamacpp``) on the embedded model.

For tests, benchmarks and single-machine Ray runs: one process serves the
task LLM and any number of environments reach it through the ``openai``
backend. In production point the same backend at vLLM instead.

From Python::

    from prompt_env.llm.server import start_local_server

    with start_local_server() as server:        # a subprocess; waits for /health
        llm = load_llm({"backend": "openai", "base_url": server.base_url,
                        "model": server.model})

From a shell (blocks until Ctrl-C or SIGTERM)::

    python -m prompt_env.llm.server --port 8080 --n-parallel 2

The server listens on 127.0.0.1 only. ``xllamacpp`` is the ``server`` extra:
``pip install 'prompt-env[server]'``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO

from prompt_env.errors import LLMError

HOST = "127.0.0.1"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct.Q4_1"
"""The ``model`` name under which the embedded default is served (the GGUF file's stem)."""
INSTALL_HINT = "pip install 'prompt-env[server]' (or: pip install xllamacpp)"


class ServerHandle:
    """A running server subprocess. ``stop()`` (or leaving the ``with`` block) ends it."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, model: str, log_path: Path,
                 started_in_s: float) -> None:
        self.process = process
        self.port = port
        self.model = model
        self.log_path = log_path
        self.started_in_s = started_in_s
        """Seconds from launching the subprocess to a healthy ``/health``."""

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """End the server abruptly (SIGKILL), as a crash would; for fault tests."""
        if self.alive():
            self.process.kill()
        self.process.wait()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the server to exit (SIGTERM); kill it if it has not after ``timeout_s``."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, n_chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return ""

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.alive() else f"exited {self.process.returncode}"
        return f"ServerHandle({self.base_url}, model={self.model!r}, pid={self.pid}, {state})"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_local_server(
    port: int | None = None,
    n_parallel: int = 2,
    *,
    model_path: str | os.PathLike[str] | None = None,
    model_name: str | None = None,
    n_ctx_per_slot: int = 2048,
    threads: int = 2,
    startup_timeout_s: float = 120.0,
    log_path: str | os.PathLike[str] | None = None,
    api_key_env: str | None = None,
) -> ServerHandle:
    """Start a llama.cpp server on the embedded GGUF (or ``model_path``) in a subprocess.

    Args:
        port: TCP port on 127.0.0.1; a free one when None.
        n_parallel: requests the server decodes at once (slots).
        model_path: a GGUF file; the embedded SmolLM2-135M-Instruct when None.
        model_name: the name clients use as ``model``; the GGUF's file stem when None.
        n_ctx_per_slot: context window of each slot (total context is this times n_parallel).
        threads: CPU threads for decoding and prompt processing.
        startup_timeout_s: how long to wait for ``/health`` before giving up.
        log_path: where the server's output goes; a temporary file when None.
        api_key_env: if given, the server requires the key held in this environment
            variable (it reaches the child through its environment, never its argv).

    Returns:
        A :class:`ServerHandle`; use it as a context manager or call ``stop()``.
    """
    try:
        import xllamacpp  # noqa: F401
    except ImportError as error:
        raise LLMError(f"the local server needs xllamacpp: {INSTALL_HINT}") from error
    gguf = Path(model_path) if model_path is not None else _default_gguf()
    if not gguf.is_file():
        raise LLMError(f"model file {gguf} does not exist; give model_path= a GGUF file")
    port = port or free_port()
    name = model_name or gguf.name.removesuffix(".gguf")
    log = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="prompt-env-server-", suffix=".log")[1])
    command = [sys.executable, "-m", "prompt_env.llm.server", "--port", str(port),
               "--n-parallel", str(n_parallel), "--model-path", str(gguf), "--model-name", name,
               "--n-ctx-per-slot", str(n_ctx_per_slot), "--threads", str(threads)]
    if api_key_env:
        command += ["--api-key-env", api_key_env]
    command += ["--parent-pid", str(os.getpid())]
    started = time.monotonic()
    with open(log, "ab") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    handle = ServerHandle(process, port, name, log, 0.0)
    try:
        wait_healthy(handle.base_url, startup_timeout_s, process=process)
    except BaseException:
        handle.kill()
        raise
    handle.started_in_s = time.monotonic() - started
    return handle


def wait_healthy(base_url: str, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``base_url/health`` until it answers 200; LLMError on timeout or if ``process`` exits."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise LLMError(f"server for {base_url} exited with code {process.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:  # 503 while the model loads
            last = f"HTTP {error.code}"
        except OSError as error:
            last = f"{type(error).__name__}: {error}"
        time.sleep(0.1)
    raise LLMError(f"server {base_url} was not healthy after {timeout_s:.0f} s (last: {last})")


def server_metrics(base_url: str) -> dict[str, float]:
    """The llama.cpp server's counters from ``/metrics`` (e.g. ``prompt_tokens_total``)."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name.removeprefix("llamacpp:")] = float(value)
    return values


def _default_gguf() -> Path:
    from prompt_env.llm.hf import default_gguf_path

    return default_gguf_path()


# ---------------------------------------------------------------------- the server process
def serve(
    port: int,
    n_parallel: int,
    model_path: Path,
    model_name: str,
    n_ctx_per_slot: int,
    threads: int,
    api_key: str | None,
    announce: IO[str],
    parent_pid: int | None = None,
) -> None:
    """Run the llama.cpp server in this process until SIGTERM or SIGINT (or ``parent_pid`` exits)."""
    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = str(model_path)
    params.model_alias = {model_name}
    params.n_ctx = n_ctx_per_slot * n_parallel  # llama.cpp splits n_ctx between the slots
    params.n_parallel = n_parallel
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.hostnames = [HOST]
    params.port = port
    params.warmup = False
    params.endpoint_metrics = True  # Prometheus counters at /metrics (requests, tokens)
    if api_key:
        params.api_keys = [api_key]
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    server = xlc.Server(params)  # listening once this returns
    announce.write(json.dumps({"listening": f"http://{HOST}:{port}", "model": model_name}) + "\n")
    announce.flush()
    while not signal.sigtimedwait({signal.SIGTERM, signal.SIGINT}, 1.0):
        if parent_pid is not None and os.getppid() != parent_pid:
            break  # the process that started us is gone: do not linger as an orphan
    del server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m prompt_env.llm.server",
        description="Serve the embedded task LLM (or a GGUF) on 127.0.0.1 through the llama.cpp "
        "OpenAI-compatible server, until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--n-parallel", type=int, default=2, help="requests decoded at once")
    parser.add_argument("--model-path", default=None, help="GGUF file (default: embedded SmolLM2)")
    parser.add_argument("--model-name", default=None, help="model name clients send")
    parser.add_argument("--n-ctx-per-slot", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--api-key-env", default=None,
                        help="require the API key held in this environment variable")
    parser.add_argument("--parent-pid", type=int, default=None,
                        help="exit when this process is no longer our parent")
    args = parser.parse_args(argv)
    try:
        import xllamacpp  # noqa: F401
    except ImportError:
        print(f"error: the local server needs xllamacpp: {INSTALL_HINT}", file=sys.stderr)
        return 2
    gguf = Path(args.model_path) if args.model_path else _default_gguf()
    api_key = os.environ.get(args.api_key_env, "") if args.api_key_env else ""
    if args.api_key_env and not api_key:
        print(f"error: --api-key-env {args.api_key_env} is not set", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        serve(args.port, args.n_parallel, gguf, args.model_name or gguf.name.removesuffix(".gguf"),
              args.n_ctx_per_slot, args.threads, api_key or None, sys.stdout, args.parent_pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
