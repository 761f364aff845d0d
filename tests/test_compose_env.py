"""PromptComposeEnv (RLPrompt's MDP): vocabulary rule, masks, positions, terminal reward,
caching, z-scoring, budgets, errors; SB3 DQN and PPO on it.

The machinery runs on the fake LLM (fast); the vocabulary rule and SB3 run on the real
default model with a small vocabulary and two-input minibatches.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import prompt_env
from prompt_env.envs import PromptComposeEnv
from prompt_env.vocabulary import check_words, text_words, tokenizer_words

SST2 = "PromptEnv/SST2-Compose-v0"
FAKE = {"llm": "fake", "vocab_size": 8, "prompt_length": 3, "minibatch_size": 4}


@pytest.fixture(autouse=True)
def _data(shared_data_dir):
    """Every test here reads the SST-2 16-shot split of the shared data."""


def make(**kwargs) -> gym.Env:
    return gym.make(SST2, **{**FAKE, **kwargs})


def play(env: gym.Env, actions: list[int], seed: int = 0) -> tuple[float, dict]:
    env.reset(seed=seed)
    total, info = 0.0, {}
    for action in actions:
        _, reward, terminated, truncated, info = env.step(action)
        total += reward
        if terminated or truncated:
            break
    return total, info


def test_compose_is_registered_for_classification_tasks_only():
    ids = set(prompt_env.ENV_IDS)
    assert {"PromptEnv/SST2-Compose-v0", "PromptEnv/AGNews-Compose-v0", "PromptEnv/BBCTopic-Compose-v0",
            "PromptEnv/File-Compose-v0"} <= ids
    assert "PromptEnv/SQuAD-Compose-v0" not in ids and "PromptEnv/BBCHeadline-Compose-v0" not in ids
    with pytest.raises(ValueError, match="classification tasks, but task 'bbc-headline' is generation"):
        PromptComposeEnv(task="bbc-headline", llm="fake")


def test_spaces_and_the_reward_comes_after_the_last_word():
    env = make()
    assert env.action_space == gym.spaces.Discrete(9)
    assert env.observation_space == gym.spaces.MultiDiscrete([9, 9, 9, 4])
    obs, info = env.reset(seed=0)
    assert obs.tolist() == [8, 8, 8, 0] and info["prompt_text"] == "" and info["llm_calls"] == 0
    obs, reward, terminated, _, info = env.step(2)
    assert obs.tolist() == [2, 8, 8, 1] and reward == 0.0 and not terminated and info["llm_calls"] == 0
    assert info["action_mask"][2] == 0 and info["action_mask"].sum() == 8
    env.step(5)
    obs, reward, terminated, _, info = env.step(0)
    words = env.unwrapped.vocabulary_words()
    assert terminated and obs.tolist() == [2, 5, 0, 3] and info["llm_calls"] == 4
    assert info["prompt_text"] == " ".join(words[i] for i in (2, 5, 0)) and info["prompt_ids"] == [2, 5, 0]
    assert reward == pytest.approx(np.mean(info["input_scores"])) == pytest.approx(info["score"])
    assert env.unwrapped.prompt.instruction == info["prompt_text"]


def test_masked_word_wastes_its_position_and_stop_ends_early():
    env = make()
    total, info = play(env, [1, 1, 8])
    assert info["valid_action"] and info["prompt_ids"] == [1] and info["position"] == 2
    assert total == pytest.approx(info["score"] - 0.01)
    fixed = make(allow_stop=False)
    fixed.reset(seed=0)
    _, reward, terminated, _, info = fixed.step(8)
    assert info["action_mask"][8] == 0 and reward == pytest.approx(-0.01) and not terminated
    assert info["position"] == 1 and info["prompt_ids"] == []


def test_positions_and_the_empty_prompt():
    before = make().unwrapped
    after = make(position="after").unwrapped
    example = before.examples[0]
    words = before.vocabulary_words()
    manual = before.task.prompt_pool.manual
    assert before.prompt_of([3, 1]).render(example, before.task) == (
        f"{words[3]} {words[1]}\n\n{manual.template.layout(example.fields)}\n{manual.template.answer_prefix}")
    assert after.prompt_of([3, 1]).render(example, after.task) == (
        f"{manual.template.layout(example.fields)}\n{words[3]} {words[1]} {manual.template.answer_prefix}")
    # stop and repeats write nothing; the empty prompt is the manual prompt without its instruction
    assert before.prompt_of([3, 8, 3, 1]) == before.prompt_of([3, 1])
    for env in (before, after):
        empty = env.prompt_of([])
        assert empty.render(example, env.task) == manual.replace(instruction="").render(example, env.task)
    no_instruction = [p for p in before.task.prompt_pool.candidates if p.name == "no-instruction"][0]
    assert before.prompt_of([]).render(example, before.task) == no_instruction.render(example, before.task)


def test_repeated_pairs_are_answered_from_memory():
    env = make()
    play(env, [0, 1, 2], seed=3)
    first = env.unwrapped.llm_usage()
    play(env, [0, 1, 2], seed=3)
    second = env.unwrapped.llm_usage()
    assert second["env_calls"] == 2 * first["env_calls"] == 8  # requested calls count, cached or not
    assert second["model_calls"] == first["model_calls"]  # the second episode reads the memo
    assert second["cache_hits"] - first["cache_hits"] == 4 and second["distinct"] == first["distinct"] == 4


def test_same_seed_same_episode_and_pickle():
    import pickle

    from gymnasium.utils.env_checker import data_equivalence

    a, b = make(), make()
    first = play(a, [4, 0, 6], seed=9)
    assert data_equivalence(first, play(b, [4, 0, 6], seed=9))
    clone = pickle.loads(pickle.dumps(a.unwrapped))
    assert data_equivalence(play(clone, [4, 0, 6], seed=9), first)


def test_zscore_reward_is_charged_once_and_bounded():
    env = make(zscore=True, zscore_prompts=3)
    n = len(env.unwrapped.examples)
    _, info = play(env, [0, 1, 2])
    assert info["llm_calls"] == 3 * n + 4  # the reference prompts on every input, then the minibatch
    _, again = play(env, [2, 3, 4], seed=1)
    assert again["llm_calls"] == 4
    assert abs(info["score"]) <= np.sqrt(3) and abs(again["score"]) <= np.sqrt(3)
    fresh = make(zscore=True, zscore_prompts=3)
    assert play(fresh, [2, 3, 4], seed=1)[1]["score"] == pytest.approx(again["score"])


def test_budget_truncates_the_final_scoring():
    env = make(budget={"calls": 6})
    _, info = play(env, [0, 1, 2])
    assert info["score"] is not None and info["llm_calls"] == 4
    env.reset(seed=1)
    env.step(0)
    env.step(1)
    _, reward, terminated, truncated, info = env.step(2)
    assert truncated and not terminated and info["budget_exhausted"] and reward == 0.0


def test_user_vocabulary_and_argument_errors():
    env = make(vocabulary=["great", "terrible", "movie"], vocab_size=None)
    assert env.action_space.n == 4 and env.unwrapped.vocabulary_words() == ["great", "terrible", "movie"]
    assert env.unwrapped.vocabulary_rule == "user"
    assert check_words(("a", "b")) == ["a", "b"]
    for bad, match in ((["ok", "ok"], "appears twice"), ([" ok"], "leading or trailing"), ([""], "non-empty"),
                       ([], "non-empty list")):
        with pytest.raises(ValueError, match=match):
            make(vocabulary=bad, vocab_size=None)
    with pytest.raises(ValueError, match="vocab_size=4 but vocabulary has 2 words"):
        make(vocabulary=["a", "b"], vocab_size=4)
    with pytest.raises(ValueError, match="position must be one of"):
        make(position="middle")
    with pytest.raises(ValueError, match="prompt_length"):
        make(prompt_length=0)
    with pytest.raises(ValueError, match="needs at least as many words"):
        make(vocab_size=2, prompt_length=3)
    with pytest.raises(ValueError, match="pass vocab_size=.* or less"):
        make(vocab_size=100_000).unwrapped.vocabulary_words()


def test_fallback_vocabulary_is_the_task_words_by_frequency():
    env = make().unwrapped
    assert env.vocabulary_rule is None
    texts = [e.text for name in ("train", "dev") for e in env.task.splits[name]]
    assert env.vocabulary_words() == text_words(texts, 8) and env.vocabulary_rule == "task words"
    assert text_words(["bb aa bb", "cc aa dd"], 3) == ["bb", "aa", "cc"]  # ties: first seen first
    assert text_words(["x yy 3d yy"], 5) == ["yy"]  # one-letter and non-alphabetic words are left out


def test_token_features_are_normalised_rows_plus_a_zero_stop_row():
    features = make().unwrapped.token_features()
    assert features.shape == (9, 16) and features.dtype == np.float32
    assert np.allclose(np.linalg.norm(features[:-1], axis=1), 1.0) and not features[-1].any()


# ----------------------------------------------------------------- the real default model


def test_vocabulary_rule_on_the_real_tokenizer(default_backend):
    tokenizer = default_backend.tokenizer
    words = tokenizer_words(tokenizer, 300)
    assert words[:4] == ["the", "in", "of", "and"] and len(words) == len(set(words)) == 300
    for word in words:
        assert word.isascii() and word.isalpha() and len(word) >= 2
        assert len(tokenizer(" " + word, add_special_tokens=False).input_ids) == 1
    ids = [tokenizer(" " + w, add_special_tokens=False).input_ids[0] for w in words]
    assert ids == sorted(ids)  # taken in id order
    env = gym.make(SST2, vocab_size=300, prompt_length=2, minibatch_size=2).unwrapped
    assert env.vocabulary_words() == words and env.vocabulary_rule == "tokenizer"


REAL = {"llm": "default", "vocab_size": 20, "prompt_length": 2, "minibatch_size": 2, "max_examples": 4}


def test_sb3_dqn_and_ppo_train_on_the_compose_env():
    from stable_baselines3 import DQN, PPO

    from agents.sb3 import evaluate_sb3, train_sb3

    dqn = train_sb3(SST2, "dqn", total_timesteps=20, seed=0, env_kwargs=REAL, learning_starts=8)
    ppo = train_sb3(SST2, "ppo", total_timesteps=8, seed=0, env_kwargs=REAL, n_steps=8, batch_size=4,
                    n_epochs=2)
    assert isinstance(dqn, DQN) and isinstance(ppo, PPO) and ppo.num_timesteps >= 8
    result = evaluate_sb3(dqn, gym.make(SST2, **REAL), n_episodes=1, seed=0)
    assert result["lengths"] == [2] and np.isfinite(result["mean_return"])


def test_rewards_accuracy_margin_and_calibrated_scores():
    scores = {}
    for name, kwargs in (("accuracy", {}), ("margin", {"reward": "margin"}),
                         ("calibrated", {"reward": "margin", "calibration": "content-free"})):
        _, info = play(make(**kwargs), [0, 1, 2], seed=4)
        scores[name] = info["input_scores"]
    assert set(scores["accuracy"]) <= {0.0, 1.0}
    assert all(-1.8 <= m <= 2.0 for m in scores["margin"]) and scores["calibrated"] != scores["margin"]
