"""Deep Q-learning (Mnih et al. 2015) with optional double DQN (van Hasselt et al. 2016).

The loss regresses Q(s, a) on the same target as the tabular rule,

    td_target = r + gamma * max_a' Q_target(s', a') * (1 - terminated)

where Q_target is a slowly updated copy of the online network; with double
DQN the argmax over a' uses the online network and the value the target
network. Transitions go to a numpy replay buffer; minibatches are drawn
uniformly from it.

With ``n_step = n > 1`` the stored transition sums n rewards before it
bootstraps (Sutton 1988; Hessel et al. 2018):

    td_target = r_t + gamma r_{t+1} + ... + gamma^(n-1) r_{t+n-1}
                + gamma^n * max_a' Q_target(s_{t+n}, a') * (1 - terminated)

An episode's last n transitions sum what is left of it; ``n_step`` at least the
episode length gives Monte-Carlo targets (the return to the end), which suits
sparse terminal rewards such as a composed prompt's score.

For large action spaces whose actions have known features (the words of
``PromptComposeEnv``, ``action_features=``), the network scores an action by its
features, ``Q(s, a) = g(s) . f_a + b_a``, so what it learns about one word carries
over to similar words.

Determinism: the network is initialised from ``config.seed`` inside
``torch.random.fork_rng`` (the global torch generator is left untouched);
exploration and minibatch sampling draw from the agent's own numpy
Generator. Same seed, same env, same CPU thread count: same weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from agents.actions import linear_schedule, masked_argmax, random_action, require_discrete
from agents.base import Agent, TrainingLog
from agents.checkpoint import require_arrays
from agents.rollout import Transition, single_spaces
from prompt_env.errors import CheckpointError


@dataclass
class DQNConfig:
    """Hyperparameters of DQNAgent."""

    hidden_sizes: tuple[int, ...] = (64, 64)
    """Widths of the hidden layers of the Q-network MLP (ReLU between layers)."""
    learning_rate: float = 1e-3
    """Adam learning rate."""
    gamma: float = 0.99
    """Discount factor of future rewards."""
    buffer_size: int = 10_000
    """Capacity of the replay buffer in transitions (oldest are overwritten)."""
    batch_size: int = 64
    """Transitions per gradient step."""
    learning_starts: int = 200
    """Env steps collected before the first gradient step."""
    train_frequency: int = 1
    """Env steps between gradient steps."""
    gradient_steps: int = 1
    """Gradient steps each time training happens."""
    target_update_interval: int = 250
    """Env steps between target-network updates."""
    tau: float = 1.0
    """Target update weight: 1.0 copies the online network (hard update), < 1 is Polyak averaging."""
    double_dqn: bool = True
    """Pick a' with the online network and evaluate it with the target network."""
    huber_loss: bool = True
    """Smooth L1 (Huber) loss instead of mean squared error."""
    max_grad_norm: float | None = 10.0
    """Clip the gradient's global norm to this value; None disables clipping."""
    epsilon_start: float = 1.0
    """Exploration probability at the first step of a learn call."""
    epsilon_end: float = 0.05
    """Exploration probability after the decay."""
    exploration_fraction: float = 0.5
    """Fraction of a learn call's steps over which epsilon decays linearly."""
    use_action_mask: bool = True
    """Use the env's action mask for exploration, greedy actions and the max in the target."""
    n_step: int = 1
    """Rewards summed before bootstrapping; at least the episode length gives Monte-Carlo targets."""
    seed: int = 0
    """Seed of the network initialisation, exploration and replay sampling."""

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(int(size) for size in self.hidden_sizes)
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        for name in (
            "buffer_size",
            "batch_size",
            "train_frequency",
            "gradient_steps",
            "target_update_interval",
            "n_step",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["hidden_sizes"] = list(self.hidden_sizes)
        return data


class QNetwork(nn.Module):
    """MLP from an observation vector to one Q-value per action."""

    def __init__(self, input_size: int, n_actions: int, hidden_sizes: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = input_size
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, n_actions))
        self.layers = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.layers(obs)


