"""Prompt pools: the instructions, templates and verbalizers agents choose among.

Every pool here was written for this package. Pools mix strong and weak
parts on purpose (an empty instruction, a misleading one, a verbalizer of
odd words, a bare template), so that choosing well matters.

:func:`build_pool` assembles a :class:`~prompt_env.prompts.PromptPool` for a
task, with a fixed list of ready candidates: ``candidates[0]`` is the manual
prompt (a sensible plain, zero-shot, hand-written prompt), and the rest vary
the instruction, template, verbalizer, exemplars (1-2 train examples) and
chat form. Everything is deterministic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from prompt_env.prompts import Prompt, PromptPool, Template
from prompt_env.tasks.base import Example, TaskKind

_X = "{x}"
"""Stands for the task's single input field in the template texts below."""


@dataclasses.dataclass(frozen=True)
class PoolText:
    """The raw parts of a pool before they are bound to a task's field names."""

    instructions: tuple[str, ...]
    templates: tuple[tuple[str, str, str], ...]
    """(name, input format, answer prefix); ``{x}`` is the single input field."""
    verbalizers: tuple[tuple[str, ...], ...] = ()
    weak_instruction: int = -1
    """Index of the misleading instruction used by one candidate."""


# --------------------------------------------------------------------------- classification

SENTIMENT = PoolText(
    instructions=(
        "Decide whether the movie review is negative or positive.",
        "Is the following review positive or negative? Answer with one word.",
        "Read the sentence and say whether the writer liked the film.",
        "Sentiment analysis: label each review by its overall opinion.",
        "You are a film critic. Judge whether each review is favourable or unfavourable.",
        "",
        "Answer the question.",
        "Count how many words the sentence has.",
    ),
    templates=(
        ("review", "Review: {x}", "Sentiment:"),
        ("sentence", "Sentence: {x}", "Answer:"),
        ("cloze", "{x}", "It was"),
        ("quoted", 'Text: "{x}"', "The opinion in this text is"),
    ),
    verbalizers=(
        ("negative", "positive"),
        ("bad", "good"),
        ("terrible", "great"),
        ("no", "yes"),
    ),
    weak_instruction=7,
)

NEWS_TOPIC = PoolText(
    instructions=(
        "Classify the news article into one of four topics: World, Sports, Business or Technology.",
        "What is this news story about? Answer World, Sports, Business or Technology.",
        "Read the headline and summary, then name the section of the newspaper it belongs to.",
        "Topic classification: give the topic of each news item in one word.",
        "You are a news editor sorting wire stories into world news, sports, business and science.",
        "",
        "Answer the question.",
        "Decide whether the article is positive or negative.",
    ),
    templates=(
        ("article", "Article: {x}", "Topic:"),
        ("news", "News: {x}", "Category:"),
        ("cloze", "{x}", "This story is about"),
        ("question", "{x}\nWhich section does this belong to?", "Answer:"),
    ),
    verbalizers=(
        ("World", "Sports", "Business", "Technology"),
        ("world", "sports", "business", "science"),
        ("politics", "sport", "money", "tech"),
        ("global", "game", "market", "computer"),
    ),
    weak_instruction=7,
)

BBC_TOPIC = PoolText(
    instructions=(
        "Classify the BBC news article as business, entertainment, politics, sport or tech.",
        "Which section of the BBC News website does this article belong to? "
        "Answer business, entertainment, politics, sport or tech.",
        "Read the start of the article and name its topic in one word.",
        "Topic classification: assign each news article to its section.",
        "You are a news editor filing stories under business, entertainment, politics, "
        "sport and technology.",
        "",
        "Answer the question.",
        "Say whether the article is good news or bad news.",
    ),
    templates=(
        ("article", "Article: {x}", "Topic:"),
        ("news", "News: {x}", "Section:"),
        ("cloze", "{x}", "This article is about"),
        ("question", "{x}\nWhat is the topic of this article?", "Answer:"),
    ),
    verbalizers=(
        ("business", "entertainment", "politics", "sport", "tech"),
        ("Business", "Entertainment", "Politics", "Sports", "Technology"),
        ("economy", "music", "government", "football", "computers"),
        ("money", "fun", "power", "games", "gadgets"),
    ),
    weak_instruction=7,
)


