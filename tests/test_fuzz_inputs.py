"""Hostile and broken input: every case loads or fails with a typed, actionable error.

Hypothesis drives data files, env kwargs, actions, prompt templates and agent
checkpoint files. Examples are bounded (``max_examples``) so the whole module
runs in well under a minute on two slow cores; the LLM is the deterministic
fake, since the point is input handling, not model quality.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import stat
import struct
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import prompt_env  # noqa: F401  (registers the env ids)
from agents import TabularQAgent, load_agent
from prompt_env.envs import InvalidActionError
from prompt_env.errors import CheckpointError, PromptEnvError, TaskFormatError
from prompt_env.prompts import Prompt, Template
from prompt_env.tasks import load_task
from prompt_env.tasks.base import Example
from prompt_env.tasks.loaders import read_file

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
_counter = itertools.count()


def fresh_path(directory: Path, suffix: str) -> Path:
    # A new name per example: load_task caches a file on (path, mtime) and two
    # writes within one clock tick can share an mtime.
    return directory / f"case{next(_counter)}{suffix}"


def loads_or_names_the_file(path: Path) -> None:
    """read_file and load_task either succeed or raise a PromptEnvError naming ``path``."""
    for reader in (read_file, load_task):
        try:
            result = reader(path)
        except PromptEnvError as error:
            assert str(path) in str(error), f"{reader.__name__}: error does not name the file: {error}"
        else:
            examples = result.examples if hasattr(result, "examples") else result.splits["train"]
            assert examples, f"{reader.__name__} loaded no examples without an error"


SUFFIXES = st.sampled_from([".tsv", ".csv", ".txt", ".jsonl", ".json"])


# --------------------------------------------------------------------------- data files


@FUZZ
@given(data=st.binary(max_size=600), suffix=SUFFIXES)
def test_random_bytes_load_or_raise_task_format_error(tmp_path, data, suffix):
    path = fresh_path(tmp_path, suffix)
    path.write_bytes(data)
    loads_or_names_the_file(path)


CELL = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12
) | st.sampled_from(["0", "1", "2", "-1", "label", "sentence", "text", "", '"', '"a,b"', "\t"])


@FUZZ
@given(
    header=st.lists(CELL, min_size=0, max_size=4),
    rows=st.lists(st.lists(CELL, min_size=0, max_size=5), max_size=8),
    delimiter=st.sampled_from(["\t", ","]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_delimited_files_with_wrong_columns(tmp_path, header, rows, delimiter, newline):
    path = fresh_path(tmp_path, ".tsv" if delimiter == "\t" else ".csv")
    lines = [delimiter.join(header)] + [delimiter.join(r) for r in rows]
    path.write_text(newline.join(lines), encoding="utf-8", newline="")
    loads_or_names_the_file(path)


JSON_SCALAR = st.none() | st.booleans() | st.integers(-3, 10**20) | st.floats(allow_nan=True) | CELL
JSON_VALUE = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(
        st.sampled_from(["text", "label", "input", "target", "target_scores", "output", "context",
                         "question", "answers", "document", "summary", "examples", "1", "x"]),
        inner, max_size=4,
    ),
    max_leaves=10,
)


@FUZZ
@given(records=st.lists(JSON_VALUE, max_size=6), junk=st.sampled_from(["", "{", "}\n[", "\x00", "NaN"]))
def test_jsonl_files_with_odd_records(tmp_path, records, junk):
    path = fresh_path(tmp_path, ".jsonl")
    text = "\n".join(json.dumps(r) for r in records) + ("\n" + junk if junk else "")
    path.write_text(text, encoding="utf-8")
    loads_or_names_the_file(path)


@FUZZ
@given(document=JSON_VALUE)
def test_json_documents_of_any_shape(tmp_path, document):
    path = fresh_path(tmp_path, ".json")
    path.write_text(json.dumps(document), encoding="utf-8")
    loads_or_names_the_file(path)


@pytest.mark.parametrize(
    "suffix,content",
    [
        (".tsv", b""),
        (".jsonl", b""),
        (".json", b""),
        (".tsv", b"\xef\xbb\xbf"),  # a BOM and nothing else
        (".tsv", "sentence\tlabel\nvoil\u00e0\t1\n".encode("latin-1")),
        (".jsonl", "{\"text\": \"caf\u00e9\", \"label\": 0}\n".encode("utf-16")),
        (".csv", b"sentence,label\n\"unterminated,1\n"),
        (".csv", b"sentence,label\n" + b"x" * 300_000 + b",1\n"),  # over csv's field limit
        (".tsv", b"sentence\tlabel\n" + b"y" * 2_000_000 + b"\t1\n" * 3),  # a huge line
        (".jsonl", b'{"text": "' + b"z" * 2_000_000 + b'", "label": 0}\n'),
        (".json", b"[" * 100_000 + b"]" * 100_000),  # deeper than the JSON parser's recursion
        (".jsonl", b"[" * 100_000 + b"\n"),
        (".tsv", b"\x00\x01\x02\x03"),
        (".xml", b"<examples/>"),
        ("", b"sentence\tlabel\na\t0\n"),
    ],
)
def test_pathological_files(tmp_path, suffix, content):
    path = fresh_path(tmp_path, suffix)
    path.write_bytes(content)
    loads_or_names_the_file(path)


def test_huge_line_that_is_valid_still_loads(tmp_path):
    path = fresh_path(tmp_path, ".tsv")
    path.write_text("sentence\tlabel\n" + "w " * 500_000 + "\t1\nshort\t0\nthird\t1\n", encoding="utf-8")
    task = load_task(path)
    assert sum(len(task.splits[s]) for s in ("train", "dev", "test")) == 3


def test_a_directory_named_like_a_data_file(tmp_path):
    path = tmp_path / "train.tsv"
    path.mkdir()
    with pytest.raises(PromptEnvError, match="train.tsv"):
        read_file(path)


# --------------------------------------------------------------------------- env kwargs

SELECT = "PromptEnv/BBCTopic-Select-v0"
SELECT_TABULAR = "PromptEnv/BBCTopic-Select-Tabular-v0"
EDIT = "PromptEnv/BBCTopic-Edit-v0"
BASE_KWARGS = {"llm": "fake", "max_examples": 6}
ODD_VALUES = st.sampled_from(
    [None, -1, 0, 1, 2.5, -0.0, math.nan, math.inf, True, "", "x", "3", [], [1], {}, {"calls": -1},
     {"bogus": 1}, 10**12, b"bytes", ("tuple",)]
)
KWARG_NAMES = {
    SELECT: ["task", "llm", "split", "reward", "episode_length", "encoder", "encoder_dim", "budget",
             "max_examples", "render_mode", "max_new_tokens", "task_options", "data_dir"],
    SELECT_TABULAR: ["n_contexts", "episode_length", "split", "max_examples"],
    EDIT: ["minibatch_size", "max_edits", "n_slots", "n_candidates", "initial_prompt", "invalid_penalty",
           "reward", "budget", "encoder_dim"],
}


def exercise(env_id: str, kwargs: dict) -> None:
    env = gym.make(env_id, **{**BASE_KWARGS, **({"minibatch_size": 2, "max_edits": 2, "n_candidates": 2}
                                                if env_id == EDIT else {}), **kwargs})
    try:
        obs, info = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        mask = info.get("action_mask")
        action = int(np.flatnonzero(mask)[0]) if mask is not None else 0
        env.step(action)
    finally:
        env.close()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(env_id=st.sampled_from(sorted(KWARG_NAMES)), data=st.data())
def test_bad_env_kwargs_raise_value_errors(env_id, data):
    name = data.draw(st.sampled_from(KWARG_NAMES[env_id]), label="name")
    # gym.make itself calls render_mode.endswith(...) before our constructor runs
    value = data.draw(st.sampled_from(["", "human", "rgb_array", "x"]) if name == "render_mode" else ODD_VALUES,
                      label="value")
    try:
        exercise(env_id, {name: value})
    except (ValueError, PromptEnvError):
        pass  # PromptEnvError covers TaskFormatError, LLMSpecError, UnknownTaskError, ...


def test_unknown_kwarg_is_a_type_error_naming_it_and_what_fits():
    with pytest.raises(TypeError, match="no_such_option'; it takes: task, llm, episode_length"):
        gym.make(SELECT, no_such_option=1, **BASE_KWARGS)
    with pytest.raises(TypeError, match=r"'episode_lenght' \(did you mean 'episode_length'\?\)"):
        gym.make(SELECT, episode_lenght=4, **BASE_KWARGS)
    with pytest.raises(TypeError, match=r"'max_edits' \(an argument of PromptEditEnv\)"):
        gym.make(SELECT, max_edits=3, **BASE_KWARGS)


REFUSED_AT_MAKE = {
    "llm": ("gpt-17", "unknown LLM spec 'gpt-17'"),
    "encoder": ("bert", "unknown encoder 'bert'"),
    "tabular": ("false", "tabular must be bool"),
}


@pytest.mark.parametrize("name", sorted(REFUSED_AT_MAKE))
def test_bad_values_are_refused_by_gym_make_not_at_the_first_step(name):
    value, message = REFUSED_AT_MAKE[name]
    with pytest.raises((ValueError, PromptEnvError), match=message):
        gym.make(EDIT, **{**BASE_KWARGS, name: value})


def test_a_default_model_spec_with_a_misspelt_or_bad_field_is_refused_by_gym_make():
    for spec, field in (({"backend": "default", "devcie": "cpu"}, "devcie"),
                        ({"backend": "default", "dtype": "float8"}, "'dtype'")):
        with pytest.raises(PromptEnvError, match=field):
            gym.make(SELECT, **{**BASE_KWARGS, "llm": spec})


def test_a_reset_option_the_env_does_not_read_is_refused():
    """reset(options={"example": ...}) once ran an episode on random inputs, silently."""
    select = gym.make(SELECT, **BASE_KWARGS)
    with pytest.raises(ValueError, match=r"\['example'\] are not read by this env \(did you mean 'examples'\?\)"):
        select.reset(seed=0, options={"example": [0, 1]})
    select.reset(seed=0, options={"examples": [0, 1]})
    edit = gym.make(EDIT, **BASE_KWARGS, minibatch_size=2)
    with pytest.raises(ValueError, match=r"\['prompts'\] .*did you mean 'prompt'"):
        edit.reset(seed=0, options={"prompts": {}})
    edit.reset(seed=0, options={})
    edit.reset(seed=0, options=None)


def test_a_bad_llm_budget_is_refused_when_the_llm_is_made():
    from prompt_env.llm import load_llm

    for budget, message in ((1, "must be a dict"), ({"calls": "ten"}, r"budget\['calls'\] must be a whole"),
                            ({"calls": -5}, ">= 0"), ({"tokens": True}, "whole number")):
        with pytest.raises(ValueError, match=message):
            load_llm("fake", budget=budget)


# --------------------------------------------------------------------------- actions

ACTIONS = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=4)
    | st.none()
    | st.booleans()
    | st.lists(st.integers(0, 3), max_size=3)
    | st.builds(np.array, st.lists(st.integers(-2, 20), min_size=0, max_size=3))
    | st.sampled_from([np.int8(-1), np.uint64(2**63), np.float32(1.5), np.bool_(True), np.array(2),
                       np.array([[1]]), np.array(["1"]), 1 + 2j, object(), b"\x01", {"a": 1}])
)


@pytest.fixture(scope="module")
def stepping_envs():
    envs = {
        env_id: gym.make(env_id, **BASE_KWARGS, **({"minibatch_size": 2, "max_edits": 50,
                                                     "n_candidates": 2} if env_id == EDIT else
                                                    {"episode_length": 10_000}))
        for env_id in (SELECT, EDIT)
    }
    yield envs
    for env in envs.values():
        env.close()


def valid_action(action, n: int) -> bool:
    """Exactly the values a Discrete(n) action may take: an integer (or integral
    float) scalar, or a one-element array of one, in [0, n)."""
    if isinstance(action, np.ndarray):
        if action.shape not in ((), (1,)) or action.dtype.kind not in "iuf":
            return False
        action = action.reshape(()).item()
    if isinstance(action, (bool, np.bool_)):
        return False
    if isinstance(action, (float, np.floating)):
        if not math.isfinite(action) or not float(action).is_integer():
            return False
        action = int(action)
    if not isinstance(action, (int, np.integer)):
        return False
    return 0 <= int(action) < n


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(env_id=st.sampled_from([SELECT, EDIT]), action=ACTIONS)
def test_bad_actions_raise_invalid_action_error(stepping_envs, env_id, action):
    env = stepping_envs[env_id]
    env.reset(seed=0)
    n = int(env.action_space.n)
    if valid_action(action, n):
        env.step(action)
        return
    with pytest.raises(InvalidActionError):
        env.step(action)


# --------------------------------------------------------------------------- prompt templates

TEMPLATE_TEXT = st.lists(
    st.sampled_from(["{text}", "{", "}", "{{", "}}", "{0}", "{}", "{text!r}", "{text.__class__}",
                     "{text[0]}", "%s", "${text}", "{missing}", "\x00", "\x1b[31m", "\r", "\u202e",
                     "Review:", " ", "\n", "{__import__}", "{{text}}"])
    | st.text(max_size=5),
    max_size=8,
).map("".join)


def reference_fill(template: str, fields: dict[str, str]) -> str | None:
    """What a literal renderer gives: each ``{name}`` replaced once, everything else kept; None when
    ``name`` is unknown."""
    import re

    names = re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", template)
    if any(name not in fields for name in names):
        return None
    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: fields[m.group(1)], template)


@pytest.fixture(scope="module")
def bbc_task():
    return load_task("bbc-topic")


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(input_format=TEMPLATE_TEXT, prefix=TEMPLATE_TEXT, value=TEMPLATE_TEXT,
       name=st.text(max_size=6), chat=st.booleans())
def test_templates_render_literally_or_name_the_template(bbc_task, input_format, prefix, value, name,
                                                         chat):
    template = Template(name=name, input_format=input_format, answer_prefix=prefix)
    prompt = Prompt(instruction="{text} stays", template=template, verbalizer=("a", "b"), chat=chat)
    example = Example(fields={"text": value}, label=0)
    expected = reference_fill(input_format, {"text": value})
    if expected is None:
        with pytest.raises(TaskFormatError) as raised:
            prompt.render(example, bbc_task)
        assert f"template {name!r}" in str(raised.value)
        return
    rendered = prompt.render(example, bbc_task)
    if chat:
        assert rendered[0] == {"role": "system", "content": "{text} stays"}
        query = rendered[-1]["content"]
        assert query == (f"{expected}\n{prefix}" if prefix else expected)
    else:
        assert rendered == f"{{text}} stays\n\n{expected}\n{prefix}"


# --------------------------------------------------------------------------- checkpoint files

ENV_FOR_AGENT = SELECT_TABULAR


@pytest.fixture(scope="module")
def saved_agent(tmp_path_factory):
    env = gym.make(ENV_FOR_AGENT, **BASE_KWARGS, episode_length=4)
    agent = TabularQAgent.from_env(env, seed=0)
    agent.learn(env, 40, seed=0)
    env.close()
    path = tmp_path_factory.mktemp("agent") / "agent.safetensors"
    agent.save(path, env_id=ENV_FOR_AGENT)
    return path.read_bytes()


def load_or_checkpoint_error(path: Path) -> None:
    for load in (lambda: TabularQAgent.load(path, env_id=ENV_FOR_AGENT), lambda: load_agent(path)):
        try:
            agent = load()
        except CheckpointError as error:
            assert str(path) in str(error)
        else:
            assert isinstance(agent, TabularQAgent)
            assert agent.q_table.shape == (agent.n_states, agent.n_actions)


@FUZZ
@given(data=st.data())
def test_truncated_and_mutated_checkpoints(tmp_path, saved_agent, data):
    blob = bytearray(saved_agent)
    how = data.draw(st.sampled_from(["truncate", "flip", "splice"]), label="how")
    if how == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1), label="length")]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 8), label="flips")):
            i = data.draw(st.integers(0, len(blob) - 1), label="index")
            blob[i] = data.draw(st.integers(0, 255), label="byte")
    else:
        i = data.draw(st.integers(0, len(blob)), label="at")
        blob[i:i] = data.draw(st.binary(min_size=1, max_size=64), label="insert")
    path = fresh_path(tmp_path, ".safetensors")
    path.write_bytes(bytes(blob))
    load_or_checkpoint_error(path)


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_are_not_a_checkpoint(tmp_path, data):
    path = fresh_path(tmp_path, ".safetensors")
    path.write_bytes(data)
    with pytest.raises(CheckpointError):
        TabularQAgent.load(path)


def crafted(header: dict, payload: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + payload


def our_header(**changes) -> str:
    header = {"format": "prompt-env-agent", "version": 1, "agent": "tabular-q", "env_id": ENV_FOR_AGENT,
              "config": {"n_states": 2, "n_actions": 2}, "package_version": "0.1.0"}
    header.update(changes)
    return json.dumps(header)


CRAFTED = {
    "huge header length": struct.pack("<Q", 2**63) + b"{}",
    "header length past the end": struct.pack("<Q", 10_000) + b'{"__metadata__": {}}',
    "huge tensor offsets": crafted(
        {"__metadata__": {"prompt_env": our_header()},
         "q_table": {"dtype": "F64", "shape": [2, 2], "data_offsets": [0, 2**62]},
         "visits": {"dtype": "I64", "shape": [2, 2], "data_offsets": [0, 32]}},
        b"\x00" * 32,
    ),
    "huge tensor shape": crafted(
        {"__metadata__": {"prompt_env": our_header()},
         "q_table": {"dtype": "F64", "shape": [2**40, 2**40], "data_offsets": [0, 32]},
         "visits": {"dtype": "I64", "shape": [2, 2], "data_offsets": [0, 32]}},
        b"\x00" * 32,
    ),
    "python-object payload in our header": crafted(
        {"__metadata__": {"prompt_env": our_header(
            config={"n_states": 2, "n_actions": 2,
                    "py/reduce": [{"py/function": "os.system"}, {"py/tuple": ["touch PWNED"]}]})}}
    ),
    "pickle bytes in the header": crafted(
        {"__metadata__": {"prompt_env": "cos\nsystem\n(S'touch PWNED'\ntR."}}
    ),
    "header is a list": crafted([1, 2, 3]),  # type: ignore[arg-type]
    "metadata not a string": crafted({"__metadata__": {"prompt_env": {"format": "prompt-env-agent"}}}),
    "wrong format": crafted({"__metadata__": {"prompt_env": our_header(format="pickle")}}),
    "future version": crafted({"__metadata__": {"prompt_env": our_header(version=99)}}),
    "unknown agent type": crafted({"__metadata__": {"prompt_env": our_header(agent="os.system")}}),
    "config with strings": crafted({"__metadata__": {"prompt_env": our_header(
        config={"n_states": "2", "n_actions": "x"})}}),
    "config not a dict": crafted({"__metadata__": {"prompt_env": our_header(config=[1])}}),
    "missing arrays": crafted({"__metadata__": {"prompt_env": our_header()}}),
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_checkpoints_raise_checkpoint_error(tmp_path, case, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "agent.safetensors"
    path.write_bytes(CRAFTED[case])
    for load in (lambda: TabularQAgent.load(path), lambda: load_agent(path)):
        with pytest.raises(CheckpointError) as raised:
            load()
        assert str(path) in str(raised.value)
    assert not (tmp_path / "PWNED").exists()


def test_checkpoint_for_another_env_or_agent(tmp_path, saved_agent):
    from agents import DQNAgent

    path = tmp_path / "agent.safetensors"
    path.write_bytes(saved_agent)
    with pytest.raises(CheckpointError, match="trained on env"):
        TabularQAgent.load(path, env_id=SELECT)
    with pytest.raises(CheckpointError, match="tabular-q"):
        DQNAgent.load(path)


def test_wrong_array_shapes_and_dtypes(tmp_path):
    from agents.checkpoint import write_checkpoint

    config = {"n_states": 3, "n_actions": 2}
    cases = {
        "shape": {"q_table": np.zeros((2, 2)), "visits": np.zeros((3, 2), dtype=np.int64)},
        "nan": {"q_table": np.full((3, 2), np.nan), "visits": np.zeros((3, 2), dtype=np.int64)},
        "strings-ish": {"q_table": np.zeros((3, 2), dtype=np.uint8), "visits": np.zeros((3, 2))},
        "missing": {"q_table": np.zeros((3, 2))},
    }
    for name, arrays in cases.items():
        path = tmp_path / f"{name}.safetensors"
        write_checkpoint(path, agent="tabular-q", env_id=ENV_FOR_AGENT, config=config, arrays=arrays)
        try:
            agent = TabularQAgent.load(path)
        except CheckpointError as error:
            assert str(path) in str(error)
        else:  # loaded: then it must be a usable agent of the declared size
            assert agent.q_table.shape == (3, 2)
            assert name in {"nan", "strings-ish"}


# --------------------------------------------------------------------------- nothing half-written


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp") or p.name.startswith("."))


def small_agent() -> TabularQAgent:
    return TabularQAgent(3, 2)


def test_saving_onto_a_directory_fails_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "agent.safetensors"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(OSError):
        small_agent().save(target, env_id=ENV_FOR_AGENT)
    assert leftovers(tmp_path) == []
    assert (target / "keep").read_text() == "x"


def test_saving_under_a_file_fails_and_leaves_nothing(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(OSError):
        small_agent().save(blocker / "agent.safetensors", env_id=ENV_FOR_AGENT)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-dir"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores directory permissions")
def test_saving_into_a_read_only_directory_fails_and_leaves_nothing(tmp_path):
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(OSError):
            small_agent().save(directory / "agent.safetensors", env_id=ENV_FOR_AGENT)
        assert list(directory.iterdir()) == []
    finally:
        directory.chmod(stat.S_IRWXU)


def test_a_failing_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """A crash while writing (here: fsync fails) leaves the old file intact and no temp file."""
    path = tmp_path / "agent.safetensors"
    first = small_agent()
    first.q_table[:] = 1.0
    first.save(path, env_id=ENV_FOR_AGENT)
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        small_agent().save(path, env_id=ENV_FOR_AGENT)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.safetensors"]


def test_bad_env_id_on_save_writes_nothing(tmp_path):
    with pytest.raises(ValueError):
        small_agent().save(tmp_path / "a.safetensors", env_id="")
    assert list(tmp_path.iterdir()) == []
