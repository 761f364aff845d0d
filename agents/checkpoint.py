"""Agent files: one safetensors file with a JSON header, never a pickle.

Format
------
One file in the safetensors format: an 8-byte little-endian header length,
a JSON header, then raw array bytes. Nothing in it is pickled, so a file
received from someone else cannot run code when loaded. The safetensors
header's ``__metadata__`` holds our own JSON header under the key
``"prompt_env"``::

    {"format": "prompt-env-agent", "version": 1, "agent": "tabular-q",
     "env_id": "FrozenLake-v1", "config": {...}, "package_version": "0.1.0"}

and the arrays (Q-table, network weights, bandit counts) are the tensors.
Files are written atomically (temporary file in the same directory, then
``os.replace``) with user-only permissions (0o600).
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from prompt_env.errors import CheckpointError

CHECKPOINT_FORMAT = "prompt-env-agent"
CHECKPOINT_VERSION = 1
_METADATA_KEY = "prompt_env"
_MAX_HEADER_BYTES = 100_000_000


def package_version() -> str:
    """The installed version of prompt-env, or ``"0+unknown"`` when run from a source tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("prompt-env")
    except PackageNotFoundError:
        return "0+unknown"


def write_checkpoint(
    path: str | os.PathLike[str],
    *,
    agent: str,
    env_id: str,
    config: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
) -> Path:
    """Write an agent file atomically with user-only permissions; return its path."""
    from safetensors.numpy import save as safetensors_save

    if not isinstance(env_id, str) or not env_id:
        raise ValueError("save: env_id must be a non-empty string, e.g. env.spec.id")
    header = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "agent": agent,
        "env_id": env_id,
        "config": dict(config),
        "package_version": package_version(),
    }
    tensors = {name: np.ascontiguousarray(value) for name, value in arrays.items()}
    payload = safetensors_save(
        tensors, metadata={_METADATA_KEY: json.dumps(header, sort_keys=True)}
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:  # mkstemp creates the file with mode 0o600
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return path


def read_checkpoint(
    path: str | os.PathLike[str], *, agent: str, env_id: str | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and check an agent file; return (header, arrays).

    Raises CheckpointError when the file is missing, damaged or truncated, is
    not a prompt-env agent file, was saved by another agent type, or (when
    ``env_id`` is given) was saved for another env id.
    """
    from safetensors.numpy import load as safetensors_load

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read agent file ({err.strerror or err})") from err
    header = _parse_header(path, data)
    try:
        arrays = safetensors_load(data)
    except Exception as err:  # safetensors raises its own SafetensorError
        raise CheckpointError(f"{path}: array data is damaged or truncated ({err})") from err
    if header["agent"] != agent:
        raise CheckpointError(
            f"{path}: this file holds a {header['agent']!r} agent, not a {agent!r} agent; "
            f"load it with the {header['agent']!r} class (or agents.load_agent)"
        )
    if env_id is not None and header["env_id"] != env_id:
        raise CheckpointError(
            f"{path}: this agent was trained on env {header['env_id']!r}, not {env_id!r}; "
            "pass the matching env_id, or env_id=None to skip the check"
        )
    return header, arrays


def read_checkpoint_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Only the JSON header of an agent file (checked like ``read_checkpoint``)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read agent file ({err.strerror or err})") from err
    return _parse_header(path, data)


def _parse_header(path: Path, data: bytes) -> dict[str, Any]:
    if len(data) < 8:
        raise CheckpointError(
            f"{path}: file is empty or truncated ({len(data)} bytes); not a prompt-env agent file"
        )
    (header_length,) = struct.unpack("<Q", data[:8])
    if header_length > _MAX_HEADER_BYTES:
        raise CheckpointError(
            f"{path}: not a prompt-env agent file (no valid header length at the start)"
        )
    if 8 + header_length > len(data):
        raise CheckpointError(
            f"{path}: file is truncated: its header needs {8 + header_length} bytes, the file has {len(data)}"
        )
    try:
        outer = json.loads(data[8 : 8 + header_length].decode("utf-8"))
        ours = json.loads(outer["__metadata__"][_METADATA_KEY])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(
            f"{path}: not a prompt-env agent file (header is not the expected JSON: {err})"
        ) from err
    if not isinstance(ours, dict) or ours.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: not a prompt-env agent file (format is not {CHECKPOINT_FORMAT!r})"
        )
    if ours.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: agent file version {ours.get('version')!r} is not supported "
            f"(this prompt-env reads version {CHECKPOINT_VERSION})"
        )
    for key in ("agent", "env_id", "config"):
        if key not in ours:
            raise CheckpointError(f"{path}: agent file header lacks the {key!r} field")
    return ours


def require_arrays(
    path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], names: list[str]
) -> None:
    """Raise CheckpointError naming the first array of ``names`` missing from the file."""
    for name in names:
        if name not in arrays:
            raise CheckpointError(f"{path}: agent file lacks the array {name!r}")