class FeatureQNetwork(nn.Module):
    """``Q(s, a) = g(s) . f_a + b_a``: an MLP ``g`` maps the observation into the space of fixed
    action features ``f_a`` (one row per action); ``b_a`` is a learned bias per action."""

    def __init__(self, input_size: int, action_features: np.ndarray, hidden_sizes: tuple[int, ...]) -> None:
        super().__init__()
        n_actions, dim = action_features.shape
        layers: list[nn.Module] = []
        width = input_size
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.layers = nn.Sequential(*layers)
        self.register_buffer("action_features", torch.from_numpy(np.ascontiguousarray(action_features, dtype=np.float32)))
        self.action_bias = nn.Parameter(torch.zeros(n_actions))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.layers(obs) @ self.action_features.T + self.action_bias


class ReplayBuffer:
    """Fixed-size circular buffer of transitions in numpy arrays."""

    def __init__(self, capacity: int, obs_size: int, n_actions: int) -> None:
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_size), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_size), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.discounts = np.zeros(capacity, dtype=np.float32)
        self.next_masks = np.ones((capacity, n_actions), dtype=bool)
        self.position = 0
        self.size = 0

    def add(
        self,
        obs: np.ndarray,
        action: int,
        reward: float,
        next_obs: np.ndarray,
        terminated: bool,
        next_mask: np.ndarray | None,
        discount: float,
    ) -> None:
        """Store one transition; ``discount`` multiplies the bootstrap term (gamma^n for n steps)."""
        i = self.position
        self.obs[i] = obs
        self.next_obs[i] = next_obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.terminated[i] = float(terminated)
        self.discounts[i] = discount
        self.next_masks[i] = True if next_mask is None else next_mask
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        indices = rng.integers(0, self.size, size=batch_size)
        return {
            "obs": torch.from_numpy(self.obs[indices]),
            "actions": torch.from_numpy(self.actions[indices]),
            "rewards": torch.from_numpy(self.rewards[indices]),
            "next_obs": torch.from_numpy(self.next_obs[indices]),
            "terminated": torch.from_numpy(self.terminated[indices]),
            "discounts": torch.from_numpy(self.discounts[indices]),
            "next_masks": torch.from_numpy(self.next_masks[indices]),
        }


