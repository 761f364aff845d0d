"""Pools for the instruction-induction tasks: three task-specific instructions each."""

from __future__ import annotations

import dataclasses

from prompt_env.tasks.pools.base import PoolText
from prompt_env.tasks.pools.generation import GENERIC_GENERATION

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

