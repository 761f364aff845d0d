"""Every registered env id: the Gymnasium / SB3 contract, on small slices.

Per id: gymnasium's check_env, stable-baselines3's check_env, a two-env
same-seed rollout, a pickle round-trip, spec JSON round-trip and every render
mode. Catalog tasks that need the shared data dir skip when it is absent.

In `make test` the real default model runs the contract for one task of
every family (topic and sentiment classification, headline generation, QA,
translation, instruction following) under all four env kinds. The other
catalog tasks share those env classes and differ only in their data and
prompt pool, so there their contract runs on the deterministic fake LLM to
keep `make test` within its time limit on 2 cores (their data and pools are
still the real ones). `make test-envs` sets ``PROMPT_ENV_REAL_ALL=1`` and runs
the contract of every registered id on the real default model; CI runs it.
"""

from __future__ import annotations

import os
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import EnvSpec
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.utils.env_checker import data_equivalence
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import prompt_env
from prompt_env.envs import InvalidActionError
from prompt_env.tasks import catalog_entries

ALL_IDS = prompt_env.registered_ids()
NEEDS_DATA = {e.env_name for e in catalog_entries() if e.needs_data_dir} | {"File"}

# Warnings we accept from the checkers, each with its reason.
ALLOWED_WARNINGS = (
    # gymnasium suggests symmetric [-1, 1] Box bounds; the Edit env's one-hot
    # observation lives in [0, 1], which is exact and finite.
    "normalized",
    # sb3 notes that Discrete observations get one-hot encoded for its policies.
    "one-hot",
)


REAL_MODEL_TASKS = {"BBCTopic", "BBCHeadline", "SST2", "SQuAD", "IITranslationEnDe", "IIAntonyms"}
REAL_ALL = os.environ.get("PROMPT_ENV_REAL_ALL") == "1"


def task_of(env_id: str) -> str:
    return env_id.split("/")[1].split("-")[0]


def small_kwargs(env_id: str) -> dict:
    kwargs = {"max_examples": 6, "max_new_tokens": 6}
    if task_of(env_id) == "File":  # a user's own file: the 32 lines of one SST-2 16-shot train split
        data = os.environ.get("PROMPT_ENV_DATA", "")
        kwargs.update(task=os.path.join(data, "classification", "sst-2", "16-shot-seed42", "train.tsv"),
                      task_options={"label_names": ["negative", "positive"]})
    if not REAL_ALL and task_of(env_id) not in REAL_MODEL_TASKS:
        kwargs["llm"] = "fake"
    if not REAL_ALL and "-Compose" in env_id and task_of(env_id) != "SST2":
        kwargs["llm"] = "fake"  # one env class: the real model runs it on SST-2 (BBC articles are long)
    if "-Edit" in env_id:
        kwargs.update(minibatch_size=2, max_edits=3, n_candidates=2)
    elif "-Compose" in env_id:
        kwargs.update(minibatch_size=2, prompt_length=2, vocab_size=6)
    else:
        kwargs.update(episode_length=3)
    return kwargs


def make(env_id: str, **extra) -> gym.Env:
    return gym.make(env_id, **{**small_kwargs(env_id), **extra})


def pick_actions(env: gym.Env, info: dict, n: int, seed: int) -> list[int]:
    """A fixed action sequence; valid under the mask when the env has one."""
    rng = np.random.default_rng(seed)
    actions = []
    for _ in range(n):
        mask = info.get("action_mask")
        choices = np.flatnonzero(mask[:-1]) if mask is not None else np.arange(env.action_space.n)
        actions.append(int(rng.choice(choices)))
    return actions


def rollout(env: gym.Env, seed: int, actions: list[int]) -> list:
    obs, info = env.reset(seed=seed)
    trace = [(obs, info)]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((obs, reward, terminated, truncated, info))
        if terminated or truncated:
            break
    return trace


@pytest.fixture(params=ALL_IDS)
def env_id(request, shared_data_dir_or_none):
    env_id = request.param
    if task_of(env_id) in NEEDS_DATA and shared_data_dir_or_none is None:
        pytest.skip("needs the shared data dir (set PROMPT_ENV_DATA)")
    return env_id