def generic_classification(label_names: Sequence[str]) -> PoolText:
    """A pool for a user's classification task, built from its label names."""
    names = [str(n) for n in label_names]
    listed = ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1]
    letters = tuple(chr(ord("A") + i) for i in range(len(names)))
    return PoolText(
        instructions=(
            f"Classify the text as {listed}.",
            f"Which label fits the text best: {listed}? Answer with one word.",
            "Read the text and choose the right category.",
            "Label each input with its class.",
            f"You are an expert annotator. Possible labels: {listed}.",
            "",
            "Answer the question.",
            "Translate the text into French.",
        ),
        templates=(
            ("text", "Text: {x}", "Label:"),
            ("input", "Input: {x}", "Answer:"),
            ("cloze", "{x}", "Category:"),
            ("question", "{x}\nWhich class is this?", "Answer:"),
        ),
        verbalizers=(
            tuple(names),
            tuple(n.capitalize() if n.islower() else n.lower() for n in names),
            letters,
        ),
        weak_instruction=7,
    )


# --------------------------------------------------------------------------- generation

QA = PoolText(
    instructions=(
        "Answer the question with a short span copied from the context.",
        "Read the passage and answer the question in a few words.",
        "Find the answer to the question in the text. Reply with the answer only.",
        "You are a careful reader. Give the exact phrase from the passage that answers the question.",
        "",
        "Summarize the passage.",
    ),
    templates=(
        ("context-question", "Context: {context}\nQuestion: {question}", "Answer:"),
        ("qa", "{context}\n\nQ: {question}", "A:"),
        ("passage", "Passage: {context}\nQuestion: {question}", "Short answer:"),
    ),
    weak_instruction=5,
)

SUMMARIZATION = PoolText(
    instructions=(
        "Summarize the article in one sentence.",
        "Write a single-sentence summary of the news story.",
        "What is the main point of this article? Answer in one sentence.",
        "You are a news editor. Write the one-line summary that goes under the headline.",
        "",
        "List the names mentioned in the article.",
    ),
    templates=(
        ("article", "Article: {x}", "Summary:"),
        ("tldr", "{x}", "TL;DR:"),
        ("text", "Text: {x}", "One-sentence summary:"),
    ),
    weak_instruction=5,
)

HEADLINE = PoolText(
    instructions=(
        "Write the headline of the news article.",
        "Give this BBC news story a short title.",
        "What headline would a newspaper print above this article?",
        "You are a sub-editor. Write a headline of at most eight words for the story.",
        "",
        "Translate the article into German.",
    ),
    templates=(
        ("article", "Article: {x}", "Headline:"),
        ("title", "{x}", "Title:"),
        ("story", "News story: {x}", "Headline for this story:"),
    ),
    weak_instruction=5,
)

COUNTING = PoolText(
    instructions=(
        "Count the objects and answer with a number.",
        "How many items are there in total? Reply with the number only.",
        "Add up the things listed in the question and give the total.",
        "You are good at arithmetic. Count carefully, then answer with one number.",
        "",
        "Name the largest object in the list.",
    ),
    templates=(
        ("question", "Question: {x}", "Answer:"),
        ("qa", "Q: {x}", "A:"),
        ("bare", "{x}", "The total is"),
    ),
    weak_instruction=5,
)


def translation(language: str) -> PoolText:
    return PoolText(
        instructions=(
            f"Translate the English word into {language}.",
            f"Give the {language} word for each English word.",
            f"What is this word in {language}? Answer with one word.",
            f"You are a bilingual dictionary from English to {language}.",
            "",
            "Give a word that rhymes with the input.",
        ),
        templates=(
            ("english", "English: {x}", f"{language}:"),
            ("word", "Word: {x}", "Translation:"),
            ("bare", "{x}", f"In {language}:"),
        ),
        weak_instruction=5,
    )


