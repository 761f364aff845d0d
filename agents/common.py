"""Pieces every agent shares: the training loop, schedules, the training log
and the checkpoint format.

Checkpoint format
-----------------
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

import csv
import json
import os
import struct
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import gymnasium as gym
import numpy as np

from prompt_env.errors import CheckpointError

CHECKPOINT_FORMAT = "prompt-env-agent"
CHECKPOINT_VERSION = 1
_METADATA_KEY = "prompt_env"
_MAX_HEADER_BYTES = 100_000_000

Callback = Callable[[int, float, dict], Any]
"""``callback(step, reward, info)``, called after every env step; returning ``False`` stops learning."""


def package_version() -> str:
    """The installed version of prompt-env, or ``"0+unknown"`` when run from a source tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("prompt-env")
    except PackageNotFoundError:
        return "0+unknown"


# ---------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------


def linear_schedule(
    start: float, end: float, fraction: float, step: int, total_steps: int
) -> float:
    """Value that moves linearly from ``start`` to ``end`` over the first
    ``fraction * total_steps`` steps and stays at ``end`` afterwards."""
    decay_steps = fraction * total_steps
    if decay_steps <= 0:
        return end
    progress = min(1.0, step / decay_steps)
    return start + progress * (end - start)


# ---------------------------------------------------------------------------
# Training log
# ---------------------------------------------------------------------------


@dataclass
class TrainingLog:
    """What happened during one ``learn`` call.

    Episodes are counted when they end (terminated or truncated); an episode
    still running when learning stops is not in ``episode_returns``.
    """

    num_envs: int = 1
    """Number of sub-environments stepped in parallel."""
    steps: int = 0
    """Env steps (transitions) taken, summed over sub-environments."""
    step_rewards: list[float] = field(default_factory=list)
    """Reward of every step, in the order the steps were taken."""
    episode_returns: list[float] = field(default_factory=list)
    """Undiscounted return of each finished episode, in order of finishing."""
    episode_lengths: list[int] = field(default_factory=list)
    """Length in steps of each finished episode."""
    episode_end_steps: list[int] = field(default_factory=list)
    """Value of ``steps`` when each episode finished."""
    losses: list[float] = field(default_factory=list)
    """Training losses, one per gradient step (deep agents only)."""
    _running_return: np.ndarray = field(init=False, repr=False)
    _running_length: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._running_return = np.zeros(self.num_envs, dtype=np.float64)
        self._running_length = np.zeros(self.num_envs, dtype=np.int64)

    @property
    def episodes(self) -> int:
        """Number of finished episodes."""
        return len(self.episode_returns)

    def record_step(self, env_index: int, reward: float, done: bool) -> None:
        """Add one step of sub-environment ``env_index``."""
        self.steps += 1
        self.step_rewards.append(float(reward))
        self._running_return[env_index] += reward
        self._running_length[env_index] += 1
        if done:
            self.episode_returns.append(float(self._running_return[env_index]))
            self.episode_lengths.append(int(self._running_length[env_index]))
            self.episode_end_steps.append(self.steps)
            self._running_return[env_index] = 0.0
            self._running_length[env_index] = 0

    def to_rows(self, kind: str = "episodes") -> list[dict[str, float | int]]:
        """Rows for a csv file: one per finished episode (``kind="episodes"``)
        or one per step (``kind="steps"``)."""
        if kind == "episodes":
            return [
                {"episode": i, "return": ret, "length": length, "end_step": end}
                for i, (ret, length, end) in enumerate(
                    zip(
                        self.episode_returns,
                        self.episode_lengths,
                        self.episode_end_steps,
                        strict=True,
                    )
                )
            ]
        if kind == "steps":
            return [{"step": i + 1, "reward": r} for i, r in enumerate(self.step_rewards)]
        raise ValueError(f"to_rows: kind must be 'episodes' or 'steps', got {kind!r}")

    def write_csv(self, path: str | os.PathLike[str], kind: str = "episodes") -> None:
        """Write ``to_rows(kind)`` as a csv file with a header line."""
        rows = self.to_rows(kind)
        fieldnames = (
            ["episode", "return", "length", "end_step"]
            if kind == "episodes"
            else ["step", "reward"]
        )
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fieldnames)
            writer.writeheader()
            writer.writerows(rows)


# ---------------------------------------------------------------------------
# Stepping a single env or a vector env
# ---------------------------------------------------------------------------


@dataclass
class Transition:
    """One real env step of one sub-environment (never an autoreset step)."""

    obs: Any
    action: int
    reward: float
    next_obs: Any
    terminated: bool
    truncated: bool
    info: dict
    env_index: int
    next_action_mask: np.ndarray | None
    """Valid actions in ``next_obs`` (for a masked max over Q(s', .)), or None."""

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


