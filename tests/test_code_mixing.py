"""English questions are embedded with their domain terms in the documents' words.

e5 matches "What are the advantages of a 闭源 model?" to Chinese passages much better than
the all-English question; the glossary (`prompts/glossary_en_zh.yaml`) says which terms.
"""
from __future__ import annotations

import numpy as np
import pytest

from retrieval.crosslingual import CodeMixer

MIXER = CodeMixer({"open source": ["开源"], "closed source": ["闭源"], "proprietary": ["闭源", "专有"],
                   "ip": ["知识产权"], "large language model": ["大语言模型"], "upside": ["优点", "优势"]})


@pytest.mark.parametrize("question, mixed", [
    ("What are the advantages of a closed-source model?", "What are the advantages of a 闭源 model?"),
    ("Should we open source it?", "Should we 开源 it?"),
    ("Open-sourcing or keeping it proprietary?", "开源 or keeping it 闭源?"),
    ("Is our IP safe?", "Is our 知识产权 safe?"),
    ("What are the upsides?", "What are the 优点?"),
    ("Is a large language model different?", "Is a 大语言模型 different?"),
])
def test_glossary_terms_are_written_in_the_documents_words(question, mixed):
    assert MIXER.mix(question) == mixed


@pytest.mark.parametrize("text", ["Send me the zip file", "lorem ipsum", "the sourcing team", "open the door"])
def test_only_whole_terms_are_replaced(text):
    assert MIXER.mix(text) == text


def test_an_english_question_is_searched_as_its_mixed_form(kb):
    question = "What are the advantages of a closed-source model?"
    mixed = kb.mixer.mix(question)
    assert "闭源" in mixed
    vector = kb.search(question).query_vector
    assert np.allclose(vector, kb.embeddings.embed_query_vector(mixed), atol=1e-5)


def test_a_question_in_the_documents_language_is_searched_as_asked(kb):
    question = "闭源模式 (closed source) 有什么缺点？"
    vector = kb.search(question).query_vector
    assert np.allclose(vector, kb.embeddings.embed_query_vector(question), atol=1e-5)
