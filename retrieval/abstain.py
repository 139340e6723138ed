"""Declining questions the documents don't cover.

Raw cosine scores from e5 do not separate on- and off-topic questions here (both
tops sit around 0.75-0.85). What does: compare the best knowledge-base score with
the best score against a broad background set of everyday, workplace and
technology sentences (`prompts/offtopic_background.txt`). A question closer to
"how do I reset my VPN password" than to any passage is not one the documents answer.

The knowledge-base score is the best of three views: chunks, their sentences, and
their English glosses. A question in another language than the documents still
scores lower against them than against same-language background sentences, so
cross-lingual questions get their own (lower) margin.
"""
from __future__ import annotations

from retrieval.search import SearchResult


def margin(result: SearchResult) -> float:
    """How much closer the question is to the documents than to everyday topics."""
    return result.best_dense - result.best_background


def should_decline(result: SearchResult, same_language_margin: float, cross_lingual_margin: float,
                   cross_lingual: bool) -> bool:
    """True when the background set explains the question about as well as the documents."""
    if not result.hits:
        return True
    return margin(result) < (cross_lingual_margin if cross_lingual else same_language_margin)
