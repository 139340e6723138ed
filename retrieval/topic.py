"""What a question is about besides the kind of answer and the model it names.

"For a personalised recommendation engine, what does going open source buy us?" asks for
advantages of open source (retrieval/intent.py), but about recommendation engines: the passage
"6.3 个性化推荐系统" answers it, not the generic 优点 list. The topic is what remains of the
question without its intent, model and filler words (`IntentModel.topic_terms`); a sentence or
heading mentions it when a Chinese term shares two characters in a row with it, or an English
term's first five letters appear in it or in its reviewed English rendering.

Measured and left out: moving a passage whose heading mentions the topic up the ranking. To first
place it cost MRR on every set (ours 0.826 -> 0.681); to second it moved key points both ways
(ours 0.769 -> 0.779, hold-out 0.771 -> 0.764): two characters in common are evidence enough
for a sentence, not for a heading.
"""
from __future__ import annotations

from typing import Callable

from knowledge.translations import TranslationMemory
from retrieval.intent import load_intents

Mentions = Callable[[str], bool]


def topic_mentions(question: str, translations: TranslationMemory | None) -> Mentions | None:
    """Whether a document text (a sentence, a heading) mentions the question's topic; None when the
    question names nothing besides what it asks for and which model."""
    terms = load_intents().topic_terms(question)
    if not terms:
        return None
    english = any(term.isascii() for term in terms)

    def mentions(text: str) -> bool:
        seen = text.lower()
        if english and translations is not None:
            seen += " " + (translations.render(text, "en") or "").lower()
        return any(term[:5] in seen if term.isascii() else any(term[i:i + 2] in seen for i in range(len(term) - 1))
                   for term in terms)
    return mentions