# Task-specific instructions for the instruction-induction tasks (three each).
INDUCTION_INSTRUCTIONS: dict[str, tuple[str, str, str]] = {
    "active_to_passive": (
        "Rewrite the sentence in the passive voice.",
        "Turn the active sentence into a passive one with the same meaning.",
        "Make the object of the sentence its subject.",
    ),
    "antonyms": (
        "Write a word that means the opposite of the input word.",
        "Give the antonym of the word.",
        "What is the opposite of this word?",
    ),
    "cause_and_effect": (
        "Of the two sentences, write the one that describes the cause.",
        "One sentence caused the other. Repeat the sentence that is the cause.",
        "Which event happened first and led to the other? Copy that sentence.",
    ),
    "common_concept": (
        "Say what all the listed things have in common.",
        "Find the property shared by every item in the list.",
        "Complete: all of these things ...",
    ),
    "diff": (
        "Subtract the second number from the first.",
        "Compute the difference of the two numbers.",
        "What is the first number minus the second?",
    ),
    "first_word_letter": (
        "Write the first letter of the word.",
        "Which letter does the word start with?",
        "Give the initial letter of the input.",
    ),
    "informal_to_formal": (
        "Rewrite the sentence in a formal register.",
        "Make the informal sentence polite and formal.",
        "Say the same thing as a formal letter would.",
    ),
    "larger_animal": (
        "Write the name of the larger of the two animals.",
        "Which animal is bigger? Answer with its name.",
        "Choose the animal with the greater body size.",
    ),
    "letters_list": (
        "Spell the word with a space between letters.",
        "Write out the letters of the word separated by spaces.",
        "Split the word into its letters.",
    ),
    "negation": (
        "Negate the sentence.",
        "Rewrite the sentence so that it says the opposite, by adding 'not'.",
        "Make the statement false by negating its verb.",
    ),
    "num_to_verbal": (
        "Write the number in English words.",
        "Spell out the number.",
        "How do you say this number in words?",
    ),
    "orthography_starts_with": (
        "List the words of the sentence that start with the letter in brackets.",
        "Copy every word beginning with the given letter.",
        "Which words in the sentence begin with the bracketed letter?",
    ),
    "rhymes": (
        "Write a word that rhymes with the input word.",
        "Give a rhyme for the word.",
        "Which word sounds like the end of this word?",
    ),
    "second_word_letter": (
        "Write the second letter of the word.",
        "Which letter comes second in the word?",
        "Give the letter in position two of the input.",
    ),
    "sentence_similarity": (
        "Rate how similar the two sentences are, from 0 - definitely not to 5 - perfectly.",
        "Do the two sentences mean the same thing? Give a score from 0 to 5.",
        "Judge the semantic similarity of the sentence pair.",
    ),
    "sentiment": (
        "Say whether the review is positive or negative.",
        "Classify the sentiment of the sentence as positive or negative.",
        "Did the writer like the film? Answer positive or negative.",
    ),
    "singular_to_plural": (
        "Write the plural form of the noun.",
        "Turn the singular word into its plural.",
        "What is the plural of this word?",
    ),
    "sum": (
        "Add the two numbers.",
        "Compute the sum of the two numbers.",
        "What do the two numbers add up to?",
    ),
    "synonyms": (
        "Write a word with the same meaning as the input word.",
        "Give a synonym of the word.",
        "Which other word means the same thing?",
    ),
    "taxonomy_animal": (
        "List the animals among the words.",
        "Copy only the words that name animals.",
        "Which of these things are animals?",
    ),
    "word_in_context": (
        "Is the word used with the same meaning in both sentences? Answer same or not the same.",
        "Decide whether the given word means the same thing in the two sentences.",
        "Compare the meaning of the word in sentence 1 and sentence 2.",
    ),
}

GENERIC_GENERATION = PoolText(
    instructions=(
        "Follow the pattern of the examples and give the output for the input.",
        "Answer briefly.",
        "Transform the input as the task requires.",
        "You are a helpful assistant. Reply with the answer only.",
        "",
        "Repeat the input backwards.",
    ),
    templates=(
        ("input-output", "Input: {x}", "Output:"),
        ("qa", "Q: {x}", "A:"),
        ("bare", "{x}", "Answer:"),
    ),
    weak_instruction=5,
)


def induction(task: str) -> PoolText:
    """Instruction-induction pool: three task-specific instructions plus generic and weak ones."""
    specific = INDUCTION_INSTRUCTIONS.get(task)
    if specific is None:
        return GENERIC_GENERATION
    return dataclasses.replace(
        GENERIC_GENERATION,
        instructions=(*specific, "Answer briefly.", "", "Repeat the input backwards."),
        weak_instruction=5,
    )


