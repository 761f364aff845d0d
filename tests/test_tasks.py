"""Loaders, the catalog and task metadata."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from prompt_env.errors import (
    DataNotFoundError,
    TaskFormatError,
    UnknownTaskError,
    UnnamedLabelsWarning,
)
from prompt_env.tasks import catalog_entries, list_tasks, load_task, loaders
from prompt_env.tasks.catalog import TASK_CATALOG, clear_cache


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in records))


# --------------------------------------------------------------------------- TSV / CSV


def test_tsv_reads_rows_with_sources(tmp_path: Path) -> None:
    path = write(tmp_path / "train.tsv", 'sentence\tlabel\na "fine" film {x}\t1\ndull\t0\n')
    loaded = loaders.read_delimited(path, label_names=("negative", "positive"))
    assert [e.fields["sentence"] for e in loaded.examples] == ['a "fine" film {x}', "dull"]
    assert [e.label for e in loaded.examples] == [1, 0]
    assert loaded.examples[1].source == f"{path}:3"
    assert loaded.label_names == ("negative", "positive")
    assert loaded.kind == "classification"


def test_tsv_wrong_column_count_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "train.tsv", "sentence\tlabel\n" + "ok\t1\n" * 15 + "missing label\n")
    with pytest.raises(TaskFormatError) as info:
        loaders.read_delimited(path)
    assert str(info.value) == (
        f"{path} line 17: expected 2 tab-separated columns (sentence, label), found 1"
    )


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("good\tpositive", "line 2: label 'positive' in column 'label' is not an integer or one of "
                            "label_names ['no', 'yes']"),
        ("good\t2", "line 2: label 2 in column 'label' has no name: label_names (--label-names) "
                     "lists 2 (no, yes) for labels 0..1; give one name per label, in label order"),
        ("good\t-1", "line 2: label -1 in column 'label' is negative; class indices run 0..K-1"),
    ],
)
def test_tsv_bad_labels(tmp_path: Path, row: str, message: str) -> None:
    path = write(tmp_path / "t.tsv", f"sentence\tlabel\n{row}\n")
    with pytest.raises(TaskFormatError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        loaders.read_delimited(path, label_names=("no", "yes") if "-1" not in row else None)


def test_tsv_label_by_name_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "t.tsv", "sentence\tlabel\ngood\tyes\n")
    assert loaders.read_delimited(path, label_names=("no", "yes")).examples[0].label == 1


def test_tsv_empty_and_header_only(tmp_path: Path) -> None:
    with pytest.raises(TaskFormatError, match="is empty"):
        loaders.read_delimited(write(tmp_path / "a.tsv", ""))
    with pytest.raises(TaskFormatError, match="no example rows"):
        loaders.read_delimited(write(tmp_path / "b.tsv", "sentence\tlabel\n"))


def test_tsv_missing_column_and_custom_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "t.tsv", "review\tstars\ngreat\t1\n")
    with pytest.raises(TaskFormatError, match="no 'sentence' column"):
        loaders.read_delimited(path)
    loaded = loaders.read_delimited(path, text_column="review", label_column="stars")
    assert loaded.examples[0].fields == {"review": "great"}
    assert loaded.label_names == ("0", "1")


def test_csv_with_quotes(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", 'text,label\n"hello, world",0\n"multi\nline",1\nlast,0\n')
    loaded = loaders.read_delimited(path)
    assert [e.fields["text"] for e in loaded.examples] == ["hello, world", "multi\nline", "last"]
    assert loaded.examples[2].source.endswith(":5")
    bad = write(tmp_path / "bad.csv", "text,label\nonly\n")
    with pytest.raises(TaskFormatError, match=r"line 2: expected 2 ','-separated columns"):
        loaders.read_delimited(bad)


def test_bad_encoding_names_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_bytes(b"sentence\tlabel\ncaf\xe9\t1\n")
    with pytest.raises(TaskFormatError) as info:
        loaders.read_delimited(path)
    assert str(path) in str(info.value)
    assert "line 2" in str(info.value) and "byte offset 18" in str(info.value)


def test_missing_file_is_data_not_found(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError):
        loaders.read_delimited(tmp_path / "nope.tsv")


# --------------------------------------------------------------------------- JSONL


def test_jsonl_qa_and_summarization(tmp_path: Path) -> None:
    qa = write_jsonl(tmp_path / "qa.jsonl", [
        {"context": "Paris is in France.", "question": "Where is Paris?", "answers": ["France", "France"]},
    ])
    loaded = loaders.read_jsonl(qa)
    assert loaded.family == "qa" and loaded.input_fields == ("context", "question")
    assert loaded.examples[0].references == ("France",)
    assert loaded.examples[0].source == f"{qa}:1"
    summ = write_jsonl(tmp_path / "s.jsonl", [{"document": "Long text.", "summary": "Short."}])
    loaded = loaders.read_jsonl(summ)
    assert loaded.family == "summarization" and loaded.metric == "rouge_l"
    assert loaded.examples[0].references == ("Short.",)


def test_jsonl_classification_and_custom_fields(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": "nice", "label": 1}, {"text": "bad", "label": 0}])
    loaded = loaders.read_jsonl(path, label_names=("neg", "pos"))
    assert [e.label for e in loaded.examples] == [1, 0]
    gen = write_jsonl(tmp_path / "g.jsonl", [{"q": "2+2", "a": "4"}])
    loaded = loaders.read_jsonl(gen, format="generation", input_fields=["q"], reference_field="a")
    assert loaded.examples[0].fields == {"q": "2+2"} and loaded.examples[0].references == ("4",)


def test_jsonl_errors(tmp_path: Path) -> None:
    bad_json = write(tmp_path / "a.jsonl", '{"document": "x", "summary": "y"}\n{"document": \n')
    with pytest.raises(TaskFormatError, match=r"a.jsonl line 2: invalid JSON"):
        loaders.read_jsonl(bad_json)
    missing = write_jsonl(tmp_path / "b.jsonl", [
        {"context": "c", "question": "q", "answers": ["a"]}, {"context": "c", "answers": ["a"]},
    ])
    with pytest.raises(TaskFormatError, match=r"b.jsonl line 2: missing field 'question'"):
        loaders.read_jsonl(missing)
    with pytest.raises(TaskFormatError, match="is empty"):
        loaders.read_jsonl(write(tmp_path / "c.jsonl", "\n"))
    with pytest.raises(TaskFormatError, match="cannot tell the format"):
        loaders.read_jsonl(write_jsonl(tmp_path / "d.jsonl", [{"foo": 1}]))
    with pytest.raises(TaskFormatError, match="line 1: expected a JSON object"):
        loaders.read_jsonl(write(tmp_path / "e.jsonl", "[1, 2]\n"))
    with pytest.raises(TaskFormatError, match="empty list"):
        loaders.read_jsonl(write_jsonl(tmp_path / "f.jsonl", [{"document": "d", "summary": []}]))


# --------------------------------------------------------------------------- BIG-bench


def test_bigbench_jsonl_targets(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bb.jsonl", [
        {"input": "I have a cat. How many?", "target": ["one", "1"]},
        {"input": "I have two dogs. How many?", "target": "2"},
    ])
    loaded = loaders.read_jsonl(path)
    assert loaded.kind == "generation"
    assert [e.references for e in loaded.examples] == [("one", "1"), ("2",)]


def test_bigbench_target_scores_fixed_choices_is_classification(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bb.jsonl", [
        {"input": "Is fire hot?", "target_scores": {"no": 0, "yes": 1}},
        {"input": "Is ice hot?", "target_scores": {"no": 1, "yes": 0}},
    ])
    loaded = loaders.read_jsonl(path)
    assert loaded.kind == "classification" and loaded.label_names == ("no", "yes")
    assert [e.label for e in loaded.examples] == [1, 0]


def test_bigbench_target_scores_varying_choices_is_generation(tmp_path: Path) -> None:
    path = write(tmp_path / "task.json", json.dumps({"examples": [
        {"input": "Pick a red fruit", "target_scores": {"apple": 1, "banana": 0, "cherry": 1}},
        {"input": "Pick a yellow fruit", "target_scores": {"lemon": 1, "plum": 0}},
    ]}))
    loaded = loaders.read_file(path)
    assert loaded.kind == "generation"
    assert loaded.examples[0].references == ("apple", "cherry")
    assert loaded.examples[1].source == f"{path}:2"


def test_bigbench_task_json_errors(tmp_path: Path) -> None:
    with pytest.raises(TaskFormatError, match=r"example 2: missing field 'input'"):
        loaders.read_bigbench_json(write(tmp_path / "a.json", json.dumps(
            {"examples": [{"input": "x", "target": "y"}, {"target": "y"}]})))
    with pytest.raises(TaskFormatError, match=r"example 1: needs 'target' or 'target_scores'"):
        loaders.read_bigbench_json(write(tmp_path / "b.json", json.dumps({"examples": [{"input": "x"}]})))
    with pytest.raises(TaskFormatError, match=r"c.json line 3: invalid JSON"):
        loaders.read_bigbench_json(write(tmp_path / "c.json", '{"examples": [\n{"input": 1,\n]}'))
    with pytest.raises(TaskFormatError, match="'examples' is empty"):
        loaders.read_bigbench_json(write(tmp_path / "d.json", '{"examples": []}'))


# --------------------------------------------------------------------------- instruction induction


def test_instruction_induction_formats(tmp_path: Path) -> None:
    plain = write(tmp_path / "antonyms.json", json.dumps({"examples": {
        "1": {"input": "hot", "output": "cold"},
        "2": {"input": "word", "output": "mot", "possible_translations": ["parole", "mot"]},
    }}))
    loaded = loaders.read_file(plain)
    assert loaded.examples[0].references == ("cold",)
    assert loaded.examples[1].references == ("mot", "parole")
    assert loaded.examples[1].source == f"{plain}:2"
    cause = write(tmp_path / "cause.json", json.dumps({"examples": {
        "1": {"cause": "It rained.", "effect": "The ground got wet."},
        "2": {"cause": "He fell.", "effect": "He cried."},
    }}))
    first, second = loaders.read_instruction_induction(cause).examples
    assert first.fields["input"] == "Sentence 1: It rained. Sentence 2: The ground got wet."
    assert second.fields["input"] == "Sentence 1: He cried. Sentence 2: He fell."
    assert first.references == ("It rained.",) and second.references == ("He fell.",)
    concept = write(tmp_path / "concept.json", json.dumps({"examples": {
        "1": {"concept": "are round.", "items": ["balls", "planets"], "all_common_concepts": ["are round."]},
    }}))
    example = loaders.read_instruction_induction(concept).examples[0]
    assert example.fields["input"] == "balls, planets" and example.references == ("are round.",)


def test_instruction_induction_errors(tmp_path: Path) -> None:
    with pytest.raises(TaskFormatError, match=r"example 7: missing field 'output'"):
        loaders.read_instruction_induction(write(tmp_path / "a.json", json.dumps(
            {"examples": {"7": {"input": "x"}}})))
    with pytest.raises(TaskFormatError, match="'examples' object keyed by number"):
        loaders.read_instruction_induction(write(tmp_path / "b.json", '{"data": []}'))
    with pytest.raises(TaskFormatError, match="is empty"):
        loaders.read_instruction_induction(write(tmp_path / "c.json", "  "))


def test_hf_datasets_absent_gives_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if it were not installed
    with pytest.raises(DataNotFoundError, match="export the split to TSV/CSV/JSONL"):
        loaders.read_hf_dataset("sst2", "train")
    (tmp_path / "dataset_dict.json").write_text('{"splits": ["train"]}')
    with pytest.raises(DataNotFoundError, match=r"datasets directory; reading it needs .*prompt-env\[hf\]"):
        load_task(tmp_path)


def test_unsupported_suffix(tmp_path: Path) -> None:
    with pytest.raises(TaskFormatError, match="unsupported file type .xml"):
        loaders.read_file(write(tmp_path / "a.xml", "<a/>"))


# --------------------------------------------------------------------------- catalog


def test_catalog_metadata_without_data() -> None:
    entries = {e.name: e for e in catalog_entries()}
    assert entries["sst2"].env_name == "SST2" and entries["sst2"].kind == "classification"
    assert entries["agnews"].env_name == "AGNews"
    assert entries["bbc-topic"].env_name == "BBCTopic" and not entries["bbc-topic"].needs_data_dir
    assert entries["bbc-headline"].env_name == "BBCHeadline" and entries["bbc-headline"].kind == "generation"
    assert entries["squad"].env_name == "SQuAD" and entries["squad"].family == "qa"
    assert entries["xsum"].env_name == "XSum"
    assert entries["object-counting"].env_name == "ObjectCounting"
    assert entries["ii-antonyms"].env_name == "IIAntonyms"
    assert entries["ii-translation_en-de"].env_name == "IITranslationEnDe"
    assert entries["ii-translation_en-de"].family == "translation"
    assert entries["ii-cause_and_effect"].env_name == "IICauseAndEffect"
    assert len({e.env_name for e in entries.values()}) == len(entries)
    assert list_tasks() == list(TASK_CATALOG)
    assert len([n for n in list_tasks() if n.startswith("ii-")]) == 24


def test_unknown_task_lists_known_ones() -> None:
    with pytest.raises(UnknownTaskError) as info:
        load_task("sst3")
    assert "sst2" in str(info.value) and "bbc-topic" in str(info.value)


def test_data_dir_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMPT_ENV_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match="set PROMPT_ENV_DATA"):
        load_task("sst2")


def test_bbc_topic_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMPT_ENV_DATA", raising=False)
    task = load_task("bbc-topic")
    assert task.label_names == ("business", "entertainment", "politics", "sport", "tech")
    assert [len(task.split(s)) for s in ("train", "dev", "test")] == [25, 40, 200]
    assert sorted(e.label for e in task.split("train")) == [i for i in range(5) for _ in range(5)]
    sources = [e.source for s in task.splits.values() for e in s]
    assert len(set(sources)) == len(sources)  # splits are disjoint
    assert all(len(e.text.split()) < 100 for e in task.split("test"))
    again = load_task("bbc-topic")
    assert [e.source for e in again.split("test")] == [e.source for e in task.split("test")]
    small = load_task("bbc-topic", n_dev=10, n_test=20)
    assert [len(small.split(s)) for s in ("dev", "test")] == [10, 20]


def test_bbc_headline_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMPT_ENV_DATA", raising=False)
    task = load_task("bbc-headline")
    assert task.kind == "generation" and task.metric == "rouge_l"
    assert [len(task.split(s)) for s in ("train", "dev", "test")] == [16, 50, 200]
    example = task.split("test")[0]
    assert example.references and example.reference not in example.fields["text"][:20]


def test_cache_returns_fresh_task_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMPT_ENV_DATA", raising=False)
    first = load_task("bbc-topic")
    first.splits["test"].clear()
    assert len(load_task("bbc-topic").split("test")) == 200


def test_sst2_and_agnews_sizes(shared_data_dir: Path) -> None:
    sst2 = load_task("sst2", data_dir=shared_data_dir)
    assert [len(sst2.split(s)) for s in ("train", "dev", "test")] == [32, 32, 1821]
    assert sst2.label_names == ("negative", "positive")
    agnews = load_task("agnews", data_dir=shared_data_dir)
    assert [len(agnews.split(s)) for s in ("train", "dev", "test")] == [64, 64, 7600]
    assert agnews.label_names == ("World", "Sports", "Business", "Sci-Tech")
    other = load_task("sst2", data_dir=shared_data_dir, few_shot_seed=13)
    assert other.split("train") != sst2.split("train")
    assert other.split("test") == sst2.split("test")


def test_other_catalog_tasks(shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPT_ENV_DATA", str(shared_data_dir))
    squad = load_task("squad")
    assert [len(squad.split(s)) for s in ("train", "dev", "test")] == [32, 32, 136]
    assert squad.family == "qa" and squad.input_fields == ("context", "question")
    xsum = load_task("xsum")
    assert sum(len(v) for v in xsum.splits.values()) == 100
    counting = load_task("object-counting")
    assert counting.split("test")[0].references  # aliases such as ("nine", "9")
    antonyms = load_task("ii-antonyms")
    assert len(antonyms.split("dev")) + len(antonyms.split("test")) == 100
    assert "opposite" in antonyms.prompt_pool.manual.instruction
    german = load_task("ii-translation_en-de")
    assert german.family == "translation" and "German" in german.prompt_pool.manual.instruction
    assert load_task("ii-cause_and_effect").split("dev")


def test_load_file_and_directory(tmp_path: Path) -> None:
    rows = "".join(f"sentence {i}\t{i % 2}\n" for i in range(20))
    single = write(tmp_path / "mine.tsv", "sentence\tlabel\n" + rows)
    task = load_task(str(single), label_names=["bad", "good"])
    assert task.name == "mine" and task.label_names == ("bad", "good")
    assert sum(len(v) for v in task.splits.values()) == 20 and all(task.splits.values())
    folder = tmp_path / "mytask"
    folder.mkdir()
    write(folder / "train.tsv", "sentence\tlabel\n" + rows)
    write(folder / "validation.tsv", "sentence\tlabel\nok\t1\n")
    write(folder / "test.tsv", "sentence\tlabel\nfine\t0\n")
    with pytest.warns(UnnamedLabelsWarning, match="integers 0..1 without names"):
        task = load_task(folder)
    assert [len(task.split(s)) for s in ("train", "dev", "test")] == [20, 1, 1]
    with pytest.raises(DataNotFoundError, match="no such file"):
        load_task(str(tmp_path / "missing.tsv"))
    clear_cache()
