"""Documents added later are translated at index time, once, by the configured provider.

The real ChatOpenAI client talks to the local fake OpenAI-compatible server, one sentence
per request. The renderings land in DATA_DIR/translations; a second re-index asks the model
nothing; English questions over the new document are then answered in English, each quote
still tied to its Chinese original. Without a provider nothing is translated.
"""
from __future__ import annotations

import json
import re

import pytest

from fake_openai import FakeOpenAI, Reply
from retrieval.service import KnowledgeBase
from retrieval.translation import plausible
from strategy_bot.settings import Settings

NEW_DOCUMENT = """# 开源许可证的选择

## 宽松许可证

宽松许可证允许企业在闭源产品中使用开源模型。宽松许可证降低了商业化的法律门槛。

## 著作权保留许可证

著作权保留许可证要求衍生作品同样开源。著作权保留许可证会限制闭源商业应用。
"""


@pytest.fixture(scope="module")
def fake_llm():
    server = FakeOpenAI().start()
    yield server
    server.stop()


# What the model renders each unit of NEW_DOCUMENT as (a real rendering: search uses it too).
RENDERINGS = {
    "开源许可证的选择": "Choosing an open-source licence",
    "宽松许可证": "Permissive licences",
    "宽松许可证允许企业在闭源产品中使用开源模型。":
        "Permissive licences allow companies to use open-source models in closed-source products.",
    "宽松许可证降低了商业化的法律门槛。": "Permissive licences lower the legal barrier to commercialisation.",
    "著作权保留许可证": "Copyleft licences",
    "著作权保留许可证要求衍生作品同样开源。": "Copyleft licences require derivative works to be open source too.",
    "著作权保留许可证会限制闭源商业应用。": "Copyleft licences restrict closed-source commercial use.",
}


def english_for(request) -> str:
    """The rendering of the one unit the request asks for (one request per unit)."""
    source = request.message("user")
    return next((english for chinese, english in RENDERINGS.items() if chinese in source and
                 not any(other in source for other in RENDERINGS if other != chinese and chinese in other)),
                f"EN({len(source)}): rendering of sentence {sum(map(ord, source)) % 9973}")


def settings_for(knowledge_copy, data_dir, fake_llm, **extra) -> Settings:
    (knowledge_copy / "licences.md").write_text(NEW_DOCUMENT, encoding="utf-8")
    return Settings(data_dir=data_dir, knowledge_dir=knowledge_copy, llm_provider="openai",
                    llm_base_url=fake_llm.url, llm_model="fake-translator", llm_timeout_s=5.0, **extra)


def test_new_sentences_are_translated_once_and_reused_by_later_reindexes(knowledge_copy, fresh_data_dir, fake_llm):
    fake_llm.respond(english_for)
    kb = KnowledgeBase(settings_for(knowledge_copy, fresh_data_dir, fake_llm))
    summary = kb.reindex()
    asked = [r.message("user") for r in fake_llm.requests]
    assert summary.translated == len(asked) > 0
    assert all(re.search(r"[\u3400-\u9fff]", text) for text in asked)  # only the new document's Chinese
    assert "宽松许可证允许企业在闭源产品中使用开源模型。" in asked  # one sentence per request
    assert not any("闭源模式注重知识产权保护" in text for text in asked)  # the shipped corpus has its TM
    cache = fresh_data_dir / "translations" / "translations.en.jsonl"
    rows = [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines()]
    assert {row["by"] for row in rows} == {"openai:fake-translator"} and len(rows) == len(asked)

    fake_llm.respond(english_for)
    assert kb.reindex().translated == 0 and fake_llm.requests == []  # nothing asked again


def test_an_english_question_over_a_translated_document_is_answered_in_english(knowledge_copy, fresh_data_dir,
                                                                            fake_llm):
    fake_llm.respond(english_for)
    kb = KnowledgeBase(settings_for(knowledge_copy, fresh_data_dir, fake_llm))
    kb.reindex()
    fake_llm.reply()  # the model is not asked at question time: an empty script would answer 500
    answer = kb.ask("宽松许可证允许什么？")
    assert answer.quotes and any(q.text == q.source for q in answer.quotes)  # Chinese question: as written
    settings = Settings(data_dir=fresh_data_dir, knowledge_dir=knowledge_copy)  # no provider at question time
    english = KnowledgeBase(settings).ask("What do permissive licences allow companies to do?")
    assert english.citations[0].title == "开源许可证的选择"  # found through its rendering
    rendered = [q for q in english.quotes if q.text in RENDERINGS.values()]
    assert rendered and all(q.language == "en" and re.search(r"[\u3400-\u9fff]", q.source) for q in rendered)


def test_a_failed_or_implausible_reply_costs_one_sentence_not_the_reindex(knowledge_copy, fresh_data_dir, fake_llm):
    replies = iter([Reply(status=500, error="overloaded"), Reply("这不是翻译"), Reply("")])
    fake_llm.respond(lambda request: next(replies, english_for(request)))
    summary = KnowledgeBase(settings_for(knowledge_copy, fresh_data_dir, fake_llm, llm_max_retries=0)).reindex()
    assert summary.translated == len(fake_llm.requests) - 3 > 0


def test_without_a_provider_nothing_is_translated(knowledge_copy, fresh_data_dir):
    (knowledge_copy / "licences.md").write_text(NEW_DOCUMENT, encoding="utf-8")
    kb = KnowledgeBase(Settings(data_dir=fresh_data_dir, knowledge_dir=knowledge_copy))
    assert kb.reindex().translated == 0
    assert not (fresh_data_dir / "translations" / "translations.en.jsonl").exists()


def test_a_reply_must_look_like_a_translation():
    reply = 'Translation: "Open source lowers costs."'
    assert plausible(reply, "开源降低成本。", "en", 6) == "Open source lowers costs."
    assert plausible("开源降低成本。", "开源降低成本。", "en", 6) is None
    assert plausible("x" * 200, "开源。", "en", 6) is None
    assert plausible("开源降低了成本。", "Open source lowers costs.", "zh", 6) == "开源降低了成本。"