def is_vector_env(env: Any) -> bool:
    """True for a Gymnasium 1.x vector env."""
    return isinstance(env, gym.vector.VectorEnv)


def single_spaces(env: gym.Env | gym.vector.VectorEnv) -> tuple[gym.Space, gym.Space]:
    """(observation space, action space) of one sub-environment."""
    if is_vector_env(env):
        return env.single_observation_space, env.single_action_space
    return env.observation_space, env.action_space


def _as_mask(mask: Any, n_actions: int) -> np.ndarray:
    array = np.asarray(mask, dtype=bool).reshape(-1)
    if array.shape != (n_actions,):
        raise ValueError(f"action mask has {array.size} entries, the action space has {n_actions}")
    return array


def single_env_action_mask(env: gym.Env, info: Mapping[str, Any]) -> np.ndarray | None:
    """Valid actions of a single env: ``info["action_mask"]``, else ``env.action_masks()``, else None."""
    n_actions = int(env.action_space.n)
    if "action_mask" in info:
        return _as_mask(info["action_mask"], n_actions)
    try:
        method = env.get_wrapper_attr("action_masks")
    except AttributeError:
        return None
    return _as_mask(method(), n_actions)


def vector_env_action_masks(
    env: gym.vector.VectorEnv, infos: Mapping[str, Any]
) -> np.ndarray | None:
    """Valid actions of every sub-env, shape (num_envs, n): from the batched
    ``infos["action_mask"]``, else ``env.call("action_masks")``, else None."""
    n_actions = int(env.single_action_space.n)
    valid = infos.get("_action_mask")
    if "action_mask" in infos and (valid is None or np.all(valid)):
        return np.asarray(infos["action_mask"], dtype=bool).reshape(env.num_envs, n_actions)
    try:
        masks = env.call("action_masks")
    except AttributeError:
        return None
    return np.stack([_as_mask(m, n_actions) for m in masks])


def unbatch_info(infos: Mapping[str, Any], index: int) -> dict:
    """The info dict of sub-env ``index`` out of a vector env's batched infos."""
    single: dict[str, Any] = {}
    for key, value in infos.items():
        if key.startswith("_"):
            continue
        valid = infos.get("_" + key)
        if valid is not None and not valid[index]:
            continue
        if isinstance(value, Mapping):
            single[key] = unbatch_info(value, index)
        else:
            single[key] = value[index]
    return single


class EnvStepper:
    """Steps a single env or a Gymnasium 1.x vector env and returns clean transitions.

    ``obs`` is always batched (first axis = sub-env). With a vector env, the
    three autoreset modes are handled so that no transition links the last
    observation of one episode to the first of the next:

    - NEXT_STEP (Gymnasium's default): the step after an episode ends only
      resets that sub-env; it is skipped (not returned, not counted).
    - SAME_STEP: the true last observation is taken from ``info["final_obs"]``.
    - DISABLED: finished sub-envs are reset here with ``reset_mask``.
    """

    def __init__(
        self, env: gym.Env | gym.vector.VectorEnv, *, seed: int | None, use_action_mask: bool
    ):
        self.env = env
        self.vector = is_vector_env(env)
        self.num_envs = int(env.num_envs) if self.vector else 1
        self.use_action_mask = use_action_mask
        self.autoreset_mode = self._autoreset_mode() if self.vector else None
        self._resetting = np.zeros(self.num_envs, dtype=bool)  # NEXT_STEP: next step is a reset
        obs, info = env.reset(seed=seed)
        self.obs = self._batch(obs)
        self.action_masks = self._masks(info)

    def _autoreset_mode(self) -> str:
        mode = self.env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
        mode = getattr(mode, "value", mode)
        names = {m.value: m.value for m in gym.vector.AutoresetMode}
        names.update({m.name: m.value for m in gym.vector.AutoresetMode})
        if mode not in names:
            raise ValueError(f"unknown autoreset_mode {mode!r} in the vector env's metadata")
        return names[mode]

    def _batch(self, obs: Any) -> np.ndarray:
        return np.asarray(obs) if self.vector else np.asarray(obs)[None]

    def _masks(self, info: Mapping[str, Any]) -> np.ndarray | None:
        if not self.use_action_mask:
            return None
        if self.vector:
            return vector_env_action_masks(self.env, info)
        mask = single_env_action_mask(self.env, info)
        return None if mask is None else mask[None]

    def step(self, actions: np.ndarray) -> list[Transition]:
        """Step every sub-env with ``actions[i]`` and return the real transitions."""
        actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        if not self.vector:
            return self._step_single(int(actions[0]))
        return self._step_vector(actions)

    def _step_single(self, action: int) -> list[Transition]:
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        next_mask = self._masks(info)
        transition = Transition(
            obs=self.obs[0],
            action=action,
            reward=float(reward),
            next_obs=np.asarray(next_obs),
            terminated=bool(terminated),
            truncated=bool(truncated),
            info=dict(info),
            env_index=0,
            next_action_mask=None if next_mask is None else next_mask[0],
        )
        if terminated or truncated:
            next_obs, info = self.env.reset()
            next_mask = self._masks(info)
        self.obs = self._batch(next_obs)
        self.action_masks = next_mask
        return [transition]

    def _step_vector(self, actions: np.ndarray) -> list[Transition]:
        next_obs, rewards, terminateds, truncateds, infos = self.env.step(actions)
        next_obs = np.asarray(next_obs)
        masks = self._masks(infos)
        dones = np.logical_or(terminateds, truncateds)
        transitions = []
        for i in range(self.num_envs):
            if self._resetting[i]:
                continue  # NEXT_STEP autoreset: this "step" only reset sub-env i
            info = unbatch_info(infos, i)
            true_next_obs, next_mask = next_obs[i], None if masks is None else masks[i]
            if dones[i] and self.autoreset_mode == "SameStep":
                final_info = info.get("final_info", {})
                true_next_obs = np.asarray(info["final_obs"])
                next_mask = final_info.get("action_mask") if self.use_action_mask else None
                next_mask = None if next_mask is None else np.asarray(next_mask, dtype=bool)
                info = {**info, **final_info}
            transitions.append(
                Transition(
                    obs=self.obs[i],
                    action=int(actions[i]),
                    reward=float(rewards[i]),
                    next_obs=true_next_obs,
                    terminated=bool(terminateds[i]),
                    truncated=bool(truncateds[i]),
                    info=info,
                    env_index=i,
                    next_action_mask=next_mask,
                )
            )
        if self.autoreset_mode == "NextStep":
            self._resetting = dones.copy()
        elif self.autoreset_mode == "Disabled" and np.any(dones):
            reset_obs, reset_infos = self.env.reset(options={"reset_mask": dones})
            next_obs = np.where(
                dones.reshape((-1,) + (1,) * (next_obs.ndim - 1)), np.asarray(reset_obs), next_obs
            )
            if self.use_action_mask:
                reset_masks = self._masks(reset_infos)
                if masks is not None and reset_masks is not None:
                    masks = np.where(dones[:, None], reset_masks, masks)
        self.obs = next_obs
        self.action_masks = masks
        return transitions


