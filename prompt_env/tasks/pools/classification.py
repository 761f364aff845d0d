"""Pools for classification tasks: sentiment, news topics and a generic one from label names."""

from __future__ import annotations

from collections.abc import Sequence

from prompt_env.tasks.pools.base import PoolText

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

