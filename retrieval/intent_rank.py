"""Bringing up the passage whose list the question asks for.

"What are the main upsides of releasing our model publicly?" asks for a list the documents
wrote ("开源模式 › 优点：1. … 2. … 3. …"), but the words of an English paraphrase sit far from
that list's Chinese words, and a passage that merely talks about open source in general wins
the ranking. The lists carry labels (retrieval/intent.py reads what a question asks for and
about which model), so a passage a little further down whose list is labelled with exactly
what was asked is moved up to `promote_to`: the answer then quotes that list, and the passage
the ranking preferred stays first. Only passages within `depth` move, and only for questions
that ask strongly for a kind of list (advantages, drawbacks, steps, examples, trends; see
`IntentModel.strongly_asked`), never for a definition.
"""
from __future__ import annotations

from dataclasses import replace

from knowledge.lists import list_blocks
from retrieval.intent import Intent, IntentModel
from retrieval.search import Hit, SearchResult


def fits(hit: Hit, intent: Intent, model: IntentModel) -> bool:
    """Whether the passage has a list labelled with the kind asked for (by its labels, lead-in or
    the passage's heading: "3.2 算法步骤详解" heads steps), about the model asked about (or about
    no particular model when the question names none or both)."""
    return any(len(block.items) >= 2 and model.list_answers(f"{hit.chunk.heading} {block.describes()}", intent)
               for block in list_blocks(hit.chunk.text))


def headed(hit: Hit, intent: Intent, model: IntentModel) -> bool:
    """Whether the passage's own heading names a kind only headings name ("8.3 面临的挑战"), and it has
    a list: it is preferred to a passage whose lead-in merely mentions the word ("面对…面临的挑战，
    未来的研究需要…" leads research directions, not challenges)."""
    asked = Intent(intent.kinds & model.heading_kinds, intent.subjects)
    return bool(asked.kinds) and model.list_answers(hit.chunk.heading, asked) \
        and any(len(block.items) >= 2 for block in list_blocks(hit.chunk.text))


def promote_fitting(result: SearchResult, intent: Intent, model: IntentModel, *, depth: int,
                    promote_to: int, keep: int) -> SearchResult:
    """`result` with the best passage within `depth` whose list fits the question moved up to
    place `promote_to` (1-based) when it ranks below it; `keep` hits are returned."""
    hits = result.hits
    if not intent.kinds or "definition" in intent.kinds or promote_to < 1:
        return replace(result, hits=hits[:keep])
    best = next((i for i, hit in enumerate(hits[:depth]) if headed(hit, intent, model)), None)
    if best is None:
        best = next((i for i, hit in enumerate(hits[:depth]) if fits(hit, intent, model)), None)
    if best is None or best < promote_to:
        return replace(result, hits=hits[:keep])
    moved = [*hits[:promote_to - 1], hits[best], *hits[promote_to - 1:best], *hits[best + 1:]]
    return replace(result, hits=moved[:keep])