def _observation_spec(space: gym.Space) -> dict[str, Any]:
    if isinstance(space, gym.spaces.Discrete):
        require_discrete(space, "observation", "DQNAgent")
        return {"kind": "discrete", "n": int(space.n)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        if space.nvec.ndim != 1 or np.any(space.start != 0):
            raise ValueError(f"DQNAgent needs a 1-D MultiDiscrete observation space starting at 0, got {space}")
        return {"kind": "multi_discrete", "nvec": [int(n) for n in space.nvec]}
    if isinstance(space, gym.spaces.Box):
        return {"kind": "box", "shape": [int(d) for d in space.shape]}
    raise ValueError(f"DQNAgent needs a Box, Discrete or MultiDiscrete observation space, got {space}")


class DQNAgent(Agent):
    """Deep Q-network agent for Box, Discrete or MultiDiscrete observations and Discrete actions.

    Discrete observations are one-hot encoded, MultiDiscrete ones one-hot per
    component (concatenated); Box observations are flattened to float32.

    Args:
        observation_space: the (single-env) observation space.
        action_space: the (single-env) Discrete action space.
        config: a DQNConfig; keyword arguments override its fields.
        action_features: optional fixed features of each action, shape
            ``(n_actions, d)``: the Q-network is then a :class:`FeatureQNetwork`.
    """

    agent_name = "dqn"

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        config: DQNConfig | None = None,
        *,
        action_features: np.ndarray | None = None,
        **overrides: Any,
    ) -> None:
        config = config or DQNConfig()
        if overrides:
            known = {f.name for f in fields(DQNConfig)}
            unknown = sorted(set(overrides) - known)
            if unknown:
                raise TypeError(f"DQNAgent: unknown option(s) {unknown}; known: {sorted(known)}")
            config = DQNConfig(**{**asdict(config), **overrides})
        self.config = config
        self.observation_spec = _observation_spec(observation_space)
        self.n_actions = require_discrete(action_space, "action", "DQNAgent")
        kind = self.observation_spec["kind"]
        if kind == "discrete":
            self.input_size = self.observation_spec["n"]
        elif kind == "multi_discrete":
            nvec = np.asarray(self.observation_spec["nvec"], dtype=np.int64)
            self.input_size = int(nvec.sum())
            self._offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]]).astype(np.int64)
        else:
            self.input_size = int(np.prod(self.observation_spec["shape"], dtype=np.int64))
        self.action_features = _check_features(action_features, self.n_actions)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.q_network = self._network()
            self.target_network = self._network()
        self.target_network.load_state_dict(self.q_network.state_dict())
        self.target_network.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.q_network.parameters(), lr=config.learning_rate)
        self.buffer = ReplayBuffer(config.buffer_size, self.input_size, self.n_actions)
        self.rng = np.random.default_rng(config.seed)
        self.loss_history: list[float] = []
        self.num_timesteps = 0
        self.gradient_steps_done = 0
        self._steps_since_train = 0
        self._steps_since_target_update = 0
        self._pending: dict[int, list[Transition]] = {}  # n-step windows, per sub-env

    def _network(self) -> nn.Module:
        if self.action_features is None:
            return QNetwork(self.input_size, self.n_actions, self.config.hidden_sizes)
        return FeatureQNetwork(self.input_size, self.action_features, self.config.hidden_sizes)

    @classmethod
    def from_env(
        cls, env: gym.Env | gym.vector.VectorEnv, config: DQNConfig | None = None, **overrides: Any
    ) -> DQNAgent:
        """An agent sized for ``env``'s (single) observation and action spaces
        (``action_features=`` goes to the constructor with the other keyword arguments)."""
        obs_space, action_space = single_spaces(env)
        return cls(obs_space, action_space, config, **overrides)

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def use_action_mask(self) -> bool:
        return self.config.use_action_mask

    # -- observations and Q-values -----------------------------------------------

    def encode(self, obs: Any) -> np.ndarray:
        """Batch of observations -> float32 network inputs of shape (batch, input_size)."""
        obs = np.asarray(obs)
        if self.observation_spec["kind"] == "discrete":
            states = obs.reshape(-1).astype(np.int64)
            if np.any((states < 0) | (states >= self.input_size)):
                raise ValueError(f"observation outside Discrete({self.input_size}): {states}")
            return np.eye(self.input_size, dtype=np.float32)[states]
        if self.observation_spec["kind"] == "multi_discrete":
            components = obs.reshape(-1, len(self._offsets)).astype(np.int64)
            nvec = np.asarray(self.observation_spec["nvec"])
            if np.any((components < 0) | (components >= nvec)):
                raise ValueError(f"observation outside MultiDiscrete({nvec.tolist()}): {components}")
            encoded = np.zeros((len(components), self.input_size), dtype=np.float32)
            np.put_along_axis(encoded, components + self._offsets, 1.0, axis=1)
            return encoded
        return obs.reshape(-1, self.input_size).astype(np.float32)

    def q_values(self, obs: Any) -> np.ndarray:
        """Q-values of a batch of observations, shape (batch, n_actions)."""
        with torch.no_grad():
            return self.q_network(torch.from_numpy(self.encode(obs))).numpy()

    def act(self, obs: Any, *, greedy: bool = True, action_mask: np.ndarray | None = None) -> int:
        """Greedy action (lowest index on ties), or epsilon-greedy with the final epsilon."""
        mask = None if action_mask is None else np.asarray(action_mask, dtype=bool)
        if not greedy and self.rng.random() < self.config.epsilon_end:
            return random_action(self.rng, self.n_actions, mask)
        return masked_argmax(self.q_values(np.asarray(obs)[None])[0], mask)

    def epsilon(self, step: int, total_steps: int) -> float:
        """Exploration probability at ``step`` of a learn call of ``total_steps`` steps."""
        c = self.config
        return linear_schedule(
            c.epsilon_start, c.epsilon_end, c.exploration_fraction, step, total_steps
        )

    # -- learning ----------------------------------------------------------------------

    def train_step(self) -> float:
        """One gradient step on a replay minibatch; returns the loss."""
        c = self.config
        batch = self.buffer.sample(c.batch_size, self.rng)
        with torch.no_grad():
            next_q_target = self.target_network(batch["next_obs"])
            if c.double_dqn:
                next_q_online = self.q_network(batch["next_obs"])
                next_actions = _masked(next_q_online, batch["next_masks"]).argmax(
                    dim=1, keepdim=True
                )
                max_next = next_q_target.gather(1, next_actions).squeeze(1)
            else:
                max_next = _masked(next_q_target, batch["next_masks"]).max(dim=1).values
            max_next = torch.where(
                batch["next_masks"].any(dim=1), max_next, torch.zeros_like(max_next)
            )
            td_target = batch["rewards"] + batch["discounts"] * max_next * (1.0 - batch["terminated"])
        q_taken = self.q_network(batch["obs"]).gather(1, batch["actions"].unsqueeze(1)).squeeze(1)
        loss = (
            F.smooth_l1_loss(q_taken, td_target) if c.huber_loss else F.mse_loss(q_taken, td_target)
        )
        self.optimizer.zero_grad()
        loss.backward()
        if c.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.q_network.parameters(), c.max_grad_norm)
        self.optimizer.step()
        self.gradient_steps_done += 1
        return float(loss.item())

    def update_target_network(self) -> None:
        """target <- tau * online + (1 - tau) * target (a copy when tau == 1)."""
        tau = self.config.tau
        with torch.no_grad():
            for target, online in zip(
                self.target_network.parameters(), self.q_network.parameters(), strict=True
            ):
                target.mul_(1.0 - tau).add_(online, alpha=tau)

    def _check_env(self, env: gym.Env | gym.vector.VectorEnv) -> None:
        obs_space, action_space = single_spaces(env)
        if _observation_spec(obs_space) != self.observation_spec:
            raise ValueError(
                f"DQNAgent was built for observations {self.observation_spec}, the env has {obs_space}"
            )
        n_actions = require_discrete(action_space, "action", "DQNAgent")
        if n_actions != self.n_actions:
            raise ValueError(f"DQNAgent has {self.n_actions} actions, the env has {n_actions}")

    def _choose_training_actions(
        self, obs: np.ndarray, masks: np.ndarray | None, step: int, total_steps: int
    ) -> np.ndarray:
        epsilon = self.epsilon(step, total_steps)
        q_values = self.q_values(obs)
        actions = np.empty(len(obs), dtype=np.int64)
        for i in range(len(obs)):
            mask = None if masks is None else masks[i]
            if self.rng.random() < epsilon:
                actions[i] = random_action(self.rng, self.n_actions, mask)
            else:
                actions[i] = masked_argmax(q_values[i], mask, self.rng)
        return actions

    def _start_learning(self, seed: int | None, total_steps: int) -> None:
        super()._start_learning(seed, total_steps)
        self._pending = {}  # a new learn call starts new episodes

    def _store(self, window: list[Transition]) -> None:
        """Store the first transition of ``window`` with the n-step return of the whole window."""
        gamma = self.config.gamma
        first, last = window[0], window[-1]
        reward = sum(gamma**k * t.reward for k, t in enumerate(window))
        self.buffer.add(
            self.encode(np.asarray(first.obs)[None])[0],
            first.action,
            reward,
            self.encode(np.asarray(last.next_obs)[None])[0],
            last.terminated,
            last.next_action_mask,
            gamma ** len(window),
        )

    def _observe(self, transition: Transition, log: TrainingLog) -> None:
        c = self.config
        window = self._pending.setdefault(transition.env_index, [])
        window.append(transition)
        if transition.done:  # the episode's last transitions: what is left of its return
            while window:
                self._store(window)
                window.pop(0)
        elif len(window) >= c.n_step:
            self._store(window)
            window.pop(0)
        if self.num_timesteps < c.learning_starts or self.buffer.size < c.batch_size:
            return
        self._steps_since_train += 1
        if self._steps_since_train >= c.train_frequency:
            self._steps_since_train = 0
            for _ in range(c.gradient_steps):
                loss = self.train_step()
                self.loss_history.append(loss)
                log.losses.append(loss)
        self._steps_since_target_update += 1
        if self._steps_since_target_update >= c.target_update_interval:
            self._steps_since_target_update = 0
            self.update_target_network()

    # -- saving -------------------------------------------------------------------------

    def config_dict(self) -> dict[str, Any]:
        features = None if self.action_features is None else list(self.action_features.shape)
        return {
            "observation": self.observation_spec,
            "n_actions": self.n_actions,
            "action_features": features,
            **self.config.to_json(),
        }

    def _state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            f"q_network.{k}": v.detach().numpy() for k, v in self.q_network.state_dict().items()
        }
        arrays.update(
            {
                f"target_network.{k}": v.detach().numpy()
                for k, v in self.target_network.state_dict().items()
            }
        )
        return arrays

    @classmethod
    def _from_checkpoint(
        cls, path: Path, config: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> DQNAgent:
        config = dict(config)
        spec = config.pop("observation")
        n_actions = config.pop("n_actions")
        feature_shape = config.pop("action_features", None)
        features = None
        if feature_shape is not None:
            require_arrays(path, arrays, ["q_network.action_features"])
            features = arrays["q_network.action_features"]
            if list(features.shape) != list(feature_shape):
                raise CheckpointError(f"{path}: action features have shape {features.shape}, "
                                      f"the header says {feature_shape}")
        if spec["kind"] == "discrete":
            obs_space: gym.Space = gym.spaces.Discrete(spec["n"])
        elif spec["kind"] == "multi_discrete":
            obs_space = gym.spaces.MultiDiscrete(spec["nvec"])
        else:
            obs_space = gym.spaces.Box(
                -np.inf, np.inf, shape=tuple(spec["shape"]), dtype=np.float32
            )
        agent = cls(obs_space, gym.spaces.Discrete(n_actions), DQNConfig(**config),
                    action_features=features)
        for prefix, network in (
            ("q_network", agent.q_network),
            ("target_network", agent.target_network),
        ):
            state = network.state_dict()
            names = [f"{prefix}.{k}" for k in state]
            require_arrays(path, arrays, names)
            loaded = {}
            for key, current in state.items():
                array = arrays[f"{prefix}.{key}"]
                if tuple(array.shape) != tuple(current.shape):
                    raise CheckpointError(
                        f"{path}: array '{prefix}.{key}' has shape {array.shape}, expected {tuple(current.shape)}"
                    )
                loaded[key] = torch.from_numpy(array.copy())
            network.load_state_dict(loaded)
        return agent


def _check_features(features: np.ndarray | None, n_actions: int) -> np.ndarray | None:
    """``action_features`` as float32 of shape (n_actions, d), or a ValueError saying what fits."""
    if features is None:
        return None
    array = np.asarray(features, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] != n_actions or array.shape[1] < 1:
        raise ValueError(f"action_features must have shape (n_actions={n_actions}, d), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("action_features must be finite")
    return array


def _masked(q_values: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    return torch.where(masks, q_values, torch.full_like(q_values, -torch.inf))
