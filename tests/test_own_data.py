"""A user's own data: string labels, named columns, label names, directories, saved `datasets`.

The files are written into tmp_path from a few real SST-2 test sentences
(the shared data), converted the way users keep them (string labels, named
columns); one env step runs the real default model on such a file.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import gymnasium as gym
import pytest

import prompt_env  # noqa: F401  (registers the env ids)
from prompt_env.errors import TaskFormatError, UnnamedLabelsWarning
from prompt_env.tasks import load_task, loaders
from prompt_env.tasks.catalog import clear_cache

NAMES = ("negative", "positive")


@pytest.fixture(scope="module")
def sst2_rows(shared_data_dir: Path) -> list[tuple[str, int]]:
    """The first 24 SST-2 test sentences with their integer labels."""
    with open(shared_data_dir / "classification" / "sst-2" / "test.tsv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))[:24]
    return [(r["sentence"], int(r["label"])) for r in rows]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def string_label_jsonl(path: Path, rows: list[tuple[str, int]]) -> Path:
    return write_jsonl(path, [{"text": text, "label": NAMES[label]} for text, label in rows])


def test_string_labels_become_sorted_label_names_and_the_verbalizer(tmp_path, sst2_rows):
    path = string_label_jsonl(tmp_path / "reviews.jsonl", sst2_rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # string labels need no naming: no warning
        task = load_task(path)
    assert task.kind == "classification" and task.label_names == NAMES
    assert task.prompt_pool.manual.verbalizer == NAMES
    gold = dict(sst2_rows)
    for example in task.split("train") + task.split("test"):
        assert NAMES[example.label] == NAMES[gold[example.fields["text"]]]
    # first-seen order is an option; the first row of this file is negative
    shuffled = [{"text": "great", "label": "yes"}, {"text": "bad", "label": "no"},
                {"text": "fine", "label": "yes"}, {"text": "awful", "label": "no"}]
    first_seen = loaders.read_jsonl(write_jsonl(tmp_path / "yn.jsonl", shuffled), label_order="first-seen")
    assert first_seen.label_names == ("yes", "no") and [e.label for e in first_seen.examples] == [0, 1, 0, 1]
    assert loaders.read_jsonl(tmp_path / "yn.jsonl").label_names == ("no", "yes")


def test_integer_labels_warn_unless_named(tmp_path, sst2_rows):
    path = write_jsonl(tmp_path / "ints.jsonl", [{"text": t, "label": y} for t, y in sst2_rows])
    with pytest.warns(UnnamedLabelsWarning, match=r"integers 0\.\.1 without names.*label_names=\[\.\.\.\]"
                      r".*--label-names"):
        task = load_task(path)
    assert task.label_names == ("0", "1")
    clear_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        named = load_task(path, label_names="negative,positive")
    assert named.label_names == NAMES and named.prompt_pool.manual.verbalizer == NAMES
    with pytest.raises(TaskFormatError, match=r"ints\.jsonl line \d+: label 1 in column 'label' has no name: "
                       r"label_names \(--label-names\) lists 1 \(only\) for labels 0\.\.0"):
        load_task(path, label_names=["only"])


def test_one_label_or_a_named_label_no_example_has_is_refused_before_any_call(tmp_path, sst2_rows):
    """All-positive data would "optimize" to a perfect score; a name no example has would
    change every prompt's label list: both name the file and the fix."""
    positives = [(t, 1) for t, y in sst2_rows if y == 1]
    one = string_label_jsonl(tmp_path / "positive.jsonl", positives)
    with pytest.raises(TaskFormatError, match=r"positive\.jsonl: every example has the same label "
                       r"\('positive'\).*at least 2 labels.*--label-field"):
        load_task(one)
    ints = write_jsonl(tmp_path / "ints3.jsonl", [{"text": t, "label": y} for t, y in sst2_rows])
    with pytest.raises(TaskFormatError, match=r"ints3\.jsonl: no example has the label\(s\) 'neutral' "
                       r".*the examples use 'negative', 'positive'.*--label-names"):
        load_task(ints, label_names="negative,positive,neutral")
    gaps = write_jsonl(tmp_path / "gaps.jsonl", [{"text": t, "label": 2 * y} for t, y in sst2_rows])
    with pytest.raises(TaskFormatError, match=r"gaps\.jsonl: no example has the label\(s\) '1' "
                       r"\(the labels are integers.*without gaps"):
        load_task(gaps)
    folder = tmp_path / "split_one_class"
    folder.mkdir()
    string_label_jsonl(folder / "train.jsonl", positives[:6])
    string_label_jsonl(folder / "test.jsonl", positives[6:9])
    with pytest.raises(TaskFormatError, match=r"split_one_class: every example has the same label"):
        load_task(folder)