# ---------------------------------------------------------------------------
# Progress bar
# ---------------------------------------------------------------------------


class _ProgressBar:
    """A rich progress bar when enabled, nothing otherwise."""

    def __init__(self, total: int, enabled: bool, description: str):
        self._progress = None
        if enabled:
            from rich.progress import Progress

            self._progress = Progress(transient=False)
            self._task = self._progress.add_task(description, total=total)

    def __enter__(self) -> _ProgressBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def advance(self, amount: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


# ---------------------------------------------------------------------------
# Checkpoint files
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# The base class
# ---------------------------------------------------------------------------

AgentT = TypeVar("AgentT", bound="Agent")


class Agent(ABC):
    """Common API: ``learn``, ``act``, ``save``, ``load``.

    Subclasses choose actions for a batch of observations and learn from one
    transition at a time; the training loop, the log, the callback and the
    progress bar live here.
    """

    agent_name: ClassVar[str]
    rng: np.random.Generator
    num_timesteps: int = 0

    # -- what a subclass provides ------------------------------------------

    @abstractmethod
    def _check_env(self, env: gym.Env | gym.vector.VectorEnv) -> None:
        """Raise ValueError when the env's spaces do not fit this agent."""

    @abstractmethod
    def _choose_training_actions(
        self, obs: np.ndarray, masks: np.ndarray | None, step: int, total_steps: int
    ) -> np.ndarray:
        """One action per sub-env while learning (exploration included)."""

    @abstractmethod
    def _observe(self, transition: Transition, log: TrainingLog) -> None:
        """Learn from one transition."""

    @abstractmethod
    def act(self, obs: Any, *, greedy: bool = True, action_mask: np.ndarray | None = None) -> int:
        """Action for one observation."""

    @abstractmethod
    def config_dict(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments."""

    @abstractmethod
    def _state_arrays(self) -> dict[str, np.ndarray]:
        """Learned state to save."""

    @classmethod
    @abstractmethod
    def _from_checkpoint(
        cls: type[AgentT], path: Path, config: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> AgentT:
        """Rebuild an agent from a checked file's config and arrays."""

    @property
    def uses_action_mask(self) -> bool:
        return bool(getattr(self, "use_action_mask", False))

    def _start_learning(self, seed: int | None, total_steps: int) -> None:
        """Hook run before the first step (reseed, size budgets...)."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    # -- the shared API ------------------------------------------------------

    def learn(
        self,
        env: gym.Env | gym.vector.VectorEnv,
        total_steps: int,
        *,
        seed: int | None = None,
        callback: Callback | None = None,
        progress: bool = False,
    ) -> TrainingLog:
        """Interact with ``env`` for ``total_steps`` env steps and learn from them.

        Args:
            env: a Gymnasium env or Gymnasium 1.x vector env (steps are counted
                per sub-env; autoreset steps are not counted).
            total_steps: number of env steps (transitions) to take.
            seed: reseeds the agent's random generator and seeds the env's first
                reset; with ``None`` the env seed is drawn from the agent's
                generator (itself seeded by the agent's ``seed``), so runs stay
                reproducible and successive calls differ.
            callback: ``callback(step, reward, info)`` after every env step, with
                ``step`` counted from 1; returning ``False`` stops learning early.
            progress: show a rich progress bar.

        Returns:
            The TrainingLog of this call.
        """
        if total_steps < 0:
            raise ValueError(f"learn: total_steps must be >= 0, got {total_steps}")
        self._check_env(env)
        self._start_learning(seed, total_steps)
        if seed is None:
            seed = int(self.rng.integers(2**31 - 1))
        stepper = EnvStepper(env, seed=seed, use_action_mask=self.uses_action_mask)
        log = TrainingLog(num_envs=stepper.num_envs)
        stop = False
        with _ProgressBar(total_steps, progress, self.agent_name) as bar:
            while log.steps < total_steps and not stop:
                actions = self._choose_training_actions(
                    stepper.obs, stepper.action_masks, log.steps, total_steps
                )
                for transition in stepper.step(actions):
                    if log.steps >= total_steps:
                        break
                    log.record_step(transition.env_index, transition.reward, transition.done)
                    self.num_timesteps += 1
                    self._observe(transition, log)
                    bar.advance()
                    if (
                        callback is not None
                        and callback(log.steps, transition.reward, transition.info) is False
                    ):
                        stop = True
                        break
        return log

    def save(self, path: str | os.PathLike[str], *, env_id: str) -> Path:
        """Save to one file (see the module docstring for the format); return its path."""
        return write_checkpoint(
            path,
            agent=self.agent_name,
            env_id=env_id,
            config=self.config_dict(),
            arrays=self._state_arrays(),
        )

    @classmethod
    def load(
        cls: type[AgentT], path: str | os.PathLike[str], *, env_id: str | None = None
    ) -> AgentT:
        """Load an agent saved by ``save``; with ``env_id``, refuse a file saved for another env."""
        header, arrays = read_checkpoint(path, agent=cls.agent_name, env_id=env_id)
        try:
            return cls._from_checkpoint(Path(path), header["config"], arrays)
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(
                f"{path}: agent file config or arrays do not fit a {cls.agent_name!r} agent ({err})"
            ) from err


# ---------------------------------------------------------------------------
# Small helpers for agents
# ---------------------------------------------------------------------------


def masked_argmax(
    values: np.ndarray, mask: np.ndarray | None, rng: np.random.Generator | None = None
) -> int:
    """Index of the largest value among allowed entries.

    Ties go to the lowest index, or to a uniformly random one of the tied
    indices when ``rng`` is given (used while learning, so that an all-zero
    Q-row does not always pick action 0).
    """
    if mask is not None and not np.any(mask):
        raise ValueError("action mask allows no action")
    masked = values if mask is None else np.where(mask, values, -np.inf)
    if rng is None:
        return int(np.argmax(masked))
    best = np.flatnonzero(masked == np.max(masked))
    return int(best[0]) if best.size == 1 else int(rng.choice(best))


def masked_max(values: np.ndarray, mask: np.ndarray | None) -> float:
    """Largest value among allowed entries; 0.0 when nothing is allowed (a state with no moves)."""
    if mask is None:
        return float(np.max(values))
    if not np.any(mask):
        return 0.0
    return float(np.max(values[mask]))


def random_action(rng: np.random.Generator, n_actions: int, mask: np.ndarray | None) -> int:
    """Uniformly random action among the allowed ones."""
    if mask is None:
        return int(rng.integers(n_actions))
    allowed = np.flatnonzero(mask)
    if allowed.size == 0:
        raise ValueError("action mask allows no action")
    return int(rng.choice(allowed))


def require_discrete(space: gym.Space, what: str, agent: str) -> int:
    """Size of a ``Discrete`` space that starts at 0, or a ValueError saying what fits."""
    if not isinstance(space, gym.spaces.Discrete):
        raise ValueError(f"{agent} needs a Discrete {what} space, got {space}")
    if int(space.start) != 0:
        raise ValueError(
            f"{agent} needs a Discrete {what} space starting at 0, got start={space.start}"
        )
    return int(space.n)