@pytest.fixture(scope="session")
def shared_data_dir_or_none():
    from pathlib import Path

    path = Path(os.environ.get("PROMPT_ENV_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    if (path / "classification").is_dir():
        os.environ["PROMPT_ENV_DATA"] = str(path)
        return path
    return None


def test_registered_env_contract(env_id):
    env = make(env_id, render_mode="ansi")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped, skip_render_check=False)
        sb3_check_env(env.unwrapped, warn=True)
    unexpected = [
        str(w.message) for w in caught
        if not any(a in str(w.message) for a in ALLOWED_WARNINGS)
        and "Deprecat" not in str(w.category.__name__)
    ]
    assert not unexpected, unexpected

    # two envs, same seed, same actions: same observations, rewards and infos
    _, first_info = env.reset(seed=7)
    actions = pick_actions(env, first_info, 3, seed=1)
    a = rollout(make(env_id), 7, actions)
    b = rollout(make(env_id), 7, actions)
    assert data_equivalence(a, b)

    # pickle round-trip (the LLM is recreated lazily on the other side)
    clone = pickle.loads(pickle.dumps(env.unwrapped))
    assert data_equivalence(rollout(clone, 7, actions), a)

    # spec JSON round-trip and make() from the restored spec
    restored = EnvSpec.from_json(env.spec.to_json())
    assert restored.id == env_id and restored.kwargs == env.spec.kwargs
    gym.make(restored).close()

    # render modes: ansi gives readable text, None gives None
    env.reset(seed=3)
    env.step(actions[0])
    text = env.render()
    assert isinstance(text, str) and env_id in text
    plain = make(env_id)
    plain.reset(seed=3)
    assert plain.render() is None
    assert plain.unwrapped.metadata["render_modes"] == ["ansi"]


def test_one_string_form_imports_the_package():
    env = gym.make("prompt_env:PromptEnv/BBCTopic-Select-v0", episode_length=2, max_examples=4)
    assert env.spec.id == "PromptEnv/BBCTopic-Select-v0"


def test_every_catalog_task_has_four_env_kinds():
    for entry in catalog_entries():
        for kind in ("Select", "Select-Tabular", "Edit", "Edit-Tabular"):
            assert f"PromptEnv/{entry.env_name}-{kind}-v0" in ALL_IDS


def test_info_carries_the_human_side():
    env = gym.make("PromptEnv/BBCTopic-Select-v0", episode_length=2)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(0)
    for key in ("prompt", "output", "reference", "correct", "llm_calls"):
        assert key in info
    assert "Classify" in info["prompt"] and info["reference"] in env.unwrapped.task.label_names
    assert reward == float(info["correct"])
    # info is plain data; what the cache did lives in the env's public usage meter
    assert info["llm_calls"] == 1 and not any(hasattr(v, "__dataclass_fields__") for v in info.values())
    usage = env.unwrapped.llm_usage()
    assert usage["env_calls"] == usage["calls"] == 1
    assert usage["distinct"] == 1 and usage["cache_hits"] + usage["model_calls"] == 1


def test_invalid_actions():
    select = gym.make("PromptEnv/BBCTopic-Select-v0", episode_length=2)
    select.reset(seed=0)
    for bad in (99, -1, "2", 1.5, np.array([1, 2])):
        with pytest.raises(InvalidActionError):
            select.step(bad)
    edit = gym.make("PromptEnv/BBCTopic-Edit-v0", minibatch_size=2, max_edits=3)
    _, info = edit.reset(seed=0)
    mask = info["action_mask"]
    assert mask.dtype == np.int8 and np.array_equal(mask, edit.unwrapped.action_masks())
    invalid = int(np.flatnonzero(mask == 0)[0])
    score = info["score"]
    _, reward, terminated, _, info = edit.step(invalid)
    assert reward == pytest.approx(-0.01) and not info["valid_action"] and info["score"] == score
    assert not terminated


def test_edit_return_is_final_minus_initial_score():
    env = gym.make("PromptEnv/BBCTopic-Edit-v0", minibatch_size=4, max_edits=4, n_candidates=2)
    _, info = env.reset(seed=5)
    initial, total = info["score"], 0.0
    rng = np.random.default_rng(0)
    done = False
    while not done:
        valid = np.flatnonzero(info["action_mask"][:-1])
        _, reward, terminated, truncated, info = env.step(int(rng.choice(valid)))
        total += reward
        done = terminated or truncated
    assert total == pytest.approx(info["score"] - initial)


def test_edit_starts_from_a_given_prompt():
    env = gym.make(
        "PromptEnv/BBCTopic-Edit-v0",
        minibatch_size=2,
        initial_prompt={"instruction": "Name the news section of this article.", "exemplars": [0]},
    )
    env.reset(seed=0)
    prompt = env.unwrapped.prompt
    assert prompt.instruction == "Name the news section of this article." and prompt.exemplars == (0,)


def test_budget_truncates_instead_of_crashing():
    env = gym.make("PromptEnv/BBCTopic-Select-v0", episode_length=8, budget={"calls": 3})
    env.reset(seed=0)
    steps = 0
    while True:
        _, _, terminated, truncated, info = env.step(0)
        steps += 1
        if terminated or truncated:
            break
    assert steps == 4 and truncated and info["budget_exhausted"]


def test_a_spent_edit_budget_truncates_and_a_learner_goes_on():
    """A reset the budget cannot score says so; the next step truncates (it used to raise
    "call reset() before step()", which crashed MaskablePPO mid-rollout)."""
    from sb3_contrib import MaskablePPO

    env = gym.make("PromptEnv/BBCTopic-Edit-v0", budget={"calls": 10}, minibatch_size=4)
    env.reset(seed=0)
    stop = env.unwrapped.action_meanings().index("stop")
    info = {"budget_exhausted": False}
    while not info["budget_exhausted"]:
        masks = env.unwrapped.action_masks()
        masks[stop] = 0
        _, _, terminated, truncated, info = env.step(int(np.flatnonzero(masks)[0]))
        if (terminated or truncated) and not info["budget_exhausted"]:
            env.reset()
    _, info = env.reset()
    assert info["budget_exhausted"]
    _, reward, terminated, truncated, info = env.step(stop)
    assert (reward, terminated, truncated, info["budget_exhausted"]) == (0.0, False, True, True)
    fresh = gym.make("PromptEnv/BBCTopic-Edit-v0", budget={"calls": 10}, minibatch_size=4)
    MaskablePPO("MlpPolicy", fresh, n_steps=8, batch_size=8, seed=0).learn(16)
    assert fresh.unwrapped.calls_used <= 10


def test_a_calibrated_edit_env_reset_with_the_same_seed_repeats_its_counts():
    """Calibration premises are paid per minibatch: the second reset(seed=0) of one env
    counts what the first did (it used to count 4, 8, 12 after 7, 14, 21)."""
    env = gym.make("PromptEnv/BBCTopic-Edit-v0", llm="fake", calibration="content-free", minibatch_size=4)

    def counts() -> list[int]:
        _, info = env.reset(seed=0)
        return [info["llm_calls"], *(env.step(a)[4]["llm_calls"] for a in (1, 2))]

    first = counts()
    assert first[0] == 4 + 3 and counts() == first


def test_the_edit_env_with_the_llm_encoder_observes_the_model_width():
    env = gym.make("PromptEnv/BBCTopic-Edit-v0", encoder="llm", minibatch_size=2)
    obs, _ = env.reset(seed=0)
    width = sum(env.unwrapped.space.radices) + 1 + env.unwrapped.llm.model.config.hidden_size
    assert obs.shape == env.observation_space.shape == (width,) and env.observation_space.contains(obs)
    gym_check_env(env.unwrapped, skip_render_check=True)


def test_llm_failure_names_env_and_prompt(tmp_path):
    from prompt_env.errors import LLMError

    env = gym.make("PromptEnv/BBCTopic-Select-v0", llm=f"hf:{tmp_path / 'missing'}", episode_length=2)
    env.reset(seed=0)
    with pytest.raises(LLMError, match="could not load"):
        env.step(0)


def test_llm_error_during_step_is_named(monkeypatch):
    from prompt_env.errors import LLMError

    env = gym.make("PromptEnv/BBCTopic-Select-v0", llm="fake", episode_length=2)
    env.reset(seed=0)

    def broken(*args, **kwargs):
        raise ConnectionError("server went away")

    monkeypatch.setattr(env.unwrapped.llm, "score", broken)
    monkeypatch.setattr(env.unwrapped.llm, "score_many", broken)  # scoring's batched entry point
    with pytest.raises(LLMError, match=r"PromptEnv/BBCTopic-Select-v0.*manual.*server went away"):
        env.step(0)


def test_batched_vector_env_matches_sync_vector_env():
    kwargs = {"episode_length": 3, "max_examples": 12}
    batched = gym.make_vec("PromptEnv/BBCTopic-Select-v0", num_envs=3, vectorization_mode="vector_entry_point", **kwargs)
    sync = gym.make_vec("PromptEnv/BBCTopic-Select-v0", num_envs=3, vectorization_mode="sync", **kwargs)
    ob, _ = batched.reset(seed=11)
    os_, _ = sync.reset(seed=11)
    assert np.array_equal(ob, os_)
    rng = np.random.default_rng(0)
    for _ in range(7):  # crosses episode ends: autoreset semantics must match
        actions = rng.integers(0, batched.single_action_space.n, size=3)
        b = batched.step(actions)
        s = sync.step(actions)
        for x, y in zip(b[:4], s[:4]):
            assert np.array_equal(x, y)


def test_async_vector_env_pickles_envs():
    envs = gym.make_vec("PromptEnv/BBCTopic-Select-v0", num_envs=2, vectorization_mode="async",
                        episode_length=2, max_examples=4, llm="fake")
    obs, _ = envs.reset(seed=0)
    obs, rewards, *_ = envs.step(np.array([0, 1]))
    assert obs.shape == (2, 64) and rewards.shape == (2,)
    envs.close()
