"""Lines of the documents' code that a question about the sample code asks for.

"Which Python version does the environment use?", "环境配置里 cudatoolkit 装的是哪个版本？", "how
is the closed-source version deployed?": the answer is a line of a code block
(`conda create -n pytorch-env python=3.8`, `# 部署模型` and the line under it), and sentences
cannot quote it. When a question asks about code (words in prompts/answer_intents.yaml
`code_questions`), the code lines of the top passages that share its words (or their Chinese
translations: "deployed" -> 部署) are quoted too, verbatim, after the sentences. A comment line
brings the line it labels. Diagrams (`A --> B`) are not code to quote.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from knowledge.chunking import Chunk
from retrieval.tokens import stem, tokenize

FENCE = re.compile(r"^\s*(```|~~~)")
WORD = re.compile(r"[a-z]+|\d+(?:\.\d+)*")
DIAGRAM = re.compile(r"-->|^\s*graph\s+(?:TB|LR|TD|BT|RL)\b")
MAX_LINES = 2  # snippets per answer: the line asked for, not the listing
# Words every code question and much code share: they say nothing about which line is asked for.
GENERIC = frozenset({"code", "sample", "example", "version", "model", "open", "source", "closed", "use", "the",
                     "and", "for", "how", "what", "which", "does", "set", "setup", "dev"})


@dataclass(frozen=True)
class CodeLine:
    rank: int  # the passage's place in the search result (0: the best hit)
    text: str  # the line, or a comment and the line it labels, verbatim


def code_lines(chunk: Chunk) -> list[str]:
    """The passage's code lines: a code chunk whole, or the lines inside a text chunk's fences."""
    lines, inside = [], chunk.kind == "code"
    for line in chunk.text.splitlines():
        if FENCE.match(line):
            inside = not inside
            continue
        if inside and line.strip() and not DIAGRAM.search(line) and line.strip() not in ("...", "…"):
            lines.append(line.rstrip())
    return lines


def _words(text: str) -> set[str]:
    """Words of code and of questions alike: "num_labels" gives num and labels, "python=3.8" both halves."""
    found = {stem(w) for w in WORD.findall(text.lower()) if len(w) >= 3 or w[0].isdigit()}
    return found | {t for t in tokenize(text) if not t.isascii() and len(t) >= 2}


def matching_lines(chunks: list[Chunk], question_words: set[str]) -> list[CodeLine]:
    """The best code lines (at most MAX_LINES) sharing a word with the question, best first."""
    scored = []
    for rank, chunk in enumerate(chunks):
        lines = code_lines(chunk)
        for i, line in enumerate(lines):
            shared = _words(line) & question_words
            # an identifier ("cudatoolkit", "python") is evidence; one common Chinese word ("训练") is not
            score = 2 * sum(w.isascii() for w in shared) + sum(not w.isascii() for w in shared)
            if score < 2:
                continue
            text = line.strip()
            if text.startswith("#") and i + 1 < len(lines) and not lines[i + 1].strip().startswith("#"):
                text = f"{text}\n{lines[i + 1].strip()}"  # a comment names what the next line does
            scored.append((-score, rank, i, CodeLine(rank, text)))
    scored.sort(key=lambda s: s[:3])
    chosen: list[CodeLine] = []
    for *_, line in scored:
        if all(line.text not in c.text and c.text not in line.text for c in chosen):
            chosen.append(line)
        if len(chosen) == MAX_LINES:
            break
    return chosen


def question_words(question: str, translated: list[str]) -> set[str]:
    return (_words(question) | {t for t in translated if len(t) >= 2}) - GENERIC
