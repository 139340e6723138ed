"""Extractive answers: the most relevant sentences of the top passages, each cited.

Extractive is the default because it cannot say anything the documents do not:
every sentence of the answer is a sentence of a cited passage. Same input, same
output (ties are broken by position, never by chance).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import yaml

from knowledge.language import language_of
from knowledge.lists import ListBlock, list_blocks
from knowledge.sentences import is_quotable
from knowledge.translations import TranslationMemory
from retrieval.code_quotes import matching_lines, question_words
from retrieval.index_store import KnowledgeIndex
from retrieval.intent import Intent, load_intents
from retrieval.search import Hit, SearchResult
from retrieval.similarity import as_float64, cosines, exact
from retrieval.tokens import tokenize
from retrieval.topic import topic_mentions
from strategy_bot.settings import PROMPTS_DIR
from strategy_bot.tuning import AnswerTuning, default_tuning


@dataclass(frozen=True)
class Citation:
    n: int
    doc_id: str
    title: str
    section: str
    text: str
    score: float
    chunk_id: str
    rank: int = 0  # the passage's place in the search ranking (1: best); `n` is its place in the answer


@dataclass(frozen=True)
class Quote:
    """A sentence the answer shows, tied to the original it renders (the JSON's `quotes`)."""

    n: int  # citation number of the passage it comes from
    text: str  # as shown to the asker
    source: str  # the original sentence, verbatim
    language: str  # the language `text` is in


@dataclass
class Answer:
    """The JSON contract of `strategy-bot ask --json` and what the Slack bot renders."""

    question: str
    answer: str
    abstained: bool
    citations: list[Citation]
    timings_ms: dict[str, float] = field(default_factory=dict)
    language: str = "en"
    closest: list[Citation] = field(default_factory=list)  # shown when declining
    generated_by: str = "extractive"  # or "<provider>:<model>" when an LLM wrote it (see synthesis.py)
    quotes: list[Quote] = field(default_factory=list)  # the document sentences shown, with their originals
    coverage: str = "answered"  # "answered", "partial" (says first what the documents don't give) or "declined"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["timings_ms"] = {k: round(v, 2) for k, v in self.timings_ms.items()}
        return data


CODE = "code"  # the `language` of a quoted code line (shown verbatim, never translated)


@lru_cache(maxsize=4)
def load_templates(path: Path = PROMPTS_DIR / "answers.yaml") -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def citation_for(n: int, hit: Hit) -> Citation:
    return Citation(n=n, doc_id=hit.chunk.doc_id, title=hit.chunk.title, section=hit.chunk.section,
                    text=hit.chunk.text, score=round(hit.dense, 4), chunk_id=hit.chunk.chunk_id, rank=n)


@dataclass(frozen=True)
class Quotable:
    """A sentence of a retrieved passage that may be quoted, and how close it is to the question."""

    rank: int  # its passage's place in the search result (0: the best hit)
    row: int  # its place in the index's sentences (document order)
    text: str
    similarity: float  # cosine with the question, plus the word-overlap bonus when one is asked for


@dataclass(frozen=True)
class QuotedPassage:
    """A hit and its quotable sentence closest to the query (None: it has none, e.g. a code block)."""

    hit: Hit
    best: Quotable | None


def quotable_sentences(index: KnowledgeIndex, result: SearchResult, passages: int, *,
                       query_words: frozenset[str] = frozenset(), overlap_weight: float = 0.0,
                       renderings: bool = False) -> list[list[Quotable]]:
    """The quotable sentences of each of the top `passages` hits, scored against the question.

    The one place that reads sentences and their vectors out of the index: the extractive
    answer and the decision report's citations both quote from here. A sentence that uses
    the query's own words gains `overlap_weight` x the share of `query_words` it contains
    (e5 cosines of sentences of one passage sit close together; the words break near ties).
    Cosines are float64 and rounded, the same on every CPU (retrieval/similarity.py). With
    `renderings` (a question in the other language), a sentence the translation memory renders
    is scored by the mean of its own cosine and its rendering's: e5 tells which of a passage's
    sentences an English question asks for far better in English than across languages.
    """
    quoted: list[list[Quotable]] = []
    for rank, hit in enumerate(result.hits[:passages]):
        rows = index.sentences_of(hit.position)
        scores = cosines(as_float64(index.sentence_vectors[rows]), result.query_vector) if rows else []
        if renderings and rows:
            scores = _with_renderings(index, rows, scores, result.query_vector)
        sentences = []
        for row, score in zip(rows, scores):
            text = index.sentences[row]["text"]
            if not is_quotable(text):
                continue
            similarity = float(score)
            if query_words and overlap_weight:
                similarity += overlap_weight * (len(query_words & set(tokenize(text))) / len(query_words))
            sentences.append(Quotable(rank, row, text, similarity))
        quoted.append(sentences)
    return quoted


def _with_renderings(index: KnowledgeIndex, rows: list[int], scores: np.ndarray,
                     query_vector: np.ndarray) -> np.ndarray:
    """Each sentence's score averaged with its rendering's cosine (one product for the passage's renderings)."""
    views = [index.sentence_view_of.get(row) for row in rows]
    rendered = [i for i, view in enumerate(views) if view is not None]
    if not rendered:
        return scores
    cos = cosines(as_float64(index.sentence_view_vectors[[views[i] for i in rendered]]), query_vector)
    mixed = np.array(scores, dtype=np.float64)
    mixed[rendered] = exact((mixed[rendered] + cos) / 2)
    return mixed


@dataclass(frozen=True)
class Picked:
    quotes: list[tuple[int, str]]  # (citation number, original text), in reading order
    is_list: bool  # a list of the documents, whole and in order
    cut: bool = False  # the list had more items than an answer shows
    asked: bool = True  # the question asked for a list (False: most chosen sentences were of one list)
    headings: dict[int, str] = field(default_factory=dict)  # quote index -> the list label shown before it


@dataclass(frozen=True)
class _Candidate:
    score: float
    n: int
    row: int
    text: str
    block: tuple[int, int] | None  # (citation number, list index in the passage) of a list item


def _candidates(index: KnowledgeIndex, result: SearchResult, intent: Intent, tuning: AnswerTuning,
                blocks: dict[tuple[int, int], ListBlock], renderings: bool = False,
                topic: Callable[[str], bool] | None = None) -> list[_Candidate]:
    """Quotable sentences of the top passages, scored by similarity, the passage's rank and how
    well the labels of their list fit the question (retrieval/intent.py); `blocks` collects the lists.

    `tuning` (prompts/ranking.yaml `answer`): how many passages, and how much a lower passage's
    sentences are held back (that keeps the answer anchored on the best hit).
    """
    model = load_intents()
    found = []
    for sentences in quotable_sentences(index, result, tuning.passages, renderings=renderings):
        chunk = result.hits[sentences[0].rank].chunk if sentences else None
        lists = list_blocks(chunk.text) if chunk else []
        for s in sentences:
            n = s.rank + 1
            owner = next((i for i, block in enumerate(lists) if any(s.text in item for item in block.items)), None)
            if owner is not None:
                blocks[(n, owner)] = lists[owner]
            context = " ".join(index.sentences[s.row].get("context", []))
            labels = f"{chunk.heading} {lists[owner].describes()}" if owner is not None else context
            fit = model.adjustment(intent, labels, s.text, tuning)
            if topic is not None and topic(s.text):
                fit += tuning.topic_bonus
            adjusted = s.similarity - tuning.passage_rank_penalty * s.rank + fit
            found.append(_Candidate(adjusted, n, s.row, s.text, (n, owner) if owner is not None else None))
    found.sort(key=lambda c: (-c.score, c.n, c.row))
    return found


def _list_answer(candidates: list[_Candidate], blocks: dict[tuple[int, int], ListBlock],
                 intent: Intent, weights: AnswerTuning, headings: dict[int, str],
                 labelled_first: frozenset[str]) -> Picked | None:
    """The whole list that answers best, when the question asks for a kind of list (advantages,
    drawbacks, steps, examples), never for a definition: among the lists that fit and whose best
    item is about as good as the best sentence, the one with the best sum of its best item's
    score and its items' mean. One item that happens to echo the question ("知识产权保护确保商业利益")
    must not pull in a list whose other items are about something else. Measured (key-point
    recall, ours / hold-out / public): best item alone 0.609 / 0.577 / 0.750, mean alone
    0.628 / 0.577 / 1.000, both 0.628 / 0.577 / 1.000 (and 3 more points on the blind set than the mean).

    First, for the kinds in `labelled_first` (`_labelled_first`: strongly asked for, and either named
    only by their passage's heading, like steps in "3.2 算法步骤详解", or asked with no topic besides),
    the lists so labelled (heading included) for the model asked about come before any list that
    merely ends a lead-in with a colon (`labelled_list_slack`)."""
    if not intent.kinds or "definition" in intent.kinds:
        return None
    best = candidates[0].score
    scores: dict[tuple[int, int], list[float]] = {}
    for candidate in candidates:
        if candidate.block is not None:
            scores.setdefault(candidate.block, []).append(candidate.score)
    long_enough = [key for key in scores if len(blocks[key].items) >= 2]
    model = load_intents()
    first = Intent(intent.kinds & labelled_first, intent.subjects)
    labelled = [key for key in long_enough if first.kinds and max(scores[key]) >= best - weights.labelled_list_slack
                and model.list_answers(f"{headings.get(key[0], '')} {blocks[key].describes()}", first)]
    eligible = labelled or [key for key in long_enough if max(scores[key]) >= best - weights.list_slack
                            and _fits(blocks[key], intent)]
    if not eligible:
        return None
    key = max(eligible, key=lambda k: (max(scores[k]) + sum(scores[k]) / len(scores[k]), -k[0], -k[1]))
    items = blocks[key].items
    shown = items[: weights.max_list_items]
    return Picked([(key[0], item) for item in shown], is_list=True, cut=len(items) > len(shown))


def _paired_lists(candidates: list[_Candidate], blocks: dict[tuple[int, int], ListBlock],
                  intent: Intent, weights: AnswerTuning, about: Callable[[int], bool]) -> Picked | None:
    """Both models' lists of one passage, each under its label, when the question weighs one
    model against the other ("open or closed for a support chatbot?", "开源还是闭源…"): the
    documents answer such questions with parallel lists ("开源模式：… 闭源模式：…"), and one of
    them alone answers half the question. Only the passage of the best sentence (`_anchor`) is considered:
    a question that names both models but asks something else ("为什么这个选择很重要？") is
    answered from elsewhere, and a generic pair of lists would not answer it."""
    model = load_intents()
    if len(intent.subjects) < 2 or "definition" in intent.kinds:
        return None
    best = candidates[0].score
    scores: dict[tuple[int, int], list[float]] = {}
    for candidate in candidates:
        if candidate.block is not None and candidate.score >= best - weights.sentence_slack:
            scores.setdefault(candidate.block, []).append(candidate.score)
    n, chosen = _anchor(candidates, blocks, weights), []
    if not about(n):  # "在NLP领域，企业一般是开源还是闭源？": a generic pair of lists does not answer it
        return None
    for subject in sorted(intent.subjects):
        keys = [k for k in scores if k[0] == n and len(blocks[k].items) >= 2
                and model.subjects_in(blocks[k].describes()) == {subject}]
        if intent.kinds:  # "advantages of each": the lists labelled so, when the passage has them
            keys = [k for k in keys if intent.kinds & model.kinds_labelled(blocks[k].describes())] or keys
        if not keys:
            return None
        chosen.append(max(keys, key=lambda k: max(scores[k]) + sum(scores[k]) / len(scores[k])))
    return _grouped(sorted(chosen), blocks, weights)


def _anchor(candidates: list[_Candidate], blocks: dict[tuple[int, int], ListBlock], weights: AnswerTuning) -> int:
    """The passage a pair of lists must come from: the best sentence's, unless an item of a list (not a
    glossary) of a passage ranked higher scores within `anchor_tie` of it. "开源还是闭源，对模型效果本身有影响吗？":
    FAQ Q2's closing summary edged out the items of FAQ Q1, which is the question itself."""
    best = candidates[0]
    for candidate in candidates[1:]:
        if candidate.score < best.score - weights.anchor_tie:
            break
        if candidate.block is not None and candidate.n < best.n and not _is_glossary(blocks[candidate.block]):
            return candidate.n
    return best.n


def _grouped(keys: list[tuple[int, int]], blocks: dict[tuple[int, int], ListBlock], weights: AnswerTuning) -> Picked:
    quotes: list[tuple[int, str]] = []
    headings: dict[int, str] = {}
    cut = False
    per_list = max(2, weights.max_list_items // len(keys))  # the pair together stays a handful of bullets
    for key in keys:
        block = blocks[key]
        headings[len(quotes)] = block.lead or (block.labels[-1] if block.labels else "")
        shown = block.items[:per_list]
        cut = cut or len(block.items) > len(shown)
        quotes.extend((key[0], item) for item in shown)
    return Picked(quotes, is_list=True, cut=cut, headings=headings)


def _fits(block: ListBlock, intent: Intent) -> bool:
    """A list answers the question when it is labelled with what was asked, or introduced as an
    answer ("…以下几个方面：") and not a glossary."""
    if intent.kinds & load_intents().kinds_labelled(block.describes()):
        return True
    return block.lead.endswith(("：", ":")) and not _is_glossary(block)


def _is_glossary(block: ListBlock) -> bool:
    """Mostly definitions ("开源：指…"): a list of terms answers no question as a whole."""
    model = load_intents()
    return model.introduces_glossary(block.lead) \
        or sum(model.is_definition(item) for item in block.items) * 2 >= len(block.items)


def pick_quotes(index: KnowledgeIndex, result: SearchResult, limit: int, intent: Intent | None = None,
                tuning: AnswerTuning | None = None, renderings: bool = False,
                labelled_first: frozenset[str] = frozenset(), topic: Callable[[str], bool] | None = None) -> Picked:
    """What the answer quotes: a whole list of the documents when the question asks for one and
    the best passage has it, else the `limit` best sentences near the best one."""
    intent = intent or Intent(frozenset(), frozenset())
    tuning = tuning or default_tuning().answer
    blocks: dict[tuple[int, int], ListBlock] = {}
    candidates = _candidates(index, result, intent, tuning, blocks, renderings, topic)
    if not candidates:
        return Picked([], is_list=False)
    headings = {n: hit.chunk.heading for n, hit in enumerate(result.hits, start=1)}
    listed = _paired_lists(candidates, blocks, intent, tuning, _about_topic(index, result, topic)) \
        or _list_answer(candidates, blocks, intent, tuning, headings, labelled_first)
    if listed is not None:
        return listed
    best = candidates[0].score
    chosen, seen = [], set()
    for candidate in candidates:
        if len(chosen) >= limit or candidate.score < best - tuning.sentence_slack:
            break
        if candidate.text not in seen:
            seen.add(candidate.text)
            chosen.append(candidate)
    cohesive = _cohesive_list(chosen, blocks, tuning)
    if cohesive is not None:
        return cohesive
    chosen.sort(key=lambda c: (c.n, c.row))
    return Picked([(c.n, c.text) for c in chosen], is_list=False)


def _cohesive_list(chosen: list[_Candidate], blocks: dict[tuple[int, int], ListBlock],
                   weights: AnswerTuning) -> Picked | None:
    """The whole list when the chosen sentences are items of one list of the documents (at least
    two items, and `cohesive_list_share` of the sentences: with the tuned 0.67 and three or four
    chosen, all but none or one; sentences of the list's passage outside any list count with it): the
    question asks what that list enumerates ("开源以后会成为主流吗？"
    and the five trends), and three of its items out of order answer less than the list. Never a
    glossary. Unlike `_fits` (which sees only the list's labels and lead), the labels scoring the
    candidates include the passage's heading."""
    keys = [c.block for c in chosen if c.block is not None]
    if not keys:
        return None
    key = max(dict.fromkeys(keys), key=keys.count)
    items = blocks[key].items
    items_quoted = {i for c in chosen if c.block == key for i, item in enumerate(items) if c.text in item}
    # the passage's own sentences outside its lists (its lead-in, its closing summary) say what the list says
    support = keys.count(key) + sum(c.block is None and c.n == key[0] for c in chosen)
    if len(items_quoted) < 2 or support < weights.cohesive_list_share * len(chosen) \
            or _is_glossary(blocks[key]):
        return None
    shown = items[: weights.max_list_items]
    return Picked([(key[0], item) for item in shown], is_list=True, cut=len(items) > len(shown), asked=False)


def code_quotes(question: str, index: KnowledgeIndex, result: SearchResult) -> list[Quote]:
    """Code lines of the top passages for a question about the sample code (retrieval/code_quotes.py),
    verbatim: code is not translated, and its `language` says it is code."""
    if not load_intents().asks_about_code(question):
        return []
    words = question_words(question, index.lexical.prepare(question).translated)
    lines = matching_lines([hit.chunk for hit in result.hits[:3]], words)
    return [Quote(n=line.rank + 1, text=line.text, source=line.text, language=CODE) for line in lines]


def render_quotes(picked: list[tuple[int, str]], result: SearchResult, language: str,
                  translations: TranslationMemory | None) -> list[Quote]:
    """Each picked sentence in the asker's language when a reviewed rendering exists; else as written."""
    quotes = []
    for n, source in picked:
        passage_language = language_of(result.hits[n - 1].chunk.text)
        rendering = translations.render(source, language) if translations and passage_language != language else None
        quotes.append(Quote(n=n, text=rendering or source, source=source,
                            language=language if rendering else passage_language))
    return quotes


def render_heading(label: str, language: str, translations: TranslationMemory | None) -> str:
    """A list's label ("开源模式：") in the asker's language when the memory has it, ending in a colon."""
    bare = label.rstrip("：: ")
    rendered = None
    if translations is not None and language_of(bare) != language:
        rendered = translations.render(label, language) or translations.render(bare, language)
    text = (rendered or bare).rstrip("：: ")
    return text + ("：" if language == "zh" else ":")


def lead_line(templates: dict, language: str, quotes: list[Quote]) -> str:
    """Says when the quotes are translations, and when some could not be."""
    foreign = [q for q in quotes if q.language not in (language, CODE)]
    translated = [q for q in quotes if q.text != q.source]
    if foreign:
        return templates["lead_untranslated"][language]
    return templates["lead_translated" if translated else "lead"][language]


def cite_in_order_of_use(quotes: list[Quote], citations: list[Citation]) -> tuple[list[Quote], list[Citation]]:
    """Number the passages the answer quotes first, in the order it quotes them; the others
    follow as further reading. A reader meets [1], [2]… in order, and [1] is what the answer rests on."""
    used = list(dict.fromkeys(q.n for q in quotes))
    order = used + [c.n for c in citations if c.n not in used]
    number = {old: new for new, old in enumerate(order, start=1)}
    by_old = {c.n: c for c in citations}
    renumbered = [replace(by_old[old], n=number[old]) for old in order]
    return [replace(q, n=number[q.n]) for q in quotes], renumbered


def partial_line(templates: dict, language: str, quotes: list[Quote], missing: str) -> str:
    """"The documents don't give X; the closest they say is:" (noting translated quotes)."""
    translated = any(q.text != q.source for q in quotes)
    note = templates["partial_translated"][language] if translated else ""
    return templates["partial"][language].format(what=missing, translated=note)


def _about_topic(index: KnowledgeIndex, result: SearchResult,
                 mentions: Callable[[str], bool] | None) -> Callable[[int], bool]:
    """Whether passage n (1-based) mentions the question's topic (retrieval/topic.py; always, without one)."""
    if mentions is None:
        return lambda n: True
    return lambda n: mentions(result.hits[n - 1].chunk.text) or any(
        mentions(index.sentences[row]["text"]) for row in index.sentences_of(result.hits[n - 1].position))


def _labelled_first(question: str, intent: Intent) -> frozenset[str]:
    """The kinds asked for whose labelled lists answer before any other list (`_list_answer`): those
    strongly asked for, when only their passage's heading names such lists (steps) or when the question
    names no topic besides (advantages of open source, not advantages for a use case)."""
    model = load_intents()
    strong = model.strongly_asked(intent, question).kinds
    return strong if model.asks_only_kind(question) else strong & model.heading_kinds


def compose(question: str, index: KnowledgeIndex, result: SearchResult, *, declined: bool,
            sentences: int, unknown_names: Sequence[str] = (), unmentioned: Sequence[str] = (),
            translations: TranslationMemory | None = None, intent: Intent | None = None,
            tuning: AnswerTuning | None = None, topic_of: str | None = None) -> Answer:
    """Build the answer (or the decline) from a search result.

    `topic_of` is what the question's topic is read from when it is not the question alone: a
    follow-up ("那闭源呢？") keeps its thread's topic (the question as searched, or with the one before).

    A decline names what the documents never mention, when the question named it:
    "they never mention MIT" tells the asker more than "not covered"; a question naming such a
    thing but close to the documents (`unmentioned`) gets a partial answer that says so first. Quotes from documents
    in another language are shown in the asker's language from the translation memory,
    each keeping its original (`Answer.quotes`); our code, not a model, attaches citations.
    """
    templates = load_templates()
    language = language_of(question)
    citations = [citation_for(n, hit) for n, hit in enumerate(result.hits, start=1)]
    if declined:
        text = templates["declined"][language]
        if unknown_names:
            names = templates["name_separator"][language].join(unknown_names)
            text += templates["never_mentioned"][language].format(names=names)
        return Answer(question=question, answer=text, abstained=True,
                      citations=[], language=language, closest=citations[:3], coverage="declined")
    model = load_intents()
    intent = intent or model.of(question)
    picked = pick_quotes(index, result, sentences, intent, tuning, renderings=language != index.language,
                         labelled_first=_labelled_first(topic_of or question, intent),
                         topic=topic_mentions(topic_of or question, translations))
    quoted = picked.quotes
    if not quoted:  # only code or headings matched: quote the top passage's opening
        quoted = [(1, result.hits[0].chunk.text.strip().splitlines()[0][:300])]
    rendered = render_quotes(quoted, result, language, translations) + code_quotes(question, index, result)
    quotes, citations = cite_in_order_of_use(rendered, citations)
    missing = load_intents().not_given(question, "\n".join(q.source for q in quotes), language,
                                       picked.is_list and picked.asked)
    if unmentioned:  # "The documents don't mention SEA, EU; the closest they say is …"
        names = templates["name_separator"][language].join(unmentioned)
        missing = templates["unmentioned"][language].format(names=names)
    if missing is None:
        lead = lead_line(templates, language, quotes)
    else:
        lead = partial_line(templates, language, quotes, missing)
    bullet = "• " if picked.is_list else ""
    lines = []
    for i, quote in enumerate(quotes):
        if i in picked.headings:
            lines.append(render_heading(picked.headings[i], language, translations))
        shown = " ".join(f"`{part}`" for part in quote.text.splitlines()) if quote.language == CODE else quote.text
        lines.append(f"{bullet}{shown} [{quote.n}]")
    body = "\n".join(lines) + ("\n• …" if picked.cut else "")
    return Answer(question=question, answer=f"{lead}\n{body}".strip(), abstained=False,
                  citations=citations, language=language, quotes=quotes,
                  coverage="answered" if missing is None else "partial")


def format_citation(citation: Citation) -> str:
    return load_templates()["citation_line"].format(n=citation.n, title=citation.title, section=citation.section)