def test_csv_with_named_columns(tmp_path, sst2_rows):
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "review", "sentiment"])
        for i, (text, label) in enumerate(sst2_rows):
            writer.writerow([i, text, NAMES[label]])
    with pytest.raises(TaskFormatError, match=r"reviews\.csv line 1: header has columns \['id', 'review', "
                                              r"'sentiment'\], but no 'sentence' column; pass input_field="):
        load_task(path)
    task = load_task(path, input_field="review", label_field="sentiment")
    assert task.input_fields == ("review",) and task.label_names == NAMES
    assert "{review}" in task.prompt_pool.manual.template.input_format
    # two input columns become two fields; a bad option names the file and the accepted ones
    both = loaders.read_file(path, input_field="id,review", label_field="sentiment")
    assert both.input_fields == ("id", "review") and both.examples[0].fields["id"] == "0"
    with pytest.raises(TaskFormatError, match=r"reviews\.csv: unknown option 'text_col'; accepted:"):
        loaders.read_file(path, text_col="review")


def test_jsonl_missing_field_names_file_line_and_the_fix(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"review": "ok", "label": "pos"}, {"review": "no"}])
    with pytest.raises(TaskFormatError, match=r"bad\.jsonl line 1: missing field 'text'.*--input-field"):
        load_task(path)
    with pytest.raises(TaskFormatError, match=r"bad\.jsonl line 2: missing field 'label'"):
        loaders.read_jsonl(path, input_field="review")
    with pytest.raises(TaskFormatError, match=r"line 1: the label in field 'label' should be a string"):
        loaders.read_jsonl(write_jsonl(tmp_path / "list.jsonl", [{"text": "a", "label": ["x"]}]))


def test_directory_splits_share_one_set_of_label_names(tmp_path, sst2_rows):
    folder = tmp_path / "mytask"
    folder.mkdir()
    string_label_jsonl(folder / "train.jsonl", sst2_rows[:12])
    # the test split holds one class only: it still maps into the union of the names
    write_jsonl(folder / "test.jsonl", [{"text": "a dull, empty film", "label": "negative"}])
    task = load_task(folder)
    assert task.label_names == NAMES and task.split("test")[0].label == 0
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    string_label_jsonl(mixed / "train.jsonl", sst2_rows[:4])
    write_jsonl(mixed / "test.jsonl", [{"text": "x", "label": 1}])
    with pytest.raises(TaskFormatError, match="label examples differently"):
        load_task(mixed)


def test_saved_datasets_directory(tmp_path, sst2_rows):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=list(NAMES))})
    columns = {"sentence": [t for t, _ in sst2_rows], "label": [y for _, y in sst2_rows]}
    split = datasets.Dataset.from_dict(columns, features=features)
    saved = tmp_path / "sst2_hf"
    datasets.DatasetDict({"train": split.select(range(12)), "validation": split.select(range(12, 16)),
                          "test": split.select(range(16, 24))}).save_to_disk(str(saved))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ClassLabel names: nothing to warn about
        task = load_task(saved)
    assert [len(task.split(s)) for s in ("train", "dev", "test")] == [12, 4, 8]
    assert task.label_names == NAMES and task.input_fields == ("sentence",)
    assert task.split("dev")[0].source == f"{saved}/validation:0"
    # one Dataset with string labels and another input column name is cut like a file
    single = tmp_path / "single_hf"
    datasets.Dataset.from_dict({"review": columns["sentence"],
                                "stars": [NAMES[y] for y in columns["label"]]}).save_to_disk(str(single))
    task = load_task(single, input_field="review", label_field="stars")
    assert task.label_names == NAMES and sum(len(v) for v in task.splits.values()) == 24
    with pytest.raises(TaskFormatError, match=r"single_hf \[all\] row 0: missing field 'text'"):
        load_task(single, label_field="stars", split_seed=1)


def test_file_env_id_runs_the_real_model_on_a_string_label_file(tmp_path, sst2_rows):
    path = string_label_jsonl(tmp_path / "reviews.jsonl", sst2_rows)
    env = gym.make("PromptEnv/File-Select-v0", task=str(path), episode_length=2)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(0)
    assert info["reference"] in NAMES and info["output"] in NAMES and reward in (0.0, 1.0)
    assert env.spec.kwargs["task"] == str(path)
    with pytest.raises(ValueError, match="need task=<path"):
        gym.make("PromptEnv/File-Select-v0")
