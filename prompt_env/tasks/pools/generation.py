"""Pools for generation tasks: QA, summarization, headlines, counting, translation, generic."""

from __future__ import annotations

from prompt_env.tasks.pools.base import PoolText

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
    """A pool for translating single English words into ``language``."""
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


GENERIC_GENERATION = PoolText(
    instructions=(
        "Give the output for the input.",  # the manual prompt is zero-shot: no "examples" to follow
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

