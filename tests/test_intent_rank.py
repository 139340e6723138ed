"""Moving up the passage whose list the question asks for (retrieval/intent_rank.py), on hand-made hits."""
from __future__ import annotations

import numpy as np

from knowledge.chunking import Chunk
from retrieval.intent import Intent, load_intents
from retrieval.intent_rank import fits, promote_fitting
from retrieval.search import Hit, SearchResult

CLOSED_DRAWBACKS = ("**闭源模式**：\n\n**缺点**：\n"
                    "1. **透明性**：闭源模型缺乏透明度。\n2. **创新激励**：创新动力不足。\n")
OPEN_DRAWBACKS = "**开源模式**：\n\n**缺点**：\n1. **知识产权保护**：难以控制。\n2. **成本控制**：成本高。\n"
PLAIN = "开源与闭源各有利弊，企业应根据需求选择。"


def hit(position: int, text: str) -> Hit:
    chunk = Chunk(chunk_id=f"c{position}", doc_id="d", title="t", section=f"s{position}", text=text, ordinal=position)
    return Hit(position=position, chunk=chunk, score=1.0 / (position + 1), dense=0.5, lexical=0.0)


def result(*texts: str) -> SearchResult:
    return SearchResult(hits=[hit(i, t) for i, t in enumerate(texts)], query_vector=np.zeros(4),
                        best_dense=0.5, best_background=0.1, coverage=1.0)


DRAWBACKS_OF_CLOSED = Intent(frozenset({"drawbacks"}), frozenset({"closed"}))


def sections(found: SearchResult) -> list[str]:
    return [h.chunk.section for h in found.hits]


def test_a_list_fits_when_labelled_with_the_kind_and_the_model_asked_about():
    model = load_intents()
    assert fits(hit(0, CLOSED_DRAWBACKS), DRAWBACKS_OF_CLOSED, model)
    assert not fits(hit(0, OPEN_DRAWBACKS), DRAWBACKS_OF_CLOSED, model)  # the other model's drawbacks
    assert not fits(hit(0, CLOSED_DRAWBACKS), Intent(frozenset({"advantages"}), frozenset({"closed"})), model)
    assert not fits(hit(0, PLAIN), DRAWBACKS_OF_CLOSED, model)


def test_the_fitting_passage_moves_up_to_its_place_and_the_best_hit_stays_first():
    found = result(PLAIN, PLAIN, OPEN_DRAWBACKS, PLAIN, PLAIN, PLAIN, CLOSED_DRAWBACKS)
    moved = promote_fitting(found, DRAWBACKS_OF_CLOSED, load_intents(), depth=10, promote_to=3, keep=5)
    assert sections(moved) == ["s0", "s1", "s6", "s2", "s3"]


def test_nothing_moves_for_a_definition_beyond_the_depth_or_already_high_enough():
    model = load_intents()
    found = result(PLAIN, PLAIN, PLAIN, PLAIN, PLAIN, PLAIN, CLOSED_DRAWBACKS)
    expected = ["s0", "s1", "s2", "s3", "s4"]
    definition = Intent(frozenset({"definition"}), frozenset({"closed"}))
    assert sections(promote_fitting(found, definition, model, depth=10, promote_to=3, keep=5)) == expected
    assert sections(promote_fitting(found, DRAWBACKS_OF_CLOSED, model, depth=5, promote_to=3, keep=5)) == expected
    assert sections(promote_fitting(found, DRAWBACKS_OF_CLOSED, model, depth=10, promote_to=0, keep=5)) == expected
    high = result(PLAIN, CLOSED_DRAWBACKS, PLAIN, PLAIN)
    assert sections(promote_fitting(high, DRAWBACKS_OF_CLOSED, model, depth=10, promote_to=3, keep=5)) \
        == ["s0", "s1", "s2", "s3"]