# --------------------------------------------------------------------------- assembly


def _bind_templates(text: PoolText, input_fields: Sequence[str]) -> tuple[Template, ...]:
    fields = tuple(input_fields)
    templates = []
    for name, input_format, answer_prefix in text.templates:
        if _X in input_format:
            if len(fields) == 1:
                input_format = input_format.replace(_X, "{" + fields[0] + "}")
            else:
                listed = "\n".join(f"{f.capitalize()}: {{{f}}}" for f in fields)
                input_format = input_format.replace(_X, listed)
        templates.append(Template(name=name, input_format=input_format, answer_prefix=answer_prefix))
    return tuple(templates)


def _short_exemplars(train: Sequence[Example], count: int, window: int = 16) -> list[int]:
    """Indices of the ``count`` shortest examples among the first ``window`` train examples."""
    head = list(range(min(window, len(train))))
    head.sort(key=lambda i: (len(train[i].text) + len(train[i].reference), i))
    return head[:count]


def _balanced_exemplars(train: Sequence[Example], count: int, window: int = 64) -> list[int]:
    """One short example per label (labels in order), at most ``count``."""
    chosen = []
    for label in sorted({e.label for e in train[:window] if e.label is not None}):
        same = [i for i in range(min(window, len(train))) if train[i].label == label]
        same.sort(key=lambda i: (len(train[i].text), i))
        chosen.append(same[0])
        if len(chosen) == count:
            break
    return chosen


def build_pool(
    text: PoolText,
    *,
    kind: TaskKind,
    input_fields: Sequence[str],
    train: Sequence[Example],
    max_exemplars: int = 2,
) -> PromptPool:
    """Bind ``text`` to a task's fields and build the fixed candidate list.

    Classification gives 11 candidates, generation 8 (fewer exemplar variants
    when the train split is empty). ``max_exemplars`` caps the shots of any
    candidate (1 keeps long-document prompts short).
    """
    templates = _bind_templates(text, input_fields)
    instr = text.instructions
    weak = instr[text.weak_instruction]
    empty = ""
    if kind == "classification":
        pick = _balanced_exemplars
        verbs = text.verbalizers
        if len(verbs) < 3:
            raise ValueError("a classification pool needs at least three verbalizers")
        plan = [
            ("manual", instr[0], 0, 0, 0, False),
            ("alt-instruction", instr[1], 1, 0, 0, False),
            ("cloze", instr[2], 2, 2, 0, False),
            ("alt-verbalizer", instr[3], 3, 1, 0, False),
            ("no-instruction", empty, 0, 0, 0, False),
            ("misleading", weak, 0, 0, 0, False),
            ("one-shot", instr[0], 0, 0, 1, False),
            ("two-shot", instr[1], 1, 1, 2, False),
            ("chat", instr[0], 0, 0, 0, True),
            ("chat-one-shot", instr[4], 1, 2, 1, True),
            ("odd-verbalizer", instr[-2], 0, len(verbs) - 1, 0, False),
        ]
    else:
        pick = _short_exemplars
        verbs = ()
        plan = [
            ("manual", instr[0], 0, None, 0, False),
            ("alt-instruction", instr[1], 1, None, 0, False),
            ("alt-template", instr[2], 2, None, 0, False),
            ("no-instruction", empty, 0, None, 0, False),
            ("misleading", weak, 0, None, 0, False),
            ("one-shot", instr[0], 0, None, 1, False),
            ("two-shot", instr[3], 1, None, 2, False),
            ("chat", instr[0], 0, None, 0, True),
        ]
    candidates = []
    for name, instruction, template, verbalizer, shots, chat in plan:
        shots = min(shots, max_exemplars)
        exemplars = tuple(pick(train, shots)) if shots else ()
        if shots and len(exemplars) < shots:
            continue  # not enough train examples for this variant
        candidates.append(
            Prompt(
                instruction=instruction,
                template=templates[template],
                exemplars=exemplars,
                verbalizer=verbs[verbalizer] if verbalizer is not None else None,
                chat=chat,
                name=name,
            )
        )
    return PromptPool(
        instructions=tuple(instr),
        templates=templates,
        verbalizers=tuple(verbs),
        candidates=tuple(candidates),
    )
